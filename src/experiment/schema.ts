/**
 * Experiment configs: YAML (or JSON, which YAML parses too) validated with zod before any
 * work. Unknown keys are errors; every message starts with the config path of the problem,
 * e.g. `caches[3].policy.budget: ...`. Cache specs go through the one spec parser
 * (src/cache/spec.ts), which also checks codec and policy options.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { resolveCacheSpec } from "../cache/spec.ts";
import type { ResolvedCacheSpec } from "../cache/types.ts";
import { ConfigError } from "../errors.ts";
import { DEFAULT_EXECUTOR } from "../kernels/registry.ts";
import { DEFAULT_PREFILL_CHUNK } from "../tasks/evaluate.ts";
import { TASK_NAMES } from "../tasks/generate.ts";
import { resolveModelRef, resolveTextRef } from "./paths.ts";
import { expandSweep, MAX_GRID_POINTS } from "./sweep.ts";

const positiveInt = z.number().int().positive();

const llamacppProtocol = z.strictObject({
  type: z.literal("llamacpp"),
  /** Context per chunk (n_ctx); positions n_ctx/2 .. n_ctx-2 of each chunk are scored. */
  ctx: positiveInt.min(4),
  /** Evaluate only the first N chunks (llama.cpp --chunks). */
  chunks: positiveInt.optional(),
});

const chunkedProtocol = z.strictObject({
  type: z.literal("chunked"),
  /** Segment length: the cache starts empty at every segment. */
  ctx: positiveInt.min(2),
  /** Evaluate only the first N segments. */
  chunks: positiveInt.optional(),
  /** Or: use only the first maxTokens tokens of the text (whole segments). */
  maxTokens: positiveInt.optional(),
  /** Tokens per forward call (1 = true decoding). */
  chunkSize: positiveInt,
});

/** Long-context retrieval (src/tasks): accuracy of greedy answers, per length x depth cell. */
const taskProtocol = z.strictObject({
  type: z.literal("task"),
  task: z.enum(TASK_NAMES),
  /** Filler text (builtin:/shared:/path); default: the experiment's `text`. Needle requires one. */
  haystack: z.string().min(1).optional(),
  /** Prompt lengths in tokens. */
  lengths: z.array(positiveInt.min(16)).min(1),
  /** Fact depths in [0, 1]. */
  depths: z.array(z.number().min(0).max(1)).min(1).default([0, 0.25, 0.5, 0.75, 1]),
  /** Samples per (length, depth) cell. */
  samples: positiveInt.default(5),
  /** agnostic: the question arrives after the context was compressed; aware: it is part of the prefill. */
  query: z.enum(["agnostic", "aware"]).default("agnostic"),
  /** Tokens per prefill forward call. */
  prefillChunk: positiveInt.default(DEFAULT_PREFILL_CHUNK),
  match: z.enum(["digits", "contains", "exact", "all-words"]).optional(),
  /** Needle task: your own needle instead of the built-in set. */
  needle: z
    .strictObject({ statement: z.string().min(1), question: z.string().min(1), answer: z.string().min(1) })
    .optional(),
  /** Leave the fact out (the score of a model never shown it). */
  control: z.boolean().optional(),
});

export const protocolSchema = z.discriminatedUnion("type", [llamacppProtocol, chunkedProtocol, taskProtocol]);
export type TaskProtocolConfig = z.infer<typeof taskProtocol>;
export type PerplexityProtocolConfig = z.infer<typeof llamacppProtocol> | z.infer<typeof chunkedProtocol>;
export type ProtocolConfig = z.infer<typeof protocolSchema>;

const sweepSchema = z.strictObject({
  /** The base cache spec (same format as an entry of `caches`). */
  spec: z.unknown(),
  /** Dotted path inside the spec -> values; the cartesian product becomes runs. */
  grid: z.record(z.string(), z.array(z.unknown()).min(1)),
});

export const configSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
      "expected letters, digits, '.', '_' or '-' (it names the results folder)",
    ),
  description: z.string().optional(),
  model: z.string().min(1),
  /** Text to score (perplexity protocols) or the default haystack (task protocol). */
  text: z.string().min(1).optional(),
  protocol: protocolSchema,
  executor: z.string().optional(),
  seed: z.number().int().nonnegative().default(0),
  /** How the baseline distribution is stored for KL: top-k log-probs + rest mass. */
  baseline: z.strictObject({ topK: positiveInt.max(4096).default(64) }).default({ topK: 64 }),
  /** Opt-in diagnostics (slower): attention mass kept by the retained tokens. */
  diagnostics: z
    .strictObject({ attentionMass: z.boolean().default(false) })
    .default({ attentionMass: false }),
  caches: z.array(z.unknown()).default([]),
  sweep: z.array(sweepSchema).default([]),
});

export type RawConfig = z.infer<typeof configSchema>;

/** A validated experiment: paths resolved, caches expanded and resolved, baseline first. */
export interface ExperimentConfig {
  name: string;
  description?: string;
  /** The config file, when loaded from one. */
  file?: string;
  modelRef: string;
  modelPath: string;
  /** The text (perplexity) or haystack (task); empty for a task without one. */
  textRef: string;
  textPath: string;
  protocol: ProtocolConfig;
  executor: string;
  seed: number;
  topK: number;
  attentionMass: boolean;
  /** Every run's cache spec; runs[0] is the f32 full baseline. */
  caches: { spec: ResolvedCacheSpec; path: string; baseline: boolean }[];
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else if (typeof p === "string" && /^[A-Za-z_$][\w$]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p as string];
  }
  return v;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? "nothing" : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Turn zod issues into one ConfigError naming the first issue's path (and counting the rest). */
function toConfigError(issues: z.core.$ZodIssue[], raw: unknown, file?: string): ConfigError {
  const lines = issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const key = issue.keys[0]!;
      return {
        path: formatPath([...issue.path, key]),
        detail: `unknown key${issue.keys.length > 1 ? `s ${issue.keys.join(", ")}` : ""} (check the spelling; see experiments/README.md)`,
      };
    }
    const got = valueAt(raw, issue.path);
    const msg = issue.message.replace(/^Invalid input: /, "").replace(/, received \w+$/, "");
    return { path: formatPath(issue.path), detail: `${msg}, got ${describe(got)}` };
  });
  const first = lines[0]!;
  const more = lines.slice(1).map((l) => `${l.path}: ${l.detail}`);
  return new ConfigError(
    first.path,
    more.length ? `${first.detail}\n  also ${more.join("\n  also ")}` : first.detail,
    file,
  );
}

function rethrowWithFile(err: unknown, file?: string): never {
  if (err instanceof ConfigError && file && !err.file) throw new ConfigError(err.path, err.detail, file);
  throw err;
}

/** Validate a parsed config object. `configDir` anchors relative paths. */
export function validateConfig(raw: unknown, configDir: string, file?: string): ExperimentConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw toConfigError(parsed.error.issues, raw, file);
  const c = parsed.data;
  if (c.protocol.type === "chunked" && c.protocol.chunkSize > c.protocol.ctx)
    throw new ConfigError("protocol.chunkSize", `must be at most protocol.ctx (${c.protocol.ctx})`, file);
  const textRef = c.protocol.type === "task" ? (c.protocol.haystack ?? c.text ?? "") : c.text;
  if (textRef === undefined)
    throw new ConfigError(
      "text",
      "expected the text to score (a path, builtin:<name> or shared:<path>)",
      file,
    );
  if (c.protocol.type === "task" && c.protocol.task === "needle" && !textRef)
    throw new ConfigError(
      "protocol.haystack",
      "the needle task needs a haystack (or a top-level text)",
      file,
    );

  const inputs: { spec: unknown; path: string }[] = c.caches.map((spec, i) => ({
    spec,
    path: `caches[${i}]`,
  }));
  try {
    for (const [i, block] of c.sweep.entries()) {
      for (const point of expandSweep(block, `sweep[${i}]`)) inputs.push(point); // no push(...spread): no stack limit
      if (inputs.length > MAX_GRID_POINTS)
        throw new ConfigError(
          `sweep[${i}]`,
          `caches and sweeps add up to more than ${MAX_GRID_POINTS} runs; split the experiment into several configs`,
        );
    }
  } catch (err) {
    rethrowWithFile(err, file);
  }
  if (inputs.length === 0)
    throw new ConfigError("caches", "expected at least one cache spec in caches or sweep", file);

  const baselinePath = "(baseline)";
  const baseline = resolveCacheSpec({ codec: "f32", name: "f32" }, baselinePath);
  const caches: ExperimentConfig["caches"] = [{ spec: baseline, path: baselinePath, baseline: true }];
  const seen = new Map<string, string>([[specKey(baseline), baselinePath]]);
  for (const { spec, path } of inputs) {
    let resolved: ResolvedCacheSpec;
    try {
      resolved = resolveCacheSpec(spec, path);
    } catch (err) {
      rethrowWithFile(err, file);
    }
    const key = specKey(resolved);
    const dup = seen.get(key);
    if (dup !== undefined) {
      // The same backend twice (e.g. f32 listed explicitly): the baseline already covers it.
      if (dup === baselinePath) caches[0]!.spec = { ...caches[0]!.spec, name: resolved.name };
      continue;
    }
    seen.set(key, path);
    caches.push({ spec: resolved, path, baseline: false });
  }

  return {
    name: c.name,
    ...(c.description !== undefined ? { description: c.description } : {}),
    ...(file !== undefined ? { file } : {}),
    modelRef: c.model,
    modelPath: resolveModelRef(c.model, configDir),
    textRef,
    textPath: textRef ? resolveTextRef(textRef, configDir) : "",
    protocol: c.protocol,
    executor: c.executor ?? DEFAULT_EXECUTOR,
    seed: c.seed,
    topK: c.baseline.topK,
    attentionMass: c.diagnostics.attentionMass,
    caches,
  };
}

/** What makes two backends the same run: everything but the display name. */
export function specKey(spec: ResolvedCacheSpec): string {
  const { name: _name, ...rest } = spec;
  return JSON.stringify(rest);
}

/** Read and validate a config file (YAML or JSON). Throws ConfigError naming file and path. */
export function loadConfig(file: string): ExperimentConfig {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, "utf8");
  } catch (err) {
    throw new ConfigError("", `cannot read config: ${(err as Error).message}`, file);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError("", `not valid YAML/JSON: ${(err as Error).message}`, file);
  }
  return validateConfig(raw, dirname(abs), file);
}
