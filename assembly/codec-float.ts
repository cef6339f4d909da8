// Float codecs (f32, f16, bf16, fp8-e4m3): one code per element, no scales (src/quant/float-codec.ts).
import {
  F16_MAX,
  f32ToBf16,
  f32ToF16,
  f32ToFp8E4M3,
  f32x4ToF16,
  KIND_BF16,
  KIND_F16,
  KIND_F32,
  loadFloat1,
  loadFloat4,
} from "./half";

const BF16_MAX: f32 = 3.3895313892515355e38;
const FP8_MAX: f32 = 448.0;

// @ts-ignore: decorator
@inline
function encodeOne(kind: i32, x: f32, dst: usize, i: usize): void {
  if (kind == KIND_F32) store<f32>(dst + (i << 2), x);
  else if (kind == KIND_F16) store<u16>(dst + (i << 1), <u16>f32ToF16(x));
  else if (kind == KIND_BF16) store<u16>(dst + (i << 1), <u16>f32ToBf16(x));
  else store<u8>(dst + i, <u8>f32ToFp8E4M3(x));
}

// Splatted constants, loaded from memory once per call: V8 keeps them in registers, where a
// v128.const inside a loop is rebuilt from immediates (3 instructions) at every use.
const FK: usize = memory.data<u32>(
  [
    0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, // 0: |x| mask
    0x8000, 0x8000, 0x8000, 0x8000, // 16: f16 sign bit (of x >> 16)
    1, 1, 1, 1, // 32
    0xfff - (112 << 23), 0xfff - (112 << 23), 0xfff - (112 << 23), 0xfff - (112 << 23), // 48: rebias + half
    0x38800000, 0x38800000, 0x38800000, 0x38800000, // 64: 2^-14, smallest f16 normal
    0x477fe000, 0x477fe000, 0x477fe000, 0x477fe000, // 80: 65504, largest f16
    0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff, // 96: sign and f16 exponent/mantissa after >> 3
    0x77800000, 0x77800000, 0x77800000, 0x77800000, // 112: 2^112
    0xf800f800, 0xf800f800, 0xf800f800, 0xf800f800, // 128: f16 exponent 31 (<< 1), as u16 lanes
    0x7ffff - (120 << 23), 0x7ffff - (120 << 23), 0x7ffff - (120 << 23), 0x7ffff - (120 << 23), // 144: fp8 rebias + half
    0x46800000, 0x46800000, 0x46800000, 0x46800000, // 160: 2^14 (its ulp is the fp8 subnormal step 2^-9)
    0x3c800000, 0x3c800000, 0x3c800000, 0x3c800000, // 176: 2^-6, smallest fp8 normal
    0x7e, 0x7e, 0x7e, 0x7e, // 192: fp8 448 (largest finite)
    0x7f, 0x7f, 0x7f, 0x7f, // 208: fp8 NaN
    0x80, 0x80, 0x80, 0x80, // 224: fp8 sign (of x >> 24)
    0x43e00000, 0x43e00000, 0x43e00000, 0x43e00000, // 240: 448f
    0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // 256: Inf
    0x7fff, 0x7fff, 0x7fff, 0x7fff, // 272: bf16 half - 1
    0x40, 0x40, 0x40, 0x40, // 288: bf16 quiet bit
    0x87f00000, 0x87f00000, 0x87f00000, 0x87f00000, // 304: fp8 sign and exponent/mantissa after << 24 >> 4
    0x7b800000, 0x7b800000, 0x7b800000, 0x7b800000, // 320: 2^120
    0xfefefefe, 0xfefefefe, 0xfefefefe, 0xfefefefe, // 336: fp8 NaN code << 1, in u8 lanes
  ],
  16,
);

/**
 * f16 codes of n f32 at src, in blocks of 64. A block is first converted for f16's normal
 * range (rebias, round the 13 dropped bits to nearest even: (|x| + 0xfff + lsb) >> 13; the
 * carry may reach Inf, as in the reference) while tracking min and max of |x| bits; a block with
 * any |x| outside [2^-14, 65504] (subnormal, saturating, Inf, NaN) is redone with the full
 * conversion and counted. Returns the elements done (a multiple of 64); counts added at stats.
 */
function encodeF16Blocks(src: usize, n: i32, dst: usize, stats: usize): i32 {
  const kAbs = v128.load(FK);
  const kSign = v128.load(FK, 16);
  const kOne = v128.load(FK, 32);
  const kBias = v128.load(FK, 48);
  const kMin = v128.load(FK, 64);
  const kMax = v128.load(FK, 80);
  const kFin = i32x4.splat(0x7f7fffff);
  let nf = i32x4.splat(0);
  let big = i32x4.splat(0);
  let i = 0;
  for (; i + 64 <= n; i += 64) {
    const x = src + (<usize>i << 2);
    const d = dst + (<usize>i << 1);
    let mn = kAbs;
    let mx = i32x4.splat(0);
    for (let j: usize = 0; j < 64; j += 8) {
      const x0 = v128.load(x + (j << 2));
      const x1 = v128.load(x + (j << 2), 16);
      const a0 = v128.and(x0, kAbs);
      const a1 = v128.and(x1, kAbs);
      mn = i32x4.min_s(mn, i32x4.min_s(a0, a1));
      mx = i32x4.max_s(mx, i32x4.max_s(a0, a1));
      const h0 = i32x4.shr_u(i32x4.add(i32x4.add(a0, kBias), v128.and(i32x4.shr_u(a0, 13), kOne)), 13);
      const h1 = i32x4.shr_u(i32x4.add(i32x4.add(a1, kBias), v128.and(i32x4.shr_u(a1, 13), kOne)), 13);
      const s0 = v128.and(i32x4.shr_u(x0, 16), kSign);
      const s1 = v128.and(i32x4.shr_u(x1, 16), kSign);
      v128.store(d + (j << 1), i16x8.narrow_i32x4_u(v128.or(h0, s0), v128.or(h1, s1)));
    }
    if (v128.any_true(v128.or(i32x4.lt_s(mn, kMin), i32x4.gt_s(mx, kMax)))) {
      for (let j: usize = 0; j < 64; j += 8) {
        const x0 = v128.load(x + (j << 2));
        const x1 = v128.load(x + (j << 2), 16);
        const a0 = v128.and(x0, kAbs);
        const a1 = v128.and(x1, kAbs);
        const f = i32x4.add(i32x4.gt_s(a0, kFin), i32x4.gt_s(a1, kFin));
        nf = i32x4.sub(nf, f);
        big = i32x4.add(i32x4.sub(big, i32x4.add(i32x4.gt_s(a0, kMax), i32x4.gt_s(a1, kMax))), f);
        v128.store(d + (j << 1), i16x8.narrow_i32x4_u(f32x4ToF16(x0), f32x4ToF16(x1)));
      }
    }
  }
  addCounts(stats, nf, big);
  return i;
}

// @ts-ignore: decorator
@inline
function addCounts(stats: usize, nf: v128, big: v128): void {
  const a = i32x4.extract_lane(nf, 0) + i32x4.extract_lane(nf, 1) + i32x4.extract_lane(nf, 2) + i32x4.extract_lane(nf, 3);
  const b = i32x4.extract_lane(big, 0) + i32x4.extract_lane(big, 1) + i32x4.extract_lane(big, 2) + i32x4.extract_lane(big, 3);
  store<i32>(stats, load<i32>(stats) + a);
  store<i32>(stats, load<i32>(stats, 4) + b, 4);
}

/**
 * f32 values of n f16 codes at src, in blocks of 64: h << 16, arithmetic shift right by 3 and a
 * mask give sign | (h & 0x7fff) << 13, and one exact multiply by 2^112 rebiases normals and
 * subnormals alike (the sign rides along). A block holding an Inf/NaN code (exponent 31) is
 * redone with f16x4ToF32, which maps those by bits. Returns the elements done.
 */
function decodeF16Blocks(src: usize, n: i32, dst: usize): i32 {
  const kMask = v128.load(FK, 96);
  const kScale = v128.load(FK, 112);
  const kInf = v128.load(FK, 128);
  const zero = i32x4.splat(0);
  let i = 0;
  for (; i + 64 <= n; i += 64) {
    const p = src + (<usize>i << 1);
    const d = dst + (<usize>i << 2);
    let e = zero;
    for (let j: usize = 0; j < 64; j += 16) {
      const h0 = v128.load(p + (j << 1));
      const h1 = v128.load(p + (j << 1), 16);
      e = i16x8.max_u(e, i16x8.max_u(i16x8.shl(h0, 1), i16x8.shl(h1, 1)));
      const a = i16x8.shuffle(zero, h0, 0, 8, 1, 9, 2, 10, 3, 11);
      const b = i16x8.shuffle(zero, h0, 4, 12, 5, 13, 6, 14, 7, 15);
      const c = i16x8.shuffle(zero, h1, 0, 8, 1, 9, 2, 10, 3, 11);
      const f = i16x8.shuffle(zero, h1, 4, 12, 5, 13, 6, 14, 7, 15);
      const o = d + (j << 2);
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(a, 3), kMask), kScale));
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(b, 3), kMask), kScale), 16);
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(c, 3), kMask), kScale), 32);
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(f, 3), kMask), kScale), 48);
    }
    if (v128.any_true(i16x8.eq(i16x8.max_u(e, kInf), e)))
      for (let j: usize = 0; j < 64; j += 4) v128.store(d + (j << 2), loadFloat4(KIND_F16, p, j));
  }
  return i;
}

/** f32 "decode": a copy, 16 elements per step. Returns the elements done. */
function copyF32(src: usize, n: i32, dst: usize): i32 {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = src + (<usize>i << 2);
    const d = dst + (<usize>i << 2);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const c = v128.load(p, 32);
    const e = v128.load(p, 48);
    v128.store(d, a);
    v128.store(d, b, 16);
    v128.store(d, c, 32);
    v128.store(d, e, 48);
  }
  return i;
}

/**
 * f32 values of n fp8-e4m3 codes at src, 16 per step: each code zipped with zeros into the top
 * byte of a u32 lane, arithmetic shift right by 4 and a mask give sign | (v & 0x7f) << 20, and
 * one exact multiply by 2^120 rebiases normals and subnormals (the sign rides along). A block of
 * 32 holding a NaN code (0x7f / 0xff) is redone with fp8x4ToF32. Returns the elements done.
 */
function decodeFp8Blocks(src: usize, n: i32, dst: usize): i32 {
  const kMask = v128.load(FK, 304);
  const kScale = v128.load(FK, 320);
  const kNan = v128.load(FK, 336);
  const zero = i32x4.splat(0);
  let i = 0;
  for (; i + 32 <= n; i += 32) {
    const p = src + <usize>i;
    const d = dst + (<usize>i << 2);
    let e = zero;
    for (let j: usize = 0; j < 32; j += 16) {
      const v = v128.load(p + j);
      e = i8x16.max_u(e, i8x16.add(v, v));
      const lo = i8x16.shuffle(zero, v, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const hi = i8x16.shuffle(zero, v, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const o = d + (j << 2);
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(i16x8.shuffle(zero, lo, 0, 8, 1, 9, 2, 10, 3, 11), 4), kMask), kScale));
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(i16x8.shuffle(zero, lo, 4, 12, 5, 13, 6, 14, 7, 15), 4), kMask), kScale), 16);
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(i16x8.shuffle(zero, hi, 0, 8, 1, 9, 2, 10, 3, 11), 4), kMask), kScale), 32);
      v128.store(o, f32x4.mul(v128.and(i32x4.shr_s(i16x8.shuffle(zero, hi, 4, 12, 5, 13, 6, 14, 7, 15), 4), kMask), kScale), 48);
    }
    if (v128.any_true(i8x16.eq(e, kNan))) for (let j: usize = 0; j < 32; j += 4) v128.store(d + (j << 2), loadFloat4(3, p, j));
  }
  return i;
}

/** bf16 codes -> f32: each code is the top half of its f32, so a zip with zeros is the whole decode. */
function decodeBf16Blocks(src: usize, n: i32, dst: usize): i32 {
  const zero = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), i16x8.shuffle(zero, h, 0, 8, 1, 9, 2, 10, 3, 11));
    v128.store(dst + (<usize>i << 2), i16x8.shuffle(zero, h, 4, 12, 5, 13, 6, 14, 7, 15), 16);
  }
  return i;
}

/**
 * 4 bf16 codes (u32 lanes) of b, whose |x| bits are a: round to nearest even, NaN kept quiet
 * (f32ToBf16 lane-wise). Every result fits 16 bits: rounding never wraps for non-NaN b.
 */
// @ts-ignore: decorator
@inline
function bf16x4(b: v128, a: v128, kOne: v128, kInf: v128, kHalf: v128, kQuiet: v128): v128 {
  const t = i32x4.shr_u(b, 16);
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(b, kHalf), v128.and(t, kOne)), 16);
  return v128.bitselect(v128.or(t, kQuiet), rounded, i32x4.gt_s(a, kInf));
}

/**
 * bf16 (T = i16; T = f32 gives a copy, unused: see encodeF32) codes of n f32 at src, in blocks of 64, tracking the
 * largest |x| bits. A block whose largest |x| is beyond the format's largest finite value
 * (saturating, Inf or NaN) is redone with the NaN-aware conversion and counted (non-finite:
 * above the largest finite f32; saturated: above the format's largest, minus the non-finite).
 * Returns the elements done (a multiple of 64).
 */
function encodeWide<T>(src: usize, n: i32, dst: usize, stats: usize): i32 {
  // T picks the format at compile time, so each copy folds its branches.
  const kind = isFloat<T>() ? KIND_F32 : KIND_BF16;
  const kAbs = v128.load(FK);
  const kFin = i32x4.splat(0x7f7fffff);
  const kMax = i32x4.splat(kind == KIND_BF16 ? 0x7f7f0000 : 0x7f7fffff);
  const kOne = v128.load(FK, 32);
  const kInf = v128.load(FK, 256);
  const kHalf = v128.load(FK, 272);
  const kQuiet = v128.load(FK, 288);
  let nf = i32x4.splat(0);
  let big = i32x4.splat(0);
  let i = 0;
  for (; i + 64 <= n; i += 64) {
    const x = src + (<usize>i << 2);
    let mx = i32x4.splat(0);
    for (let j: usize = 0; j < 64; j += 8) {
      const x0 = v128.load(x + (j << 2));
      const x1 = v128.load(x + (j << 2), 16);
      mx = i32x4.max_s(mx, i32x4.max_s(v128.and(x0, kAbs), v128.and(x1, kAbs)));
      if (kind == KIND_F32) {
        v128.store(dst + ((<usize>i + j) << 2), x0);
        v128.store(dst + ((<usize>i + j) << 2), x1, 16);
      } else {
        const h0 = i32x4.shr_u(i32x4.add(i32x4.add(x0, kHalf), v128.and(i32x4.shr_u(x0, 16), kOne)), 16);
        const h1 = i32x4.shr_u(i32x4.add(i32x4.add(x1, kHalf), v128.and(i32x4.shr_u(x1, 16), kOne)), 16);
        v128.store(dst + ((<usize>i + j) << 1), i16x8.narrow_i32x4_u(h0, h1));
      }
    }
    if (v128.any_true(i32x4.gt_s(mx, kMax))) {
      for (let j: usize = 0; j < 64; j += 8) {
        const x0 = v128.load(x + (j << 2));
        const x1 = v128.load(x + (j << 2), 16);
        const a0 = v128.and(x0, kAbs);
        const a1 = v128.and(x1, kAbs);
        const f = i32x4.add(i32x4.gt_s(a0, kFin), i32x4.gt_s(a1, kFin));
        nf = i32x4.sub(nf, f);
        if (kind == KIND_BF16) {
          big = i32x4.add(i32x4.sub(big, i32x4.add(i32x4.gt_s(a0, kMax), i32x4.gt_s(a1, kMax))), f);
          const h0 = bf16x4(x0, a0, kOne, kInf, kHalf, kQuiet);
          const h1 = bf16x4(x1, a1, kOne, kInf, kHalf, kQuiet);
          v128.store(dst + ((<usize>i + j) << 1), i16x8.narrow_i32x4_u(h0, h1));
        }
      }
    }
  }
  addCounts(stats, nf, big);
  return i;
}

/**
 * 4 fp8-e4m3 codes (u32 lanes) of 4 f32: f32ToFp8E4M3 lane-wise, branch-free. Normal range:
 * rebias and round the 20 dropped bits to nearest even, then saturate at 0x7e (448; the
 * reference clamps r > 0x7e, which also covers |x| >= 512 and Inf). Below 2^-6: |x| + 2^14
 * rounds |x| to a multiple of 2^-9 by the f32 addition itself. NaN: 0x7f.
 */
// @ts-ignore: decorator
@inline
function fp8x4(b: v128, kAbs: v128, kOne: v128): v128 {
  const ax = v128.and(b, kAbs);
  const t = i32x4.add(ax, v128.and(i32x4.shr_u(ax, 20), kOne));
  const normal = i32x4.min_u(i32x4.shr_u(i32x4.add(t, v128.load(FK, 144)), 20), v128.load(FK, 192));
  const magic = v128.load(FK, 160);
  const sub = i32x4.sub(f32x4.add(ax, magic), magic);
  let r = v128.bitselect(sub, normal, i32x4.lt_s(ax, v128.load(FK, 176)));
  r = v128.bitselect(v128.load(FK, 208), r, i32x4.gt_s(ax, v128.load(FK, 256)));
  return v128.or(r, v128.and(i32x4.shr_u(b, 24), v128.load(FK, 224)));
}

/** fp8-e4m3 codes of n f32 at src, 16 per step, counts in i32x4 lanes. Returns the elements done. */
function encodeFp8Blocks(src: usize, n: i32, dst: usize, stats: usize): i32 {
  const kAbs = v128.load(FK);
  const kOne = v128.load(FK, 32);
  const kFin = i32x4.splat(0x7f7fffff);
  const kMax = v128.load(FK, 240);
  let nf = i32x4.splat(0);
  let big = i32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = src + (<usize>i << 2);
    const x0 = v128.load(p);
    const x1 = v128.load(p, 16);
    const x2 = v128.load(p, 32);
    const x3 = v128.load(p, 48);
    const a0 = v128.and(x0, kAbs);
    const a1 = v128.and(x1, kAbs);
    const a2 = v128.and(x2, kAbs);
    const a3 = v128.and(x3, kAbs);
    nf = i32x4.sub(nf, i32x4.add(i32x4.add(i32x4.gt_s(a0, kFin), i32x4.gt_s(a1, kFin)), i32x4.add(i32x4.gt_s(a2, kFin), i32x4.gt_s(a3, kFin))));
    big = i32x4.sub(big, i32x4.add(i32x4.add(i32x4.gt_s(a0, kMax), i32x4.gt_s(a1, kMax)), i32x4.add(i32x4.gt_s(a2, kMax), i32x4.gt_s(a3, kMax))));
    const lo = i16x8.narrow_i32x4_u(fp8x4(x0, kAbs, kOne), fp8x4(x1, kAbs, kOne));
    const hi = i16x8.narrow_i32x4_u(fp8x4(x2, kAbs, kOne), fp8x4(x3, kAbs, kOne));
    v128.store(dst + <usize>i, i8x16.narrow_i16x8_u(lo, hi));
  }
  addCounts(stats, nf, i32x4.sub(big, nf));
  return i;
}

/** f32 "encode": a copy, 16 per step, tracking the largest |x| bits; non-finite counted only if any. */
function encodeF32(src: usize, n: i32, dst: usize, stats: usize): i32 {
  const kAbs = v128.load(FK);
  const kFin = i32x4.splat(0x7f7fffff);
  let mx = i32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = src + (<usize>i << 2);
    const d = dst + (<usize>i << 2);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const c = v128.load(p, 32);
    const e = v128.load(p, 48);
    mx = i32x4.max_s(mx, i32x4.max_s(i32x4.max_s(v128.and(a, kAbs), v128.and(b, kAbs)), i32x4.max_s(v128.and(c, kAbs), v128.and(e, kAbs))));
    v128.store(d, a);
    v128.store(d, b, 16);
    v128.store(d, c, 32);
    v128.store(d, e, 48);
  }
  if (v128.any_true(i32x4.gt_s(mx, kFin))) {
    let nf = i32x4.splat(0);
    for (let j = 0; j < i; j += 4) nf = i32x4.sub(nf, i32x4.gt_s(v128.and(v128.load(src + (<usize>j << 2)), kAbs), kFin));
    addCounts(stats, nf, i32x4.splat(0));
  }
  return i;
}

/**
 * Encode n = nRows * headDim contiguous f32 elements at src into codes at dst (row-major, no padding).
 * Writes {nonFinite, saturated} as two i32 at stats. f32, f16 and bf16 take a SIMD body of 8
 * elements per step (f16: a short path when all 8 are in its normal range, else the full
 * branch-free conversion); fp8 and the tail go through the scalar port of half.ts.
 */
export function encodeFloat(kind: i32, src: usize, n: i32, dst: usize, stats: usize): void {
  store<i32>(stats, 0);
  store<i32>(stats, 0, 4);
  let i = 0;
  if (kind == KIND_F32) i = encodeF32(src, n, dst, stats);
  else if (kind == KIND_F16) i = encodeF16Blocks(src, n, dst, stats);
  else if (kind == KIND_BF16) i = encodeWide<i16>(src, n, dst, stats);
  else i = encodeFp8Blocks(src, n, dst, stats);
  let nonFinite = 0;
  let saturated = 0;
  const max: f32 = kind == KIND_F16 ? F16_MAX : kind == KIND_BF16 ? BF16_MAX : kind == KIND_F32 ? Infinity : FP8_MAX;
  for (; i < n; i++) {
    const x = load<f32>(src + (<usize>i << 2));
    if (!isFinite<f32>(x)) nonFinite++;
    else if (Mathf.abs(x) > max) saturated++;
    encodeOne(kind, x, dst, <usize>i);
  }
  store<i32>(stats, load<i32>(stats) + nonFinite);
  store<i32>(stats, load<i32>(stats, 4) + saturated, 4);
}

// @ts-ignore: decorator
@inline
export function decodeFloatLoop(kind: i32, src: usize, n: i32, dst: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), loadFloat4(kind, src, <usize>i));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), loadFloat1(kind, src, <usize>i));
}

/** Decode n contiguous codes at src into f32 at dst. SIMD body, scalar tail. */
export function decodeFloat(kind: i32, src: usize, n: i32, dst: usize): void {
  if (kind == KIND_F32) {
    const i = copyF32(src, n, dst);
    decodeFloatLoop(KIND_F32, src + (<usize>i << 2), n - i, dst + (<usize>i << 2));
  } else if (kind == KIND_F16) {
    const i = decodeF16Blocks(src, n, dst);
    decodeFloatLoop(KIND_F16, src + (<usize>i << 1), n - i, dst + (<usize>i << 2));
  } else if (kind == KIND_BF16) {
    const i = decodeBf16Blocks(src, n, dst);
    decodeFloatLoop(KIND_BF16, src + (<usize>i << 1), n - i, dst + (<usize>i << 2));
  }
  else {
    const i = decodeFp8Blocks(src, n, dst);
    decodeFloatLoop(3, src + <usize>i, n - i, dst + (<usize>i << 2));
  }
}
