/**
 * f16: IEEE 754 binary16, round to nearest even, with subnormals; values beyond ±65504 round
 * to ±Inf as IEEE specifies (counted as saturated), NaN stays NaN. This is llama.cpp's
 * default `-ctk f16 -ctv f16` cache type.
 */

import { makeFloatCodec } from "./float-codec.ts";
import { f16ToF32, f32ToF16 } from "./half.ts";

export const f16 = makeFloatCodec({
  name: "f16",
  bytes: 2,
  encode: f32ToF16,
  decode: f16ToF32,
  max: 65504,
  mantissaBits: 10,
  minExponent: -14,
});
