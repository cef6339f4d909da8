/**
 * Facts about the float formats, written from their definitions (IEEE 754 binary16/binary32,
 * bfloat16, OCP FP8 E4M3) and independent of src/quant, for oracles and error bounds.
 */

export interface FloatFacts {
  /** Explicit mantissa bits. */
  mant: number;
  /** Exponent of the smallest normal (below it the spacing is fixed: subnormals). */
  minExp: number;
  /** Largest finite magnitude. */
  max: number;
}

export const FLOAT_FACTS: Record<"f32" | "f16" | "bf16" | "fp8-e4m3", FloatFacts> = {
  f32: { mant: 23, minExp: -126, max: (2 - 2 ** -23) * 2 ** 127 },
  f16: { mant: 10, minExp: -14, max: (2 - 2 ** -10) * 2 ** 15 },
  bf16: { mant: 7, minExp: -126, max: (2 - 2 ** -7) * 2 ** 127 },
  // E4M3 has no Inf; the all-ones code is NaN, so the largest finite is 1.75 * 2^8 = 448.
  "fp8-e4m3": { mant: 3, minExp: -6, max: 448 },
};

/** Exact binade of |x| (floor(log2 |x|) with Math.log2's off-by-one near powers of two fixed). */
export function binade(ax: number): number {
  let e = Math.floor(Math.log2(ax));
  if (2 ** e > ax) e--;
  else if (2 ** (e + 1) <= ax) e++;
  return e;
}

/** Half the spacing of the format's grid around x: the largest error of round-to-nearest. */
export function halfUlp(x: number, f: FloatFacts): number {
  const ax = Math.abs(x);
  const e = ax >= 2 ** f.minExp ? binade(ax) : f.minExp;
  return 2 ** (e - f.mant - 1);
}
