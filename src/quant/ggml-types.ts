/**
 * The ggml cache types as kvlab codecs (llama.cpp's `-ctk` / `-ctv` types): q4_0, q4_1, q5_0,
 * q5_1, q8_0 (ggml-legacy.ts) and iq4_nl (ggml-iq4nl.ts) in the block frame of ggml-block.ts.
 * Their options are fixed by the format: blocks of 32 along head_dim, symmetric (d only) or
 * with a minimum (q4_1, q5_1: d and m).
 */
import { type BlockFormat, type GgmlType, makeBlockCodec } from "./ggml-block.ts";
import { IQ4_NL } from "./ggml-iq4nl.ts";
import { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 } from "./ggml-legacy.ts";
import type { Codec } from "./types.ts";

export const GGML_FORMATS: Record<GgmlType, BlockFormat> = {
  q4_0: Q4_0,
  q4_1: Q4_1,
  q5_0: Q5_0,
  q5_1: Q5_1,
  q8_0: Q8_0,
  iq4_nl: IQ4_NL,
};

/** Bits per element of a ggml type, scales included: 8 * (block bytes) / 32. */
export function ggmlBitsPerElement(type: GgmlType): number {
  const f = GGML_FORMATS[type];
  return (8 * (2 + (f.hasMin ? 2 : 0) + f.payloadBytes)) / 32;
}

export function ggmlCodec(type: GgmlType): Codec {
  const f = GGML_FORMATS[type];
  return makeBlockCodec(f, { type, group: 32, symmetric: !f.hasMin, axis: "token" });
}
