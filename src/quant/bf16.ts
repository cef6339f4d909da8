/** bf16: bfloat16 (the top 16 bits of f32), round to nearest even; keeps f32's range. */

import { makeFloatCodec } from "./float-codec.ts";
import { bf16ToF32, f32ToBf16 } from "./half.ts";

export const bf16 = makeFloatCodec({
  name: "bf16",
  bytes: 2,
  encode: f32ToBf16,
  decode: bf16ToF32,
  max: 3.3895313892515355e38,
  mantissaBits: 7,
  minExponent: -126,
});
