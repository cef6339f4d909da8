// Bit-exact f32 <-> small-float conversions, ported from src/quant/half.ts (the specification),
// plus SIMD loaders that widen 4 stored codes to an f32x4 in registers.

export const F16_MAX: f32 = 65504.0;

/** f32 -> f16 bits, round to nearest even, subnormals, overflow to Inf, quiet NaN (half.ts f32ToF16). */
export function f32ToF16(x: f32): u32 {
  const b = reinterpret<u32>(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = <i32>((b >>> 23) & 0xff);
  const mant = b & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = <u32>(14 - e);
    const half = <u32>1 << (shift - 1);
    const rem = m & ((<u32>1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem == half && (r & 1) == 1)) r += 1;
    return sign | r;
  }
  let r = (<u32>e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1)) r += 1;
  return sign | r;
}

/** f16 bits -> f32 (exact). Normals and subnormals by one exact multiply; Inf/NaN by bits. */
// @ts-ignore: decorator
@inline
export function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const em = (h & 0x7fff) << 13;
  if ((h & 0x7c00) == 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | em);
  return reinterpret<f32>(sign | reinterpret<u32>(reinterpret<f32>(em) * reinterpret<f32>(<u32>0x77800000)));
}

function f16NextUp(h: u32): u32 {
  if (h == 0x8000) return 0x0001;
  return h & 0x8000 ? h - 1 : h + 1;
}

function f16NextDown(h: u32): u32 {
  if (h == 0x0000) return 0x8001;
  return h & 0x8000 ? h + 1 : h - 1;
}

/** Smallest f16 >= x, saturating at +-65504 (finite x): scales round up (integer.ts). */
export function f32ToF16Up(x: f32): u32 {
  if (x >= F16_MAX) return 0x7bff;
  if (x <= -F16_MAX) return 0xfbff;
  let h = f32ToF16(x);
  if (f16ToF32(h) < x) h = f16NextUp(h);
  return h;
}

/** Largest f16 <= x, saturating at +-65504 (finite x): asymmetric minimums round down. */
export function f32ToF16Down(x: f32): u32 {
  if (x >= F16_MAX) return 0x7bff;
  if (x <= -F16_MAX) return 0xfbff;
  let h = f32ToF16(x);
  if (f16ToF32(h) > x) h = f16NextDown(h);
  return h;
}

/** f32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN. */
// @ts-ignore: decorator
@inline
export function f32ToBf16(x: f32): u32 {
  const b = reinterpret<u32>(x);
  if ((b & 0x7f800000) == 0x7f800000 && (b & 0x7fffff) != 0) return ((b >>> 16) | 0x40) & 0xffff;
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** f32 -> OCP FP8 E4M3, round to nearest even, saturating (half.ts f32ToFp8E4M3). */
export function f32ToFp8E4M3(x: f32): u32 {
  const b = reinterpret<u32>(x);
  const sign = (b >>> 24) & 0x80;
  const exp = <i32>((b >>> 23) & 0xff);
  const mant = b & 0x7fffff;
  if (exp == 0xff && mant != 0) return sign | 0x7f;
  if (exp == 0xff) return sign | 0x7e;
  const e = exp - 127 + 7;
  if (e >= 16) return sign | 0x7e;
  if (e <= 0) {
    if (e < -3) return sign;
    const m = mant | 0x800000;
    const shift = <u32>(21 - e);
    const half = <u32>1 << (shift - 1);
    const rem = m & ((<u32>1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem == half && (r & 1) == 1)) r += 1;
    return sign | r;
  }
  let r = (<u32>e << 3) | (mant >>> 20);
  const rem = mant & 0xfffff;
  if (rem > 0x80000 || (rem == 0x80000 && (r & 1) == 1)) r += 1;
  if (r > 0x7e) r = 0x7e;
  return sign | r;
}

/** FP8 E4M3 bits -> f32 (exact): one exact multiply by 2^120 for normals and subnormals. */
// @ts-ignore: decorator
@inline
export function fp8E4M3ToF32(v: u32): f32 {
  const sign = (v & 0x80) << 24;
  if ((v & 0x7f) == 0x7f) return reinterpret<f32>(<u32>0x7fc00000); // as the reference: a plain NaN
  const em = (v & 0x7f) << 20;
  return reinterpret<f32>(sign | reinterpret<u32>(reinterpret<f32>(em) * reinterpret<f32>(<u32>0x7b800000)));
}

// ---- SIMD widening of 4 codes (u32 lanes) to f32x4 ----

/** 4 f16 codes in u32 lanes -> f32x4 (same arithmetic as f16ToF32, lane-wise). */
// @ts-ignore: decorator
@inline
export function f16x4ToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const scaled = f32x4.mul(em, f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
  const infnan = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  return v128.or(sign, v128.bitselect(v128.or(em, i32x4.splat(0x7f800000)), scaled, infnan));
}

// Splatted constants of the SIMD conversions below, loaded from memory: V8 rebuilds a
// non-trivial v128.const from immediates (3 instructions) at every use, a load is one.
const HK: usize = memory.data<u32>(
  [
    0x8000, 0x8000, 0x8000, 0x8000, // 0: f16 sign (of x >> 16)
    0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, // 16: |x| mask
    1, 1, 1, 1, // 32
    0xfff - (112 << 23), 0xfff - (112 << 23), 0xfff - (112 << 23), 0xfff - (112 << 23), // 48: rebias + half
    0x3f000000, 0x3f000000, 0x3f000000, 0x3f000000, // 64: 0.5f
    0x38800000, 0x38800000, 0x38800000, 0x38800000, // 80: 2^-14
    0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // 96: Inf
    0x3ff, 0x3ff, 0x3ff, 0x3ff, // 112
    0x7e00, 0x7e00, 0x7e00, 0x7e00, // 128: f16 quiet NaN
    0x7c00, 0x7c00, 0x7c00, 0x7c00, // 144: f16 Inf
    0x477fffff, 0x477fffff, 0x477fffff, 0x477fffff, // 160: below 65536
    0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff, // 176: sign and exponent/mantissa after >> 3
    0x77800000, 0x77800000, 0x77800000, 0x77800000, // 192: 2^112
  ],
  16,
);

/**
 * 4 f32 (any bit patterns) -> 4 f16 codes in u32 lanes: f32ToF16 lane-wise, branch-free.
 * Normal range: rebias and round the 13 dropped bits to nearest even, (|x| - (112 << 23) +
 * 0xfff + lsb) >> 13 (a carry may reach Inf, as in the reference). Below 2^-14: |x| + 0.5
 * rounds |x| to a multiple of 2^-24 (the f16 subnormal step is the ulp of 0.5), nearest even,
 * by the f32 addition itself; it may round up to 0x400, the smallest normal, as the reference
 * does. |x| >= 65536: Inf, or NaN keeping the top payload bits.
 */
// @ts-ignore: decorator
@inline
export function f32x4ToF16(b: v128): v128 {
  const sign = v128.and(i32x4.shr_u(b, 16), v128.load(HK));
  const ax = v128.and(b, v128.load(HK, 16));
  const t = i32x4.shr_u(ax, 13);
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(ax, v128.load(HK, 48)), v128.and(t, v128.load(HK, 32))), 13);
  const half = v128.load(HK, 64);
  const sub = i32x4.sub(f32x4.add(ax, half), half);
  let r = v128.bitselect(sub, normal, i32x4.lt_s(ax, v128.load(HK, 80)));
  // NaN: 0x7c00 | 0x200 | top mantissa bits; Inf and overflow: 0x7c00.
  const nan = v128.and(i32x4.gt_s(ax, v128.load(HK, 96)), v128.or(v128.and(t, v128.load(HK, 112)), v128.load(HK, 128)));
  r = v128.bitselect(v128.or(nan, v128.load(HK, 144)), r, i32x4.gt_s(ax, v128.load(HK, 160)));
  return v128.or(r, sign);
}

/** 4 finite f16 codes (no Inf/NaN: the caller knows) in u32 lanes -> f32x4, exactly. */
// @ts-ignore: decorator
@inline
export function f16x4FiniteToF32(h: v128): v128 {
  // h << 16 >> 3 (arithmetic) then a mask: sign | (h & 0x7fff) << 13; the multiply by 2^112
  // rebiases normals and subnormals exactly and keeps the sign.
  return f32x4.mul(v128.and(i32x4.shr_s(i32x4.shl(h, 16), 3), v128.load(HK, 176)), v128.load(HK, 192));
}

/** 4 fp8-e4m3 codes in u32 lanes -> f32x4. */
// @ts-ignore: decorator
@inline
export function fp8x4ToF32(v: v128): v128 {
  const sign = i32x4.shl(v128.and(v, i32x4.splat(0x80)), 24);
  const low = v128.and(v, i32x4.splat(0x7f));
  const scaled = f32x4.mul(i32x4.shl(low, 20), f32x4.splat(reinterpret<f32>(<u32>0x7b800000)));
  const nan = i32x4.eq(low, i32x4.splat(0x7f));
  return v128.bitselect(i32x4.splat(0x7fc00000), v128.or(sign, scaled), nan);
}

export const KIND_F32: i32 = 0;
export const KIND_F16: i32 = 1;
export const KIND_BF16: i32 = 2;
export const KIND_FP8: i32 = 3;
export const KIND_INT: i32 = 4;

/** Load elements [i, i+4) of a float-codec row at p as f32x4. `kind` is a constant at every call site. */
// @ts-ignore: decorator
@inline
export function loadFloat4(kind: i32, p: usize, i: usize): v128 {
  if (kind == KIND_F32) return v128.load(p + (i << 2));
  if (kind == KIND_F16) return f16x4ToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(p + (i << 1))));
  if (kind == KIND_BF16) return i32x4.shl(i32x4.extend_low_i16x8_u(v128.load64_zero(p + (i << 1))), 16);
  return fp8x4ToF32(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p + i))));
}

/** Load element i of a float-codec row at p as f32. */
// @ts-ignore: decorator
@inline
export function loadFloat1(kind: i32, p: usize, i: usize): f32 {
  if (kind == KIND_F32) return load<f32>(p + (i << 2));
  if (kind == KIND_F16) return f16ToF32(<u32>load<u16>(p + (i << 1)));
  if (kind == KIND_BF16) return reinterpret<f32>(<u32>load<u16>(p + (i << 1)) << 16);
  return fp8E4M3ToF32(<u32>load<u8>(p + i));
}
