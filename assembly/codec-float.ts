// Float codecs (f32, f16, bf16, fp8-e4m3): one code per element, no scales (src/quant/float-codec.ts).
import { F16_MAX, f32ToBf16, f32ToF16, f32ToFp8E4M3, KIND_BF16, KIND_F16, KIND_F32, loadFloat1, loadFloat4 } from "./half";

const BF16_MAX: f32 = 3.3895313892515355e38;
const FP8_MAX: f32 = 448.0;

/**
 * Encode n = nRows * headDim contiguous f32 elements at src into codes at dst (row-major, no padding).
 * Writes {nonFinite, saturated} as two i32 at stats. Scalar: the conversions branch per element
 * and encoding is off the attention hot path.
 */
export function encodeFloat(kind: i32, src: usize, n: i32, dst: usize, stats: usize): void {
  let nonFinite = 0;
  let saturated = 0;
  const max: f32 = kind == KIND_F16 ? F16_MAX : kind == KIND_BF16 ? BF16_MAX : kind == KIND_F32 ? Infinity : FP8_MAX;
  for (let i = 0; i < n; i++) {
    const x = load<f32>(src + (<usize>i << 2));
    if (!isFinite<f32>(x)) nonFinite++;
    else if (Mathf.abs(x) > max) saturated++;
    if (kind == KIND_F32) store<f32>(dst + (<usize>i << 2), x);
    else if (kind == KIND_F16) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16(x));
    else if (kind == KIND_BF16) store<u16>(dst + (<usize>i << 1), <u16>f32ToBf16(x));
    else store<u8>(dst + <usize>i, <u8>f32ToFp8E4M3(x));
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
