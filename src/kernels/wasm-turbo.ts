/**
 * The codebook tables of the TurboQuant wasm kernels (assembly/codec-turbo.ts), one per
 * (codec, head size), built from the same Lloyd-Max codebooks as the TypeScript reference
 * (src/quant/turboquant-codebook.ts, Zandieh et al. 2025, arXiv:2504.19874) and kept in the
 * wasm memory until the executor is disposed.
 *
 * Layout (TURBO_TABLE_BYTES): the book of the high width at 0, of the low width at 192; each
 * book: 4 x 16 bytes of byte planes (plane b holds byte b of every centroid's f32 bits, for
 * i8x16.swizzle lookups), 16 f32 centroids at +64, 16 f32 boundaries at +128 (2^bits - 1 used,
 * the rest +Inf so that no element counts past the last code). TurboQuant_prod (QJL) tables:
 * its MSE codec's table, then the QJL matrix S (d, d) f32 at 384 (assembly/turbo-qjl.ts).
 */

import { TURBO_BITS, type TurboName } from "../quant/turboquant.ts";
import { turboCodebook } from "../quant/turboquant-codebook.ts";
import { qjlMatrix, TURBO_QJL, type TurboQjlName } from "../quant/turboquant-qjl.ts";
import type { CodecName } from "../quant/types.ts";
import type { WasmHeap } from "./wasm-heap.ts";

/** assembly/codec-turbo.ts KIND_TURBO. */
export const KIND_TURBO = 5;
/** assembly/turbo-qjl.ts KIND_TURBO_QJL. */
export const KIND_TURBO_QJL = 7;
const TURBO_TABLE_BYTES = 384;
const LO_BOOK = 192;

function isTurboQjlName(name: CodecName): name is TurboQjlName {
  return Object.hasOwn(TURBO_QJL, name);
}

/** [low, high] bits per coordinate of a TurboQuant MSE codec, or of a QJL codec's MSE part. */
export function turboBits(name: TurboName | TurboQjlName): readonly [number, number] {
  return isTurboQjlName(name) ? TURBO_BITS[TURBO_QJL[name].mse as TurboName] : TURBO_BITS[name];
}

export class TurboTables {
  private readonly tables = new Map<string, number>();

  constructor(private readonly heap: WasmHeap) {}

  /** Pointer to the table of `name` at head size d (built on first use). */
  ptr(name: TurboName | TurboQjlName, d: number): number {
    const key = `${name}:${d}`;
    let p = this.tables.get(key);
    if (p === undefined) {
      const qjl = isTurboQjlName(name);
      p = this.heap.scratch(TURBO_TABLE_BYTES + (qjl ? 4 * d * d : 0));
      const [lo, hi] = turboBits(name);
      this.write(p, turboCodebook(d, hi));
      this.write(p + LO_BOOK, turboCodebook(d, lo));
      if (qjl) new Float32Array(this.heap.buffer, p + TURBO_TABLE_BYTES, d * d).set(qjlMatrix(d));
      this.tables.set(key, p);
    }
    return p;
  }

  private write(at: number, book: { centroids: Float32Array; boundaries: Float32Array }): void {
    const c = new Float32Array(16);
    c.set(book.centroids);
    const cb = new Uint8Array(c.buffer);
    const planes = new Uint8Array(this.heap.buffer, at, 64);
    for (let k = 0; k < book.centroids.length; k++)
      for (let b = 0; b < 4; b++) planes[b * 16 + k] = cb[k * 4 + b]!;
    for (let k = book.centroids.length; k < 16; k++) for (let b = 0; b < 4; b++) planes[b * 16 + k] = 0;
    new Float32Array(this.heap.buffer, at + 64, 16).set(c);
    const bounds = new Float32Array(16).fill(Number.POSITIVE_INFINITY);
    bounds.set(book.boundaries);
    new Float32Array(this.heap.buffer, at + 128, 16).set(bounds);
  }

  dispose(): void {
    for (const p of this.tables.values()) this.heap.release(p);
    this.tables.clear();
  }
}
