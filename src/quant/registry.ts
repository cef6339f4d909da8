/**
 * The codec registry: an explicit table from name to constructor, defaults and description.
 * Nothing registers itself by side effect; adding a codec means adding a row here.
 */
import { ConfigError } from "../errors.ts";
import { bf16 } from "./bf16.ts";
import { f16 } from "./f16.ts";
import { f32 } from "./f32.ts";
import { fp8E4M3 } from "./fp8-e4m3.ts";
import type { GgmlType } from "./ggml-block.ts";
import { ggmlCodec } from "./ggml-types.ts";
import { int2 } from "./int2.ts";
import { int4 } from "./int4.ts";
import { int8 } from "./int8.ts";
import { makeTurboCodec, TURBO_BITS, type TurboName } from "./turboquant.ts";
import { makeTurboQjlCodec, TURBO_QJL, type TurboQjlName } from "./turboquant-qjl.ts";
import type { Codec, CodecName, CodecOptions } from "./types.ts";

export interface CodecEntry {
  name: CodecName;
  /** true for the integer codecs, which take `group` and `symmetric`. */
  grouped: boolean;
  /**
   * ggml block types: group and symmetry are fixed by the format (blocks of 32; symmetric
   * unless the block stores a minimum). Given options must equal these or be left out.
   */
  block?: { group: 32; symmetric: boolean };
  /**
   * The side's rotation when the spec gives none (TurboQuant's codebooks assume rotated
   * coordinates); an explicit `rotation: none` still turns it off (an ablation).
   */
  rotation?: "hadamard";
  description: string;
  paper?: string;
  make(options: Partial<CodecOptions>): Codec;
}

export const CODECS: Record<CodecName, CodecEntry> = {
  f32: {
    name: "f32",
    grouped: false,
    description: "IEEE f32, uncompressed reference (32 bits)",
    make: () => f32,
  },
  f16: {
    name: "f16",
    grouped: false,
    description: "IEEE binary16, round-to-nearest-even (16 bits)",
    make: () => f16,
  },
  bf16: {
    name: "bf16",
    grouped: false,
    description: "bfloat16, round-to-nearest-even (16 bits)",
    make: () => bf16,
  },
  "fp8-e4m3": {
    name: "fp8-e4m3",
    grouped: false,
    description: "OCP FP8 E4M3, saturating, no scale (8 bits)",
    paper: "Micikevicius et al. 2022, arXiv:2209.05433",
    make: () => fp8E4M3,
  },
  int8: {
    name: "int8",
    grouped: true,
    description: "8-bit groups along head_dim, f16 scale; default symmetric g32 (8.5 bits)",
    make: int8,
  },
  int4: {
    name: "int4",
    grouped: true,
    description: "4-bit groups along head_dim, f16 scale+zero; default asymmetric g32 (5.0 bits)",
    make: int4,
  },
  int2: {
    name: "int2",
    grouped: true,
    description: "2-bit groups along head_dim, f16 scale+zero; default asymmetric g32 (3.0 bits)",
    make: int2,
  },
  q4_0: ggmlEntry("q4_0", true, "4-bit, d = signed max / -8, 16 levels (4.5 bits)", "q4_0"),
  q4_1: ggmlEntry("q4_1", false, "4-bit, d = (max - min) / 15 and min m (5.0 bits)", "q4_1"),
  q5_0: ggmlEntry("q5_0", true, "5-bit, d = signed max / -16, 32 levels (5.5 bits)", "q5_0"),
  q5_1: ggmlEntry("q5_1", false, "5-bit, d = (max - min) / 31 and min m (6.0 bits)", "q5_1"),
  q8_0: ggmlEntry("q8_0", true, "8-bit, d = amax / 127, round half away (8.5 bits)", "q8_0"),
  iq4_nl: ggmlEntry(
    "iq4_nl",
    true,
    "4-bit indices into ggml's 16-level non-linear table, one weighted least-squares scale step (4.5 bits)",
    "iq4_nl (llama.cpp PR 5590)",
  ),
  turbo2: turboEntry("turbo2"),
  "turbo2.5": turboEntry("turbo2.5"),
  turbo3: turboEntry("turbo3"),
  "turbo3.5": turboEntry("turbo3.5"),
  turbo4: turboEntry("turbo4"),
  "turbo3-qjl": turboQjlEntry("turbo3-qjl"),
  "turbo4-qjl": turboQjlEntry("turbo4-qjl"),
};

function turboQjlEntry(name: TurboQjlName): CodecEntry {
  const { bits, mse } = TURBO_QJL[name];
  return {
    name,
    grouped: false,
    rotation: "hadamard",
    description: `TurboQuant_prod: ${mse} codes plus the 1-bit QJL sign sketch of the residual and its f16 norm; unbiased scores, for keys (${bits} + 32/head_dim bits)`,
    paper: "Zandieh et al. 2025 (TurboQuant), arXiv:2504.19874; Zandieh et al. 2024 (QJL), arXiv:2406.03482",
    make: () => makeTurboQjlCodec(name),
  };
}

function turboEntry(name: TurboName): CodecEntry {
  const [lo, hi] = TURBO_BITS[name];
  const bits = lo === hi ? `${lo}-bit` : `${hi}-bit on half the coordinates, ${lo}-bit on the rest,`;
  return {
    name,
    grouped: false,
    rotation: "hadamard",
    description: `TurboQuant MSE: Hadamard-rotated row, ${bits} Lloyd-Max codebook of a rotated unit vector's coordinate, one f16 norm per row (${(lo + hi) / 2} + 16/head_dim bits)`,
    paper: "Zandieh et al. 2025 (TurboQuant), arXiv:2504.19874",
    make: () => makeTurboCodec(name),
  };
}

function ggmlEntry(name: GgmlType, symmetric: boolean, what: string, source: string): CodecEntry {
  return {
    name,
    grouped: false,
    block: { group: 32, symmetric },
    description: `llama.cpp's ${name} cache type, ggml blocks of 32 with f16 d: ${what}; head_dim must be a multiple of 32`,
    paper: `ggml (llama.cpp) ggml-quants.c quantize_row_${source.split(" ")[0]}_ref / ggml-common.h block_${source}`,
    make: () => ggmlCodec(name),
  };
}

export const CODEC_NAMES = Object.keys(CODECS) as CodecName[];

export function isCodecName(name: string): name is CodecName {
  return Object.hasOwn(CODECS, name);
}

const ALLOWED_GROUPS = [8, 16, 32, 64, 128];

/** Build a codec from a name or options object, validating every field. `path` names it in errors. */
export function makeCodec(spec: CodecName | CodecOptions, path = "codec"): Codec {
  const options: CodecOptions = typeof spec === "string" ? { type: spec } : spec;
  if (!isCodecName(options.type))
    throw new ConfigError(
      typeof spec === "string" ? path : `${path}.type`,
      `unknown codec "${String(options.type)}"; known codecs: ${CODEC_NAMES.join(", ")}`,
    );
  const entry = CODECS[options.type];
  for (const key of Object.keys(options)) {
    if (!["type", "group", "symmetric", "axis"].includes(key))
      throw new ConfigError(`${path}.${key}`, `unknown option for codec ${entry.name}`);
  }
  if (entry.block) {
    // The format fixes both; its own resolved values (which createCache passes back) are accepted.
    if (options.group !== undefined && options.group !== entry.block.group)
      throw new ConfigError(
        `${path}.group`,
        `${entry.name} has fixed ggml blocks of ${entry.block.group} (remove group, or use an int codec for other groups)`,
      );
    if (options.symmetric !== undefined && options.symmetric !== entry.block.symmetric)
      throw new ConfigError(
        `${path}.symmetric`,
        `${entry.name} is ${entry.block.symmetric ? "symmetric" : "asymmetric (d and a minimum)"} by definition (remove symmetric)`,
      );
    if (options.axis !== undefined && options.axis !== "token")
      throw new ConfigError(`${path}.axis`, `${entry.name} quantizes along head_dim: axis must be "token"`);
    return entry.make(options);
  }
  // Ungrouped codecs accept their own resolved defaults (group "head", symmetric), which
  // resolveCacheSpec fills in and createCache passes back here.
  if (!entry.grouped && options.group !== undefined && options.group !== "head")
    throw new ConfigError(`${path}.group`, `codec ${entry.name} takes no group option (remove it)`);
  if (!entry.grouped && options.symmetric !== undefined && options.symmetric !== true)
    throw new ConfigError(`${path}.symmetric`, `codec ${entry.name} takes no symmetric option (remove it)`);
  if (options.group !== undefined && options.group !== "head" && !ALLOWED_GROUPS.includes(options.group))
    throw new ConfigError(
      `${path}.group`,
      `expected one of ${ALLOWED_GROUPS.join(", ")} or "head", got ${JSON.stringify(options.group)}`,
    );
  if (options.symmetric !== undefined && typeof options.symmetric !== "boolean")
    throw new ConfigError(
      `${path}.symmetric`,
      `expected true or false, got ${JSON.stringify(options.symmetric)}`,
    );
  if (options.axis !== undefined && options.axis !== "token")
    throw new ConfigError(
      `${path}.axis`,
      `only "token" is supported by plain codecs (use a kivi preset for channel)`,
    );
  return entry.make(options);
}
