/**
 * Cache spec parsing: the one format shared by the API, the CLI's --cache and experiment
 * configs. Every error names the path of the offending field.
 *
 *   "int8"                                  a codec name (keys and values) or a preset name
 *   { codec: { type: int4, group: 32, symmetric: false } }
 *   { codec: { keys: int8, values: { type: int4 } } }
 *   { preset: kivi2, policy: { type: h2o, budget: 0.2 } }
 *   { codec: { keys: { type: int2, group: 32, axis: channel, residual: 128 },
 *              values: { type: int2, residual: 128 } } }        storage options per side
 *   { name, keys: {...}, values: {...}, policy: {...} }       a resolved spec (runs.jsonl)
 *   { codec: int4, query: q8 }              queries rounded to q8_0 for integer dot products
 *                                           (src/quant/q8-query.ts); default f32 = exact
 *   { codec: int4, query: q8w }             q8 plus the softmax weights over int8/int4 value
 *                                           codes in q8_0 per block of 32 slots (q8-weights.ts)
 */
import { ConfigError } from "../errors.ts";
import { CODEC_NAMES, CODECS, isCodecName, makeCodec } from "../quant/registry.ts";
import type { Codec, CodecOptions } from "../quant/types.ts";
import { needsPlainKeys, parsePolicy } from "./policies/registry.ts";
import { PRESETS } from "./presets.ts";
import type { CacheSpecInput, PolicySpec, ResolvedCacheSpec, SideSpec } from "./types.ts";

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function sideObject(x: unknown, path: string): Record<string, unknown> {
  if (typeof x === "string") {
    if (!isCodecName(x)) throw new ConfigError(path, `unknown codec "${x}"`);
    return { type: x };
  }
  if (!isObject(x) || typeof x.type !== "string")
    throw new ConfigError(path, `expected a codec name or { type: <codec>, ... }, got ${JSON.stringify(x)}`);
  return x;
}

/**
 * One side of the cache with every option filled in. The row codec's own options (type,
 * group, symmetric) are validated by constructing the codec; the storage options around it
 * (axis, residual, rotation, preRope) here, including which side may use them.
 */
function resolveSide(x: unknown, side: "keys" | "values", path: string): SideSpec {
  const { axis = "token", residual = 0, rotation: given, preRope = false, ...row } = sideObject(x, path);
  // A codec may default its side's rotation (TurboQuant); anything else defaults to none.
  const rotation =
    given ??
    (typeof row.type === "string" && isCodecName(row.type) ? CODECS[row.type].rotation : undefined) ??
    "none";
  if (axis !== "token" && axis !== "channel")
    throw new ConfigError(`${path}.axis`, `expected "token" or "channel", got ${JSON.stringify(axis)}`);
  if (axis === "channel" && side === "values")
    throw new ConfigError(
      `${path}.axis`,
      `values are quantized per token; axis "channel" is for keys (KIVI): set it under codec.keys`,
    );
  if (!Number.isSafeInteger(residual) || (residual as number) < 0)
    throw new ConfigError(`${path}.residual`, `expected a token count >= 0, got ${JSON.stringify(residual)}`);
  if (rotation !== "none" && rotation !== "hadamard")
    throw new ConfigError(
      `${path}.rotation`,
      `expected "none" or "hadamard", got ${JSON.stringify(rotation)}`,
    );
  if (typeof preRope !== "boolean")
    throw new ConfigError(`${path}.preRope`, `expected true or false, got ${JSON.stringify(preRope)}`);
  if (side === "values" && preRope)
    throw new ConfigError(`${path}.preRope`, "only keys are stored before RoPE: set it under codec.keys");
  const { type, group, symmetric } = makeCodec(row as unknown as CodecOptions, path).options;
  if (axis === "channel") {
    if (type !== "int2" && type !== "int4" && type !== "int8")
      throw new ConfigError(
        `${path}.type`,
        `channel-axis keys need an integer key codec (int2, int4, int8), got ${type}`,
      );
    if (group === "head")
      throw new ConfigError(
        `${path}.group`,
        `channel-axis keys need a group of tokens (a number), not "head"`,
      );
    if ((residual as number) < group)
      throw new ConfigError(
        `${path}.residual`,
        `channel-axis keys gather at least one group (${group} tokens) in f32 before quantizing: residual must be >= group, got ${residual}`,
      );
  } else if (side === "keys" && residual !== 0)
    throw new ConfigError(
      `${path}.residual`,
      `token-axis keys are encoded on arrival; a residual window of keys needs axis: "channel"`,
    );
  return { type, group, symmetric, axis, residual: residual as number, rotation, preRope };
}

/** The storage options of a side (resolveSide validates them), as `kvlab info` lists them. */
export const STORAGE_OPTIONS: Record<keyof Omit<SideSpec, "type" | "group" | "symmetric">, StorageOption> = {
  axis: {
    values: "token | channel",
    description:
      "token: each row encoded on arrival; channel (keys): per channel over groups of `group` tokens",
    paper: "Liu et al. 2024 (KIVI), arXiv:2402.02750",
  },
  residual: {
    values: "tokens >= 0",
    description: "newest tokens held in f32 before they are quantized (channel keys; values)",
    paper: "Liu et al. 2024 (KIVI), arXiv:2402.02750",
  },
  rotation: {
    values: "none | hadamard",
    description:
      "seeded randomized Hadamard before encoding, any codec: keys (queries alike) or values (output rotated back); default hadamard for turbo*",
    paper:
      "Ashkboos et al. 2024 (QuaRot), arXiv:2404.00456; Zandieh et al. 2025 (TurboQuant), arXiv:2504.19874",
  },
  preRope: {
    values: "true | false",
    description: "keys only: stored before RoPE, rotated at attention time",
    paper: "Hooper et al. 2024 (KVQuant), arXiv:2401.18079",
  },
};

export interface StorageOption {
  values: string;
  description: string;
  paper?: string;
}

const STORAGE_KEYS = Object.keys(STORAGE_OPTIONS);

/**
 * A side given over a preset's side: the given codec replaces the preset's row codec (type,
 * group, symmetric), and the preset's storage options stay unless given too, so that
 * `{ preset: int4-hadamard, codec: f32 }` is f32 with rotated keys.
 */
function overPreset(preset: unknown, given: unknown, path: string): Record<string, unknown> {
  const p = sideObject(preset, path);
  const storage = Object.fromEntries(Object.entries(p).filter(([k]) => STORAGE_KEYS.includes(k)));
  return { ...storage, ...sideObject(given, path) };
}

/** Short label of one side, e.g. "int4a-g32", "int2a-g32-ch-r128", "f16". */
function sideLabel(c: SideSpec): string {
  let s = c.type.startsWith("int") ? `${c.type}${c.symmetric ? "s" : "a"}-g${c.group}` : c.type;
  if (c.axis === "channel") s += "-ch";
  if (c.residual) s += `-r${c.residual}`;
  if (c.rotation !== "none") s += `-${c.rotation}`;
  if (c.preRope) s += "-prerope";
  return s;
}

function policyLabel(p: PolicySpec): string {
  const opts = Object.entries(p)
    .filter(([k]) => k !== "type")
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  return opts.length ? `${p.type}(${opts.join(",")})` : p.type;
}

const SPEC_KEYS = ["preset", "name", "codec", "keys", "values", "policy", "query"];

/**
 * The full description of a cache from anything a user may write (see the header), a preset
 * expanded, every default filled. Idempotent: a resolved spec (as stored in runs.jsonl)
 * resolves to itself.
 */
export function resolveCacheSpec(input: CacheSpecInput | unknown, path = "cache"): ResolvedCacheSpec {
  let spec: Record<string, unknown>;
  if (typeof input === "string") {
    if (Object.hasOwn(PRESETS, input)) spec = { preset: input };
    else if (isCodecName(input)) spec = { codec: input };
    else
      throw new ConfigError(
        path,
        `"${input}" is neither a codec (${CODEC_NAMES.join(", ")}) nor a preset (${Object.keys(PRESETS).join(", ")})`,
      );
  } else if (isObject(input)) spec = input;
  else throw new ConfigError(path, `expected a codec/preset name or an object, got ${JSON.stringify(input)}`);

  for (const key of Object.keys(spec))
    if (!SPEC_KEYS.includes(key))
      throw new ConfigError(`${path}.${key}`, `unknown key (expected ${SPEC_KEYS.join(", ")})`);
  if (spec.codec !== undefined && (spec.keys !== undefined || spec.values !== undefined))
    throw new ConfigError(
      `${path}.codec`,
      "give either codec or top-level keys/values (the resolved form), not both",
    );

  if (spec.name !== undefined && (typeof spec.name !== "string" || spec.name === ""))
    throw new ConfigError(
      `${path}.name`,
      `expected a non-empty string label, got ${JSON.stringify(spec.name)}`,
    );

  // Each side as [input, path of that input]; the preset's sides are its own (paths name the preset).
  let keys: [unknown, string] = ["f32", `${path}.codec`];
  let values: [unknown, string] = ["f32", `${path}.codec`];
  let policy: PolicySpec = { type: "full" };
  let preset: string | undefined;
  if (spec.preset !== undefined) {
    if (typeof spec.preset !== "string" || !Object.hasOwn(PRESETS, spec.preset))
      throw new ConfigError(
        `${path}.preset`,
        `unknown preset ${JSON.stringify(spec.preset)}; known presets: ${Object.keys(PRESETS).join(", ")}`,
      );
    preset = spec.preset;
    const p = PRESETS[preset]!;
    keys = [p.keys, `${path}.preset(${preset}).keys`];
    values = [p.values, `${path}.preset(${preset}).values`];
    if (p.policy) policy = p.policy;
  }
  const c = spec.codec;
  if (c !== undefined) {
    if (isObject(c) && ("keys" in c || "values" in c)) {
      for (const k of Object.keys(c))
        if (k !== "keys" && k !== "values")
          throw new ConfigError(
            `${path}.codec.${k}`,
            "unknown key (with keys/values, only those two are allowed)",
          );
      if (c.keys !== undefined) keys = [c.keys, `${path}.codec.keys`];
      if (c.values !== undefined) values = [c.values, `${path}.codec.values`];
    } else keys = values = [c, `${path}.codec`];
    if (preset !== undefined) {
      const p = PRESETS[preset]!;
      if (keys[0] !== p.keys) keys = [overPreset(p.keys, keys[0], keys[1]), keys[1]];
      if (values[0] !== p.values) values = [overPreset(p.values, values[0], values[1]), values[1]];
    }
  }
  if (spec.keys !== undefined) keys = [spec.keys, `${path}.keys`];
  if (spec.values !== undefined) values = [spec.values, `${path}.values`];
  if (spec.policy !== undefined) {
    const p = spec.policy;
    if (typeof p === "string") policy = { type: p };
    else if (isObject(p) && typeof p.type === "string") policy = p as PolicySpec;
    else throw new ConfigError(`${path}.policy`, `expected a policy name or { type: <policy>, ... }`);
  }
  // Values first: a shared codec with axis "channel" is refused as the values' mistake.
  const rv = resolveSide(values[0], "values", values[1]);
  const rk = resolveSide(keys[0], "keys", keys[1]);
  const rp = parsePolicy(policy, `${path}.policy`).resolved;
  if (rp.type === "tiered" && (rk.axis === "channel" || rk.residual || rv.residual))
    throw new ConfigError(
      `${path}.policy`,
      "policy tiered re-encodes token-axis rows between codecs; use it without channel-axis keys or residual windows",
    );
  // query: f32 (exact, the default) is left out of the resolved spec, so that specs and hashes
  // written before the option existed stay what they were; q8 and q8w are recorded.
  const query = spec.query ?? "f32";
  if (query !== "f32" && query !== "q8" && query !== "q8w")
    throw new ConfigError(
      `${path}.query`,
      `expected "f32" (exact queries, the default), "q8" (q8_0 queries for integer dot products) or "q8w" (q8 and q8_0 softmax weights over int8/int4 values), got ${JSON.stringify(query)}`,
    );
  if (needsPlainKeys(rp) && (rk.rotation !== "none" || rk.preRope))
    throw new ConfigError(
      `${path}.policy`,
      "expected-attention scores stored keys against the model's queries: store keys post-RoPE and unrotated (no rotation, no preRope)",
    );
  const untouched =
    preset !== undefined && c === undefined && spec.keys === undefined && spec.values === undefined;
  const codecPart =
    (untouched
      ? preset!
      : sideLabel(rk) === sideLabel(rv)
        ? sideLabel(rk)
        : `K:${sideLabel(rk)}/V:${sideLabel(rv)}`) + (query === "f32" ? "" : `+${query}-query`);
  const name =
    typeof spec.name === "string"
      ? spec.name
      : rp.type === "full"
        ? codecPart
        : `${policyLabel(rp)}+${codecPart}`;
  return { name, keys: rk, values: rv, policy: rp, ...(query === "f32" ? {} : { query }) };
}

/** The row codec of one side (its type, group and symmetry; the storage options are the cache's). */
export function sideCodec(s: SideSpec, path = "cache.codec"): Codec {
  return makeCodec({ type: s.type, group: s.group, symmetric: s.symmetric }, path);
}

/**
 * Where the cache built for a model differs from what the spec's name says. An integer codec's
 * group wider than the model's head_dim is narrowed to one group per row (e.g. "g32" at
 * head_dim 8 stores a scale per 8 values: int4 then costs 6 bits per element, not 4.5). The
 * bytes kvlab reports are the built cache's; these notes name the difference in records and in
 * `kvlab ppl` so a label is never read as what ran. (ggml's block types refuse instead.)
 */
export function storageNotes(spec: ResolvedCacheSpec, headDim: number): string[] {
  const notes: string[] = [];
  for (const side of ["keys", "values"] as const) {
    const s = spec[side];
    if (s.axis === "channel" || typeof s.group !== "number" || s.group <= headDim) continue;
    notes.push(
      `${side}: ${s.type} group ${s.group} is wider than head_dim ${headDim}; built one ${headDim}-wide group per row (bits per element as measured)`,
    );
  }
  return notes;
}
