/**
 * Cache spec parsing: the one format shared by the API, the CLI's --cache and experiment
 * configs. Every error names the path of the offending field.
 *
 *   "int8"                                  a codec name (keys and values) or a preset name
 *   { codec: { type: int4, group: 32, symmetric: false } }
 *   { codec: { keys: int8, values: { type: int4 } } }
 *   { preset: kivi2, policy: { type: h2o, budget: 0.2 } }
 */
import { ConfigError } from "../errors.ts";
import { isCodecName, makeCodec } from "../quant/registry.ts";
import type { CodecOptions, ResolvedCodecOptions } from "../quant/types.ts";
import { parsePolicy } from "./policies/registry.ts";
import { PRESETS } from "./presets.ts";
import type { CacheSpecInput, PolicySpec, ResolvedCacheSpec } from "./types.ts";

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function codecOptions(x: unknown, path: string): CodecOptions {
  if (typeof x === "string") {
    if (!isCodecName(x)) throw new ConfigError(path, `unknown codec "${x}"`);
    return { type: x };
  }
  if (!isObject(x) || typeof x.type !== "string")
    throw new ConfigError(path, `expected a codec name or { type: <codec>, ... }, got ${JSON.stringify(x)}`);
  return x as unknown as CodecOptions;
}

/** Fill a codec's defaults by constructing it (which validates every field). */
function resolveCodec(opts: CodecOptions, path: string): ResolvedCodecOptions {
  return makeCodec(opts, path).options;
}

function codecLabel(c: ResolvedCodecOptions): string {
  if (!c.type.startsWith("int")) return c.type;
  return `${c.type}${c.symmetric ? "s" : "a"}-g${c.group}`;
}

function policyLabel(p: PolicySpec): string {
  const opts = Object.entries(p)
    .filter(([k]) => k !== "type")
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  return opts.length ? `${p.type}(${opts.join(",")})` : p.type;
}

export function resolveCacheSpec(input: CacheSpecInput | unknown, path = "cache"): ResolvedCacheSpec {
  let spec: Record<string, unknown>;
  if (typeof input === "string") {
    if (Object.hasOwn(PRESETS, input)) spec = { preset: input };
    else if (isCodecName(input)) spec = { codec: input };
    else
      throw new ConfigError(
        path,
        `"${input}" is neither a codec (${["f32", "f16", "bf16", "fp8-e4m3", "int8", "int4", "int2"].join(", ")}) nor a preset (${Object.keys(PRESETS).join(", ")})`,
      );
  } else if (isObject(input)) spec = input;
  else throw new ConfigError(path, `expected a codec/preset name or an object, got ${JSON.stringify(input)}`);

  for (const key of Object.keys(spec))
    if (!["preset", "name", "codec", "policy"].includes(key))
      throw new ConfigError(`${path}.${key}`, "unknown key (expected preset, name, codec, policy)");

  if (spec.name !== undefined && (typeof spec.name !== "string" || spec.name === ""))
    throw new ConfigError(
      `${path}.name`,
      `expected a non-empty string label, got ${JSON.stringify(spec.name)}`,
    );

  let keys: CodecOptions = { type: "f32" };
  let values: CodecOptions = { type: "f32" };
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
    keys = p.keys;
    values = p.values;
    if (p.policy) policy = p.policy;
  }
  if (spec.codec !== undefined) {
    const c = spec.codec;
    if (isObject(c) && ("keys" in c || "values" in c)) {
      for (const k of Object.keys(c))
        if (k !== "keys" && k !== "values")
          throw new ConfigError(
            `${path}.codec.${k}`,
            "unknown key (with keys/values, only those two are allowed)",
          );
      if (c.keys !== undefined) keys = codecOptions(c.keys, `${path}.codec.keys`);
      if (c.values !== undefined) values = codecOptions(c.values, `${path}.codec.values`);
    } else {
      keys = values = codecOptions(c, `${path}.codec`);
    }
  }
  if (spec.policy !== undefined) {
    const p = spec.policy;
    if (typeof p === "string") policy = { type: p };
    else if (isObject(p) && typeof p.type === "string") policy = p as PolicySpec;
    else throw new ConfigError(`${path}.policy`, `expected a policy name or { type: <policy>, ... }`);
  }
  const rk = resolveCodec(
    keys,
    `${path}.codec${spec.codec && isObject(spec.codec) && "keys" in spec.codec ? ".keys" : ""}`,
  );
  const rv = resolveCodec(
    values,
    `${path}.codec${spec.codec && isObject(spec.codec) && "values" in spec.codec ? ".values" : ""}`,
  );
  const rp = parsePolicy(policy, `${path}.policy`).resolved;
  const codecPart =
    preset && spec.codec === undefined
      ? preset
      : codecLabel(rk) === codecLabel(rv)
        ? codecLabel(rk)
        : `K:${codecLabel(rk)}/V:${codecLabel(rv)}`;
  const name =
    typeof spec.name === "string"
      ? spec.name
      : rp.type === "full"
        ? codecPart
        : `${policyLabel(rp)}+${codecPart}`;
  return { name, keys: rk, values: rv, policy: rp, ...(preset ? { preset } : {}) };
}
