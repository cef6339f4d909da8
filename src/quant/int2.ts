/**
 * int2: 2-bit integer codes per element, groups along head_dim with an f16 scale
 * (asymmetric by default (3.0 bits/element at group 32); the per-token baseline KIVI improves on). Group-wise integer KV quantization as in FlexGen (Sheng et al. 2023) and
 * llama.cpp's KV cache types; the exact arithmetic is specified in integer.ts.
 */
import { makeIntCodec } from "./integer.ts";
import type { Codec, CodecOptions } from "./types.ts";

export const int2Defaults = { group: 32, symmetric: false } as const;

export function int2(options: Partial<CodecOptions> = {}): Codec {
  return makeIntCodec(
    {
      type: "int2",
      group: options.group ?? int2Defaults.group,
      symmetric: options.symmetric ?? int2Defaults.symmetric,
      axis: "token",
    },
    2,
  );
}
