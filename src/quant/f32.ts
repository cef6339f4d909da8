/** f32: the uncompressed reference codec (4 bytes per element, stored as-is). */

import { makeFloatCodec } from "./float-codec.ts";
import { f32Bits, f32FromBits } from "./half.ts";

export const f32 = makeFloatCodec({
  name: "f32",
  bytes: 4,
  encode: f32Bits,
  decode: f32FromBits,
  max: 3.4028234663852886e38,
  mantissaBits: 23,
  minExponent: -126,
});
