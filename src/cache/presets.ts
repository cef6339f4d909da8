/**
 * Named presets: a method from a paper or a peer tool expressed as codec (+ policy) settings.
 * A preset is plain data, expanded by resolveCacheSpec; explicit fields in a spec override it.
 */
import type { CodecOptions } from "../quant/types.ts";
import type { PolicySpec } from "./types.ts";

export interface Preset {
  description: string;
  paper?: string;
  keys: CodecOptions;
  values: CodecOptions;
  policy?: PolicySpec;
}

export const PRESETS: Record<string, Preset> = {
  q8_0: {
    description: "llama.cpp's q8_0 KV type: int8 symmetric, blocks of 32, f16 scale (8.5 bits)",
    paper: "llama.cpp ggml q8_0",
    keys: { type: "int8", group: 32, symmetric: true },
    values: { type: "int8", group: 32, symmetric: true },
  },
  q4_0: {
    description: "llama.cpp's q4_0 KV type: int4 symmetric, blocks of 32, f16 scale (4.5 bits)",
    paper: "llama.cpp ggml q4_0",
    keys: { type: "int4", group: 32, symmetric: true },
    values: { type: "int4", group: 32, symmetric: true },
  },
};
