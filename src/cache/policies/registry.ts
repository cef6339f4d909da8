/**
 * The policy registry: an explicit table of retention policies with their option parser,
 * one-line description and paper. `parse` validates options (errors carry the spec path)
 * and returns a factory, so a spec is checked before any model is loaded.
 */
import { ConfigError } from "../../errors.ts";
import { makeCodec } from "../../quant/registry.ts";
import type { CodecOptions } from "../../quant/types.ts";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import type { PolicySpec } from "../types.ts";
import { fullPolicy } from "./full.ts";
import { h2oPolicy } from "./h2o.ts";
import { knormPolicy } from "./knorm.ts";
import { lfuPolicy } from "./lfu.ts";
import { lruPolicy } from "./lru.ts";
import { countOption, intOption, numberOption } from "./options.ts";
import { randomPolicy } from "./random.ts";
import { sinksPolicy } from "./sinks.ts";
import { snapkvPolicy } from "./snapkv.ts";
import { tieredPolicy } from "./tiered.ts";
import { tovaPolicy } from "./tova.ts";
import { windowPolicy } from "./window.ts";

export interface PolicyEntry {
  name: string;
  description: string;
  paper?: string;
  /** Validate a spec and return the resolved spec (defaults filled) and a factory. */
  parse(spec: PolicySpec, path: string): { resolved: PolicySpec; make(ctx: PolicyContext): RetentionPolicy };
}

/** Reject keys a policy does not know, naming the path. */
export function checkKeys(spec: PolicySpec, allowed: string[], path: string): void {
  for (const key of Object.keys(spec)) {
    if (key !== "type" && !allowed.includes(key))
      throw new ConfigError(
        `${path}.${key}`,
        `unknown option for policy ${spec.type}${allowed.length ? ` (known: ${allowed.join(", ")})` : ""}`,
      );
  }
}

export const POLICIES: Record<string, PolicyEntry> = {
  full: {
    name: "full",
    description: "keep every token",
    parse(spec, path) {
      checkKeys(spec, [], path);
      return { resolved: { type: "full" }, make: () => fullPolicy() };
    },
  },
  window: {
    name: "window",
    description: "FIFO sliding window: keep the last `budget` tokens",
    paper: "Beltagy et al. 2020 (Longformer), arXiv:2004.05150",
    parse(spec, path) {
      checkKeys(spec, ["budget"], path);
      const budget = countOption(spec, "budget", path);
      return { resolved: { type: "window", budget }, make: () => windowPolicy({ budget }) };
    },
  },
  sinks: {
    name: "sinks",
    description:
      "attention sinks + window: first `sinks` tokens (0 = window only) and the most recent, `budget` in all; positions: absolute | cache",
    paper: "Xiao et al. 2023 (StreamingLLM), arXiv:2309.17453",
    parse(spec, path) {
      checkKeys(spec, ["sinks", "budget", "positions"], path);
      const budget = countOption(spec, "budget", path);
      // sinks: 0 is the window alone (with positions: cache, StreamingLLM's no-sink ablation).
      const sinks = spec.sinks === 0 ? 0 : countOption(spec, "sinks", path, 4);
      if (sinks >= 1 && budget >= 1 && sinks >= budget)
        throw new ConfigError(`${path}.sinks`, `sinks (${sinks}) must be smaller than budget (${budget})`);
      const positions = spec.positions ?? "absolute";
      if (positions !== "absolute" && positions !== "cache")
        throw new ConfigError(
          `${path}.positions`,
          `expected "absolute" or "cache", got ${JSON.stringify(positions)}`,
        );
      return {
        resolved: { type: "sinks", sinks, budget, positions },
        make: () => sinksPolicy({ sinks, budget, positions }),
      };
    },
  },
  h2o: {
    name: "h2o",
    description: "heavy hitters by accumulated attention (GQA group summed) + recent window, per KV head",
    paper: "Zhang et al. 2023 (H2O), arXiv:2306.14048",
    parse(spec, path) {
      checkKeys(spec, ["budget", "recent"], path);
      const budget = countOption(spec, "budget", path);
      const recent = countOption(spec, "recent", path, 0.5);
      return { resolved: { type: "h2o", budget, recent }, make: (ctx) => h2oPolicy({ budget, recent }, ctx) };
    },
  },
  tova: {
    name: "tova",
    description: "keep the top `budget` tokens by the current query's attention, averaged over the GQA group",
    paper: "Oren et al. 2024 (TOVA), arXiv:2401.06104",
    parse(spec, path) {
      checkKeys(spec, ["budget"], path);
      const budget = countOption(spec, "budget", path);
      return { resolved: { type: "tova", budget }, make: (ctx) => tovaPolicy({ budget }, ctx) };
    },
  },
  snapkv: {
    name: "snapkv",
    description:
      "select by pooled attention of an observation window of the last queries, then keep new tokens",
    paper: "Li et al. 2024 (SnapKV), arXiv:2404.14469",
    parse(spec, path) {
      checkKeys(spec, ["budget", "window", "kernel"], path);
      const budget = countOption(spec, "budget", path);
      const window = intOption(spec, "window", path, 16, 1);
      const kernel = intOption(spec, "kernel", path, 5, 1);
      if (kernel % 2 === 0)
        throw new ConfigError(`${path}.kernel`, `expected an odd pooling kernel, got ${kernel}`);
      return {
        resolved: { type: "snapkv", budget, window, kernel },
        make: (ctx) => snapkvPolicy({ budget, window, kernel }, ctx),
      };
    },
  },
  knorm: {
    name: "knorm",
    description: "drop the keys with the largest L2 norm (no attention weights needed)",
    paper: "Devoto et al. 2024, arXiv:2406.11430",
    parse(spec, path) {
      checkKeys(spec, ["budget", "recent"], path);
      const budget = countOption(spec, "budget", path);
      const recent = intOption(spec, "recent", path, 0);
      return {
        resolved: { type: "knorm", budget, recent },
        make: (ctx) => knormPolicy({ budget, recent }, ctx),
      };
    },
  },
  random: {
    name: "random",
    description: "evict uniformly random tokens past the budget (seeded baseline)",
    paper: "baseline (cf. Zhang et al. 2023, arXiv:2306.14048)",
    parse(spec, path) {
      checkKeys(spec, ["budget", "recent", "seed"], path);
      const budget = countOption(spec, "budget", path);
      const recent = intOption(spec, "recent", path, 0);
      const seed = spec.seed === undefined ? undefined : intOption(spec, "seed", path, 0);
      return {
        resolved: { type: "random", budget, recent, ...(seed !== undefined ? { seed } : {}) },
        make: (ctx) => randomPolicy({ budget, recent, ...(seed !== undefined ? { seed } : {}) }, ctx),
      };
    },
  },
  lru: {
    name: "lru",
    description: "least recently used token goes (use = attention above `threshold`)",
    paper: "classic cache replacement (Mattson et al. 1970) applied to KV tokens",
    parse(spec, path) {
      checkKeys(spec, ["budget", "threshold"], path);
      const budget = countOption(spec, "budget", path);
      const threshold = numberOption(spec, "threshold", path, 0.01, 0, 1);
      return {
        resolved: { type: "lru", budget, threshold },
        make: (ctx) => lruPolicy({ budget, threshold }, ctx),
      };
    },
  },
  lfu: {
    name: "lfu",
    description: "least frequently used token goes (count of attention weights above `threshold`)",
    paper: "classic cache replacement (Mattson et al. 1970) applied to KV tokens",
    parse(spec, path) {
      checkKeys(spec, ["budget", "threshold"], path);
      const budget = countOption(spec, "budget", path);
      const threshold = numberOption(spec, "threshold", path, 0.01, 0, 1);
      return {
        resolved: { type: "lfu", budget, threshold },
        make: (ctx) => lfuPolicy({ budget, threshold }, ctx),
      };
    },
  },
  tiered: {
    name: "tiered",
    description:
      "recent tokens in the cache codec, older re-encoded once into `codec`, oldest evicted past `budget`",
    paper: "mixed-precision tiers as in MiKV, Yang et al. 2024, arXiv:2402.18096",
    parse(spec, path) {
      checkKeys(spec, ["recent", "budget", "codec"], path);
      const budget = countOption(spec, "budget", path);
      const recent = countOption(spec, "recent", path, 0.25);
      const { keys, values } = tierCodecs(spec.codec ?? "int4", `${path}.codec`);
      const resolved = { type: "tiered", recent, budget, codec: { keys, values } };
      return { resolved, make: () => tieredPolicy({ recent, budget, keys, values }) };
    },
  },
};

/** The older tier's codec: a name, codec options, or { keys, values }; validated by constructing it. */
function tierCodecs(x: unknown, path: string): { keys: CodecOptions; values: CodecOptions } {
  const one = (c: unknown, p: string): CodecOptions => {
    const opts = (typeof c === "string" ? { type: c } : c) as CodecOptions;
    if (typeof opts !== "object" || opts === null)
      throw new ConfigError(p, `expected a codec name or { type: <codec>, ... }, got ${JSON.stringify(c)}`);
    return makeCodec(opts, p).options;
  };
  if (typeof x === "object" && x !== null && ("keys" in x || "values" in x)) {
    const o = x as { keys?: unknown; values?: unknown };
    return { keys: one(o.keys ?? "int4", `${path}.keys`), values: one(o.values ?? "int4", `${path}.values`) };
  }
  const c = one(x, path);
  return { keys: c, values: c };
}

export function parsePolicy(spec: PolicySpec, path: string) {
  const entry = Object.hasOwn(POLICIES, spec.type) ? POLICIES[spec.type] : undefined;
  if (!entry)
    throw new ConfigError(
      `${path}.type`,
      `unknown policy "${String(spec.type)}"; known policies: ${Object.keys(POLICIES).join(", ")}`,
    );
  return entry.parse(spec, path);
}
