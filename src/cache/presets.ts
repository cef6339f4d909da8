/**
 * Named presets: a method from a paper or a peer tool expressed as codec (+ policy) settings.
 * A preset is plain data, expanded by resolveCacheSpec; explicit fields in a spec override it.
 * Storage options that are not per-row codec options (channel-axis keys, Hadamard rotation)
 * live on the preset and are read back by the cache through `storageOf(spec)`.
 */
import type { CodecOptions } from "../quant/types.ts";
import type { PolicySpec, ResolvedCacheSpec } from "./types.ts";

/** Key storage along the channel axis (groups of `group` tokens, `residual` f32 tokens first). */
export interface ChannelKeyStorage {
  axis: "channel";
  group: number;
  residual: number;
  /** Newest tokens whose values stay f32 before per-token quantization (KIVI: the same residual). */
  valueResidual?: number;
}

export interface Preset {
  description: string;
  paper?: string;
  keys: CodecOptions;
  values: CodecOptions;
  policy?: PolicySpec;
  /** Quantize keys per channel over groups of tokens (the key codec's bits and symmetry). */
  keyStorage?: ChannelKeyStorage;
  /** Rotate keys (and queries) by a seeded randomized Hadamard transform before quantization. */
  rotate?: "hadamard";
  /** Store keys before RoPE, rotated at attention time at their absolute positions (KVQuant). */
  preRope?: boolean;
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
  kivi2: {
    description:
      "KIVI-2: keys int2 per channel (groups of 32 tokens), values int2 per token, asymmetric g32; newest 128 tokens f32",
    paper: "Liu et al. 2024 (KIVI), arXiv:2402.02750",
    keys: { type: "int2", group: 32, symmetric: false },
    values: { type: "int2", group: 32, symmetric: false },
    keyStorage: { axis: "channel", group: 32, residual: 128, valueResidual: 128 },
  },
  "kivi2-prerope": {
    description:
      "KIVI-2 with keys quantized before RoPE and rotated at attention time (KVQuant's pre-RoPE keys)",
    paper: "Hooper et al. 2024 (KVQuant), arXiv:2401.18079; Liu et al. 2024 (KIVI)",
    keys: { type: "int2", group: 32, symmetric: false },
    values: { type: "int2", group: 32, symmetric: false },
    keyStorage: { axis: "channel", group: 32, residual: 128, valueResidual: 128 },
    preRope: true,
  },
  kivi4: {
    description:
      "KIVI-4: keys int4 per channel (groups of 32 tokens), values int4 per token, asymmetric g32; newest 128 tokens f32",
    paper: "Liu et al. 2024 (KIVI), arXiv:2402.02750",
    keys: { type: "int4", group: 32, symmetric: false },
    values: { type: "int4", group: 32, symmetric: false },
    keyStorage: { axis: "channel", group: 32, residual: 128, valueResidual: 128 },
  },
  "int4-hadamard": {
    description: "int4 asymmetric g32 per token, keys (and queries) Hadamard-rotated with seeded signs",
    paper: "Ashkboos et al. 2024 (QuaRot), arXiv:2404.00456",
    keys: { type: "int4", group: 32, symmetric: false },
    values: { type: "int4", group: 32, symmetric: false },
    rotate: "hadamard",
  },
  "int2-hadamard": {
    description: "int2 asymmetric g32 per token, keys (and queries) Hadamard-rotated with seeded signs",
    paper: "Ashkboos et al. 2024 (QuaRot), arXiv:2404.00456",
    keys: { type: "int2", group: 32, symmetric: false },
    values: { type: "int2", group: 32, symmetric: false },
    rotate: "hadamard",
  },
};

/** The storage options a resolved spec carries through its preset (none for plain codecs). */
export function storageOf(spec: ResolvedCacheSpec): {
  keyStorage?: ChannelKeyStorage;
  rotate?: "hadamard";
  preRope?: boolean;
} {
  const p =
    spec.preset !== undefined && Object.hasOwn(PRESETS, spec.preset) ? PRESETS[spec.preset] : undefined;
  return {
    ...(p?.keyStorage ? { keyStorage: p.keyStorage } : {}),
    ...(p?.rotate ? { rotate: p.rotate } : {}),
    ...(p?.preRope ? { preRope: true } : {}),
  };
}
