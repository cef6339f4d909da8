/**
 * The WASM executor's view of its linear memory: typed arrays allocated in the arena, and
 * marshalling of op arguments to pointers. Arrays that live in the memory are passed in place;
 * any other array is copied into scratch (and back out for outputs), counted in `copies`.
 */
import { ShapeError } from "../errors.ts";
import type { Arena } from "./wasm-arena.ts";

type View = Float32Array | Uint8Array | Uint16Array | Int32Array;
type ViewCtor<T extends View> = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  BYTES_PER_ELEMENT: number;
};

export interface CopyCounts {
  /** Arrays copied into scratch because they were not in the WASM memory. */
  in: number;
  /** Output arrays copied back out of scratch. */
  out: number;
  /** Bytes moved by those copies. */
  bytes: number;
}

export class WasmHeap {
  /** Every SharedArrayBuffer object the memory has shown (a new one after each growth). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  readonly copies: CopyCounts = { in: 0, out: 0, bytes: 0 };

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly arena: Arena,
  ) {}

  /** The memory's current buffer (remembered, so arrays on it are recognised as ours). */
  get buffer(): ArrayBufferLike {
    const b = this.memory.buffer;
    this.buffers.add(b);
    return b;
  }

  owns(view: ArrayBufferView): boolean {
    return this.buffers.has(view.buffer);
  }

  /** A zero-filled array in the memory (like `new Float32Array(n)`: a reused block may hold old data). */
  alloc<T extends View>(ctor: ViewCtor<T>, n: number): T {
    // Checked before the arena sees n * size: a fractional or negative count must not turn
    // into a valid byte size (1.5 floats = 6 bytes) or a view of another length.
    if (!Number.isSafeInteger(n) || n < 0)
      throw new ShapeError(`WASM alloc: element count ${String(n)} is not a non-negative integer`);
    const off = this.arena.alloc(n * ctor.BYTES_PER_ELEMENT);
    const view = new ctor(this.buffer, off, n);
    // Only the part of the block that was handed out before can be non-zero.
    const dirty = Math.min(n, Math.ceil(this.arena.lastDirtyBytes / ctor.BYTES_PER_ELEMENT));
    if (dirty > 0) view.fill(0, 0, dirty);
    return view;
  }

  /** Release the block of an array from alloc (an empty one too: the arena gave it a block of its own). */
  free(view: ArrayBufferView): void {
    if (this.owns(view)) this.arena.release(view.byteOffset);
  }

  /** Scratch bytes owned by the caller until release(). */
  scratch(bytes: number): number {
    return this.arena.alloc(bytes);
  }

  release(ptr: number): void {
    this.arena.release(ptr);
  }
}

type Mode = "in" | "out" | "inout";

/** Pointers for one op call; finish() copies outputs back and frees the scratch. */
export class Marshal {
  private readonly pending: { view: View; ptr: number; mode: Mode }[] = [];

  constructor(private readonly heap: WasmHeap) {}

  ptr(view: View, mode: Mode): number {
    if (this.heap.owns(view)) return view.byteOffset;
    if (view.byteLength === 0) return 0;
    const ptr = this.heap.scratch(view.byteLength);
    if (mode !== "out") {
      new Uint8Array(this.heap.buffer, ptr, view.byteLength).set(
        new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
      );
      this.heap.copies.in++;
      this.heap.copies.bytes += view.byteLength;
    }
    this.pending.push({ view, ptr, mode });
    return ptr;
  }

  finish(): void {
    for (const { view, ptr, mode } of this.pending) {
      if (mode !== "in") {
        new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(
          new Uint8Array(this.heap.buffer, ptr, view.byteLength),
        );
        this.heap.copies.out++;
        this.heap.copies.bytes += view.byteLength;
      }
      this.heap.release(ptr);
    }
    this.pending.length = 0;
  }
}
