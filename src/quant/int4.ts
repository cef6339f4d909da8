/**
 * int4: 4-bit integer codes per element, groups along head_dim with an f16 scale
 * (asymmetric by default (5.0 bits/element at group 32 with f16 scale and zero-point); symmetric group 32 is llama.cpp's q4_0 layout (4.5 bits)). Group-wise integer KV quantization as in FlexGen (Sheng et al. 2023) and
 * llama.cpp's KV cache types; the exact arithmetic is specified in integer.ts.
 */
import { makeIntCodec } from "./integer.ts";
import type { Codec, CodecOptions } from "./types.ts";

export const int4Defaults = { group: 32, symmetric: false } as const;

export function int4(options: Partial<CodecOptions> = {}): Codec {
  return makeIntCodec(
    {
      type: "int4",
      group: options.group ?? int4Defaults.group,
      symmetric: options.symmetric ?? int4Defaults.symmetric,
      axis: "token",
    },
    4,
  );
}
