/**
 * Named presets: a method from a paper or a peer tool expressed as a cache spec. A preset is
 * plain data that resolveCacheSpec expands into the full spec (keys, values, policy). A codec
 * given with a preset replaces the preset's row codec on that side and keeps its storage
 * options (`{ preset: kivi2, codec: { values: f32 } }` keeps the f32 value window); nothing
 * reads the preset name afterwards: the resolved
 * spec alone says how the cache is stored (channel-axis keys, residual windows, rotation,
 * pre-RoPE keys).
 */
import type { GgmlType } from "../quant/ggml-block.ts";
import { ggmlBitsPerElement } from "../quant/ggml-types.ts";
import { CODECS } from "../quant/registry.ts";
import type { PolicySpec, SideInput } from "./types.ts";

export interface Preset {
  description: string;
  paper?: string;
  keys: SideInput;
  values: SideInput;
  policy?: PolicySpec;
}

// KIVI: keys per channel over groups of 32 tokens, values per token, the newest 128 keys and
// values in f32 (the keys' residual doubles as the values' window, as in the paper).
const kiviKeys = { group: 32, symmetric: false, axis: "channel", residual: 128 } as const;
const kiviValues = { group: 32, symmetric: false, residual: 128 } as const;
const asym32 = { group: 32, symmetric: false } as const;

function ggmlPreset(type: GgmlType): Preset {
  return {
    description: `llama.cpp's ${type} KV cache type for keys and values (-ctk ${type} -ctv ${type}): ggml blocks of 32, ${ggmlBitsPerElement(type)} bits; head_dim must be a multiple of 32`,
    paper: CODECS[type].paper,
    keys: { type },
    values: { type },
  };
}

export const PRESETS: Record<string, Preset> = {
  // llama.cpp's cache types, both sides (`-ctk T -ctv T`); the codec of each is ggml's own
  // block format (src/quant/ggml-*.ts). Mixes are `{ codec: { keys: f16, values: q4_0 } }`.
  q8_0: ggmlPreset("q8_0"),
  q4_0: ggmlPreset("q4_0"),
  q4_1: ggmlPreset("q4_1"),
  q5_0: ggmlPreset("q5_0"),
  q5_1: ggmlPreset("q5_1"),
  iq4_nl: ggmlPreset("iq4_nl"),
  kivi2: {
    description:
      "KIVI-2: keys int2 per channel (groups of 32 tokens), values int2 per token, asymmetric g32; newest 128 tokens f32",
    paper: "Liu et al. 2024 (KIVI), arXiv:2402.02750",
    keys: { type: "int2", ...kiviKeys },
    values: { type: "int2", ...kiviValues },
  },
  "kivi2-prerope": {
    description:
      "KIVI-2 with keys quantized before RoPE and rotated at attention time (KVQuant's pre-RoPE keys)",
    paper: "Hooper et al. 2024 (KVQuant), arXiv:2401.18079; Liu et al. 2024 (KIVI)",
    keys: { type: "int2", ...kiviKeys, preRope: true },
    values: { type: "int2", ...kiviValues },
  },
  kivi4: {
    description:
      "KIVI-4: keys int4 per channel (groups of 32 tokens), values int4 per token, asymmetric g32; newest 128 tokens f32",
    paper: "Liu et al. 2024 (KIVI), arXiv:2402.02750",
    keys: { type: "int4", ...kiviKeys },
    values: { type: "int4", ...kiviValues },
  },
  "int4-hadamard": {
    description: "int4 asymmetric g32 per token, keys (and queries) Hadamard-rotated with seeded signs",
    paper: "Ashkboos et al. 2024 (QuaRot), arXiv:2404.00456",
    keys: { type: "int4", ...asym32, rotation: "hadamard" },
    values: { type: "int4", ...asym32 },
  },
  "int2-hadamard": {
    description: "int2 asymmetric g32 per token, keys (and queries) Hadamard-rotated with seeded signs",
    paper: "Ashkboos et al. 2024 (QuaRot), arXiv:2404.00456",
    keys: { type: "int2", ...asym32, rotation: "hadamard" },
    values: { type: "int2", ...asym32 },
  },
};
