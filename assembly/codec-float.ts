// Float codecs (f32, f16, bf16, fp8-e4m3): one code per element, no scales (src/quant/float-codec.ts).
import { F16_MAX, f32ToBf16, f32ToF16, f32ToFp8E4M3, KIND_BF16, KIND_F16, KIND_F32, loadFloat1, loadFloat4 } from "./half";

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

/**
 * 4 f16 codes (u32 lanes) of 4 f32 whose f32 exponents are all in f16's normal range
 * (the caller checks): rebias, then round to nearest even on the 13 dropped bits
 * (r += (rem + 0xfff + lsb) >> 13, which may carry into Inf exactly as the reference does).
 */
// @ts-ignore: decorator
@inline
function f16x4Normal(b: v128): v128 {
  const sign = v128.and(i32x4.shr_u(b, 16), i32x4.splat(0x8000));
  const r = i32x4.sub(v128.and(i32x4.shr_u(b, 13), i32x4.splat(0x3ffff)), i32x4.splat(112 << 10));
  const rem = v128.and(b, i32x4.splat(0x1fff));
  const up = i32x4.shr_u(i32x4.add(i32x4.add(rem, i32x4.splat(0xfff)), v128.and(r, i32x4.splat(1))), 13);
  return v128.or(sign, i32x4.add(r, up));
}

/** 4 bf16 codes (u32 lanes): round to nearest even, NaN kept quiet (f32ToBf16 lane-wise). */
// @ts-ignore: decorator
@inline
function bf16x4(b: v128): v128 {
  const isNan = i32x4.gt_u(v128.and(b, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  const lsb = v128.and(i32x4.shr_u(b, 16), i32x4.splat(1));
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(b, i32x4.splat(0x7fff)), lsb), 16);
  const quiet = v128.or(i32x4.shr_u(b, 16), i32x4.splat(0x40));
  return v128.and(v128.bitselect(quiet, rounded, isNan), i32x4.splat(0xffff));
}

/**
 * Encode n = nRows * headDim contiguous f32 elements at src into codes at dst (row-major, no padding).
 * Writes {nonFinite, saturated} as two i32 at stats. f32, bf16 and f16 take a SIMD body (f16
 * only for chunks of 4 whose exponents are all in its normal range; other chunks, fp8 and the
 * tail go through the scalar port of half.ts).
 */
export function encodeFloat(kind: i32, src: usize, n: i32, dst: usize, stats: usize): void {
  let nonFinite = 0;
  let saturated = 0;
  const max: f32 = kind == KIND_F16 ? F16_MAX : kind == KIND_BF16 ? BF16_MAX : kind == KIND_F32 ? Infinity : FP8_MAX;
  let i = 0;
  if (kind != 3) {
    const vmax = f32x4.splat(max);
    for (; i + 4 <= n; i += 4) {
      const x = v128.load(src + (<usize>i << 2));
      const ax = f32x4.abs(x);
      const fin = f32x4.lt(ax, f32x4.splat(Infinity));
      nonFinite += 4 - <i32>popcnt<u32>(<u32>i32x4.bitmask(fin));
      saturated += <i32>popcnt<u32>(<u32>i32x4.bitmask(v128.and(fin, f32x4.gt(ax, vmax))));
      if (kind == KIND_F32) v128.store(dst + (<usize>i << 2), x);
      else if (kind == KIND_BF16) v128.store64_lane(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(bf16x4(x), bf16x4(x)), 0);
      else {
        const e = v128.and(i32x4.shr_u(x, 23), i32x4.splat(0xff));
        if (i32x4.all_true(v128.and(i32x4.ge_s(e, i32x4.splat(113)), i32x4.le_s(e, i32x4.splat(142))))) {
          const h = f16x4Normal(x);
          v128.store64_lane(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(h, h), 0);
        } else for (let k = 0; k < 4; k++) encodeOne(kind, load<f32>(src + (<usize>(i + k) << 2)), dst, <usize>(i + k));
      }
    }
  }
  for (; i < n; i++) {
    const x = load<f32>(src + (<usize>i << 2));
    if (!isFinite<f32>(x)) nonFinite++;
    else if (Mathf.abs(x) > max) saturated++;
    encodeOne(kind, x, dst, <usize>i);
  }
  store<i32>(stats, nonFinite);
  store<i32>(stats, saturated, 4);
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
  if (kind == KIND_F32) decodeFloatLoop(KIND_F32, src, n, dst);
  else if (kind == KIND_F16) decodeFloatLoop(KIND_F16, src, n, dst);
  else if (kind == KIND_BF16) decodeFloatLoop(KIND_BF16, src, n, dst);
  else decodeFloatLoop(3, src, n, dst);
}
