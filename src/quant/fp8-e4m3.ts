/**
 * fp8-e4m3: OCP 8-bit float E4M3 (Micikevicius et al. 2022, "FP8 Formats for Deep Learning"),
 * as vLLM's fp8 KV cache stores it: bias 7, no Inf, round to nearest even, saturating to ±448
 * (±Inf too; counted as non-finite). No per-group scale: the cache stores raw values.
 */

import { makeFloatCodec } from "./float-codec.ts";
import { f32ToFp8E4M3, fp8E4M3ToF32 } from "./half.ts";

export const fp8E4M3 = makeFloatCodec({
  name: "fp8-e4m3",
  bytes: 1,
  encode: f32ToFp8E4M3,
  decode: fp8E4M3ToF32,
  max: 448,
  mantissaBits: 3,
  minExponent: -6,
});
