/**
 * Bit-exact scalar conversions between f32 and the small float formats the codecs store:
 * IEEE binary16 (f16), bfloat16 (bf16) and OCP FP8 E4M3. These are the specification the
 * WASM and WGSL kernels must reproduce bit for bit.
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The raw bits of x rounded to f32. */
export function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0]!;
}

/** The f32 whose raw bits are `bits`. */
export function f32FromBits(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0]!;
}

/**
 * f32 -> f16 bits, round to nearest even. Handles subnormals, overflow to ±Inf and NaN
 * (kept quiet, sign kept). Works on the f32 bit pattern so it is exact (no double rounding).
 */
export function f32ToF16(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  // Unbiased exponent re-biased for f16 (bias 15).
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // Subnormal f16 (or zero): shift the full significand (with implicit 1) right.
    if (e < -10) return sign; // rounds to zero (even ties at exactly half of min subnormal go to 0)
    const m = mant | 0x800000;
    const shift = 14 - e; // 24-bit significand -> 10-bit subnormal field
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem === half && (r & 1) === 1)) r += 1;
    return sign | r; // r may carry into the exponent field: that is the correct smallest normal
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r += 1; // may carry to Inf: correct
  return sign | r;
}

/** f16 bits -> f32 value (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The next f16 toward +Inf (for finite h); used to round scales up. */
function f16NextUp(h: number): number {
  if (h === 0x8000) return 0x0001; // -0 -> smallest positive subnormal
  return h & 0x8000 ? h - 1 : h + 1;
}

/** The next f16 toward -Inf (for finite h). */
function f16NextDown(h: number): number {
  if (h === 0x0000) return 0x8001;
  return h & 0x8000 ? h + 1 : h - 1;
}

/** Largest finite f16. */
export const F16_MAX = 65504;

/**
 * Smallest f16 >= x, saturating at ±65504 (finite x). Scales are rounded up so that the
 * quantization grid always covers the group's range: no element is clipped by scale rounding.
 */
export function f32ToF16Up(x: number): number {
  if (x >= F16_MAX) return 0x7bff;
  if (x <= -F16_MAX) return 0xfbff;
  let h = f32ToF16(x);
  if (f16ToF32(h) < x) h = f16NextUp(h);
  return h;
}

/** Largest f16 <= x, saturating at ±65504 (finite x). Used for asymmetric minimums. */
export function f32ToF16Down(x: number): number {
  if (x >= F16_MAX) return 0x7bff;
  if (x <= -F16_MAX) return 0xfbff;
  let h = f32ToF16(x);
  if (f16ToF32(h) > x) h = f16NextDown(h);
  return h;
}

/** f32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN. */
export function f32ToBf16(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** bf16 bits -> f32 value (exact). */
export function bf16ToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** Largest finite FP8 E4M3 value (OCP spec; the format has no Inf). */
export const FP8_E4M3_MAX = 448;

/**
 * f32 -> FP8 E4M3 (OCP, bias 7, no Inf, NaN = 0x7f), round to nearest even, saturating:
 * finite values and ±Inf beyond ±448 become ±448 (the "satfinite" mode of NVIDIA/OCP).
 */
export function f32ToFp8E4M3(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 24) & 0x80;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff && mant !== 0) return sign | 0x7f;
  if (exp === 0xff) return sign | 0x7e; // ±Inf saturates
  const e = exp - 127 + 7;
  if (e >= 16) return sign | 0x7e;
  if (e <= 0) {
    if (e < -3) return sign; // below half the smallest subnormal 2^-9 (ties at exactly half go to 0)
    const m = mant | 0x800000;
    const shift = 21 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem === half && (r & 1) === 1)) r += 1;
    return sign | r;
  }
  let r = (e << 3) | (mant >>> 20);
  const rem = mant & 0xfffff;
  if (rem > 0x80000 || (rem === 0x80000 && (r & 1) === 1)) r += 1;
  if (r > 0x7e) r = 0x7e; // 0x7f is NaN: saturate to 448
  return sign | r;
}

/** FP8 E4M3 bits -> f32 value (exact). */
export function fp8E4M3ToF32(v: number): number {
  const sign = v & 0x80 ? -1 : 1;
  const exp = (v >>> 3) & 0xf;
  const mant = v & 7;
  if (exp === 0xf && mant === 7) return Number.NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** Round half to even, as WASM `f32.nearest` and WGSL `round` do (Math.round rounds half up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
