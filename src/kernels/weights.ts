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
 */
import { f16ToF32 } from "../quant/half.ts";

/** IEEE 754 binary16 bit patterns (row-major like the f32 matrix they stand for). */
export class F16Array extends Uint16Array {}
/** bfloat16 bit patterns: the upper 16 bits of the f32 (widening is a 16-bit shift). */
export class BF16Array extends Uint16Array {}

/** A Linear weight (dOut, dIn) row-major, in one of the types the matmul reads. */
export type Matrix = Float32Array | F16Array | BF16Array;
export type MatrixType = "f32" | "f16" | "bf16";

export function matrixType(w: Matrix): MatrixType {
  if (w instanceof Float32Array) return "f32";
  if (w instanceof F16Array) return "f16";
  if (w instanceof BF16Array) return "bf16";
  throw new TypeError(
    `matmul: weights of type ${(w as object).constructor?.name}: expected Float32Array, F16Array or BF16Array`,
  );
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
  matrixType(w); // throws for anything that is not a BF16Array
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = w[start + i]! << 16;
}

/** The whole matrix in f32 (a new array; the same array for f32). */
export function matrixF32(w: Matrix): Float32Array {
  if (w instanceof Float32Array) return w;
  const out = new Float32Array(w.length);
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
