/**
 * int8: 8-bit integer codes per element, groups along head_dim with an f16 scale
 * (symmetric by default, like llama.cpp's q8_0 (8.5 bits/element at group 32)). Group-wise integer KV quantization as in FlexGen (Sheng et al. 2023) and
 * llama.cpp's KV cache types; the exact arithmetic is specified in integer.ts.
 */
import { makeIntCodec } from "./integer.ts";
import type { Codec, CodecOptions } from "./types.ts";

export const int8Defaults = { group: 32, symmetric: true } as const;

export function int8(options: Partial<CodecOptions> = {}): Codec {
  return makeIntCodec(
    {
      type: "int8",
      group: options.group ?? int8Defaults.group,
      symmetric: options.symmetric ?? int8Defaults.symmetric,
      axis: "token",
    },
    8,
  );
}
