/**
 * Arena allocator over the WASM linear memory, managed from JS: first-fit over a free list
 * sorted by offset, coalescing neighbours on free, bump allocation at the top, and memory.grow
 * when the top passes the end. Every block is 16-byte aligned (v128 loads) and at least 16 bytes.
 *
 * Cost: the free-list scan is skipped whenever no free block can be large enough (an upper
 * bound on the largest free block, made exact by each scan that fails), and release finds its
 * place by binary search, so the hot-path pattern (scratch taken and returned at the top while
 * long-lived blocks leave holes below) is O(1) per call. The arena also remembers the highest
 * byte ever handed out: memory above it is still zero (fresh from memory.grow), so callers that
 * need zeroed blocks only clear `lastDirtyBytes` (weights and activations need no memset).
 */
import { DeviceUnavailableError, ShapeError } from "../errors.ts";

const ALIGN = 16;
const PAGE = 65536;
/** A wasm32 memory holds at most 4 GiB. */
const MAX_BYTES = 65536 * PAGE;

interface Block {
  off: number;
  size: number;
}

export class Arena {
  private top: number;
  private readonly freeList: Block[] = []; // sorted by off, never adjacent (coalesced)
  private readonly live = new Map<number, number>(); // off -> size
  private inUse = 0;
  /** No free block is larger than this (an upper bound; exact after a scan that found nothing). */
  private maxFree = 0;
  /** Bytes at and above this offset have never been handed out, so they are still zero. */
  private zeroFrom: number;
  /** Of the block the last alloc returned, how many leading bytes may hold old data. */
  lastDirtyBytes = 0;

  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly base: number,
  ) {
    this.top = roundUp(base, ALIGN);
    this.zeroFrom = this.top;
  }

  /** Bytes held by live blocks. */
  get bytesInUse(): number {
    return this.inUse;
  }

  /** High-water mark of the arena (bytes from 0). */
  get end(): number {
    return this.top;
  }

  /**
   * Offset of a new 16-byte aligned block of at least `bytes` bytes. Fails closed: a size that
   * is not a safe non-negative integer (NaN, fractional, negative, Infinity), or one the memory
   * cannot grow to (DeviceUnavailableError), throws and leaves the arena exactly as it was, so one caught
   * error never poisons later allocations.
   */
  alloc(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      throw new ShapeError(`WASM arena: cannot allocate ${String(bytes)} bytes (not a non-negative integer)`);
    if (bytes > MAX_BYTES)
      throw new DeviceUnavailableError(
        `WASM arena: cannot allocate ${bytes} bytes: the wasm executor's memory is 32-bit (4 GiB at most); use --executor ref for larger data`,
      );
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    if (size <= this.maxFree) {
      let largest = 0;
      for (let i = 0; i < this.freeList.length; i++) {
        const b = this.freeList[i]!;
        if (b.size < size) {
          if (b.size > largest) largest = b.size;
          continue;
        }
        const off = b.off;
        if (b.size === size) this.freeList.splice(i, 1);
        else {
          b.off += size;
          b.size -= size;
        }
        return this.take(off, size);
      }
      this.maxFree = largest;
    }
    const off = this.top;
    const need = off + size;
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      try {
        this.memory.grow(Math.ceil((need - have) / PAGE));
      } catch (e) {
        // Nothing was changed yet: the arena stays usable after this error.
        throw new DeviceUnavailableError(
          `WASM arena: cannot grow the memory from ${have} to ${need} bytes for a block of ${bytes} bytes (${(e as Error).message}); the wasm executor's memory is 32-bit (4 GiB at most): use a smaller model or --executor ref`,
        );
      }
    }
    this.top = need;
    return this.take(off, size);
  }

  /** Free the block starting at off. Returns false when off is not a live block. */
  release(off: number): boolean {
    if (!Number.isSafeInteger(off)) return false;
    const size = this.live.get(off);
    if (size === undefined) return false;
    this.live.delete(off);
    this.inUse -= size;
    // Insert in order (binary search), then merge with the previous and next free blocks.
    let i = 0;
    let hi = this.freeList.length;
    while (i < hi) {
      const mid = (i + hi) >> 1;
      if (this.freeList[mid]!.off < off) i = mid + 1;
      else hi = mid;
    }
    this.freeList.splice(i, 0, { off, size });
    const next = this.freeList[i + 1];
    if (next && off + size === next.off) {
      this.freeList[i]!.size += next.size;
      this.freeList.splice(i + 1, 1);
    }
    const prev = this.freeList[i - 1];
    if (prev && prev.off + prev.size === off) {
      prev.size += this.freeList[i]!.size;
      this.freeList.splice(i, 1);
      i--;
    }
    // The merged block is the only one whose size grew.
    const merged = this.freeList[i]!;
    if (merged.size > this.maxFree) this.maxFree = merged.size;
    // A free block touching the top shrinks the arena instead of staying on the list.
    const last = this.freeList[this.freeList.length - 1];
    if (last && last.off + last.size === this.top) {
      this.top = last.off;
      this.freeList.pop();
    }
    return true;
  }

  private take(off: number, size: number): number {
    this.live.set(off, size);
    this.inUse += size;
    this.lastDirtyBytes = Math.max(0, Math.min(off + size, this.zeroFrom) - off);
    if (off + size > this.zeroFrom) this.zeroFrom = off + size;
    return off;
  }
}

function roundUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
