/**
 * Weight matrices as the matmul takes them: f32, or kept in the file's 16-bit type (IEEE f16,
 * bfloat16) and widened to f32 inside the matmul (issue 15, lever 3: half the memory of f32).
 * Widening f16/bf16 to f32 is exact, so a matmul over a 16-bit matrix is the same f32
 * arithmetic, in the same order, as one over the matrix widened on load: results are bit for
 * bit those of the f32 path on each executor.
 *
 * The 16-bit types are Uint16Array subclasses, so they are ordinary typed arrays everywhere else
 * (executor memory, free, subarray, adjacency of fused q/k/v rows); the class names the format.
 * Elements are the raw 16-bit patterns; they must be finite (the loader checks).
 *
 * Q8_0 (ggml's block type, GGUF): rows of dIn / 32 blocks of 34 bytes, an f16 scale d then 32
 * int8 codes q; the weight is d * q in f32 (ggml dequantize_row_q8_0), exact (an 11-bit by
 * 8-bit product), so the same holds: the matmul equals the f32 one over the dequantized matrix.
 */
import { f16ToF32 } from "../quant/half.ts";

/** IEEE 754 binary16 bit patterns (row-major like the f32 matrix they stand for). */
export class F16Array extends Uint16Array {}
/** bfloat16 bit patterns: the upper 16 bits of the f32 (widening is a 16-bit shift). */
export class BF16Array extends Uint16Array {}

/** ggml Q8_0 blocks as stored (34 bytes per 32 weights); rows are whole blocks. */
export class Q8_0Array extends Uint8Array {}
export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 34;

/** A Linear weight (dOut, dIn) row-major, in one of the types the matmul reads. */
export type Matrix = Float32Array | F16Array | BF16Array | Q8_0Array;
export type MatrixType = "f32" | "f16" | "bf16" | "q8_0";

export function matrixType(w: Matrix): MatrixType {
  if (w instanceof Float32Array) return "f32";
  if (w instanceof F16Array) return "f16";
  if (w instanceof BF16Array) return "bf16";
  if (w instanceof Q8_0Array) return "q8_0";
  throw new TypeError(
    `matmul: weights of type ${(w as object).constructor?.name}: expected Float32Array, F16Array, BF16Array or Q8_0Array`,
  );
}

/** Array elements (bytes for Q8_0) that n weights of `type` take; Q8_0 needs n % 32 == 0. */
export function storedLength(type: MatrixType, n: number): number {
  return type === "q8_0" ? (n / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES : n;
}

/** Rows [r0, r1) of matrix w with dIn weights per row (a view). */
export function matrixRows<M extends Matrix>(w: M, r0: number, r1: number, dIn: number): M {
  const row = storedLength(matrixType(w), dIn);
  return w.subarray(r0 * row, r1 * row) as M;
}

/** A view of `arr`'s memory as a matrix of `type` (no copy). */
export function asMatrix(type: "f16" | "bf16", arr: Uint16Array): F16Array | BF16Array {
  const C = type === "f16" ? F16Array : BF16Array;
  return new C(arr.buffer as ArrayBuffer, arr.byteOffset, arr.length);
}

let f16Table: Float32Array | undefined;
/** f16 bits -> f32, all 65536 patterns (exact; half.ts f16ToF32). */
export function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/** dst[i] = w[start + i] widened to f32, for i < dst.length (exact). */
export function widenInto(w: Matrix, start: number, dst: Float32Array): void {
  const n = dst.length;
  if (w instanceof Float32Array) {
    dst.set(w.subarray(start, start + n));
    return;
  }
  if (w instanceof F16Array) {
    const lut = f16Lut();
    for (let i = 0; i < n; i++) dst[i] = lut[w[start + i]!]!;
    return;
  }
  if (w instanceof Q8_0Array) {
    const lut = f16Lut();
    const q = new Int8Array(w.buffer, w.byteOffset, w.byteLength);
    for (let i = 0; i < n; i++) {
      const e = start + i;
      const b = Math.floor(e / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
      dst[i] = lut[w[b]! | (w[b + 1]! << 8)]! * q[b + 2 + (e % Q8_0_BLOCK)]!;
    }
    return;
  }
  matrixType(w); // throws for anything that is not a BF16Array
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = w[start + i]! << 16;
}

/** The whole matrix in f32 (a new array; the same array for f32). */
export function matrixF32(w: Matrix): Float32Array {
  if (w instanceof Float32Array) return w;
  const n = w instanceof Q8_0Array ? (w.length / Q8_0_BLOCK_BYTES) * Q8_0_BLOCK : w.length;
  const out = new Float32Array(n);
  widenInto(w, 0, out);
  return out;
}

/** A view over matrices that lie back to back in one buffer (same type), or undefined. */
export function adjacentMatrix<M extends Matrix>(parts: (M | undefined)[]): M | undefined {
  const a = parts[0];
  if (!a) return undefined;
  let end = a.byteOffset + a.byteLength;
  for (const p of parts.slice(1)) {
    if (!p || p.constructor !== a.constructor || p.buffer !== a.buffer || p.byteOffset !== end)
      return undefined;
    end += p.byteLength;
  }
  const C = a.constructor as new (b: ArrayBufferLike, off: number, len: number) => M;
  return new C(a.buffer, a.byteOffset, (end - a.byteOffset) / a.BYTES_PER_ELEMENT);
}
