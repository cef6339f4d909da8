/**
 * The policy registry: an explicit table of retention policies, each row its option schema
 * (declared once, in the policy's own file, defaults included), its factory, a one-line
 * description and its paper. `parse` validates a spec with the schema (errors carry the spec
 * path) and returns the resolved spec and a factory, so a spec is checked before any model is
 * loaded; the experiment JSON Schema is generated from the same schemas (`policySpecSchema`).
 */
import { z } from "zod";
import { ConfigError } from "../../errors.ts";
import { type MergeMode, withMerge } from "../merge.ts";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import type { PolicySpec } from "../types.ts";
import {
  adakvOptions,
  allocatedPolicy,
  layerBudgetsOptions,
  pyramidkvOptions,
  pyramidWeights,
} from "./allocation.ts";
import { duoOptions, duoPolicy, resolveDuo } from "./duo.ts";
import { expectedAttentionOptions, expectedAttentionPolicy } from "./expected-attention.ts";
import { fullOptions, fullPolicy } from "./full.ts";
import { h2oOptions, h2oPolicy } from "./h2o.ts";
import { intervalOptions, intervalPolicy } from "./interval.ts";
import { knormOptions, knormPolicy } from "./knorm.ts";
import { kvzipOptions, kvzipPolicy } from "./kvzip.ts";
import { lfuOptions, lfuPolicy } from "./lfu.ts";
import { lruOptions, lruPolicy } from "./lru.ts";
import { MERGE_INFO, mergeOption, parseOptions, withMergeOption } from "./options.ts";
import { randomOptions, randomPolicy } from "./random.ts";
import { sinksOptions, sinksPolicy } from "./sinks.ts";
import { snapkvOptions, snapkvPolicy } from "./snapkv.ts";
import { tieredOptions, tieredPolicy } from "./tiered.ts";
import { tovaOptions, tovaPolicy } from "./tova.ts";
import { windowOptions, windowPolicy } from "./window.ts";

export interface PolicyEntry {
  name: string;
  description: string;
  paper?: string;
  /** The policy's options (zod, `type` included), with their defaults. */
  options: z.ZodType;
  /** Validate a spec and return the resolved spec (defaults filled) and a factory. */
  parse(spec: PolicySpec, path: string): { resolved: PolicySpec; make(ctx: PolicyContext): RetentionPolicy };
}

/**
 * One registry row from a policy's schema and factory. An evicting policy (all but `full` and
 * `tiered`, which say `merges: false`) also takes the shared `merge` option (options.ts): with
 * merge: nearest its policy is wrapped to merge what it evicts (src/cache/merge.ts).
 */
function entry<S extends z.ZodType<PolicySpec>>(row: {
  name: string;
  description: string;
  paper?: string;
  options: S;
  make: (opts: z.output<S>, ctx: PolicyContext) => RetentionPolicy;
  merges?: false;
}): PolicyEntry {
  const options: z.ZodType =
    row.merges === false ? row.options : withMergeOption(row.options as unknown as z.ZodObject);
  return {
    name: row.name,
    description: row.description,
    ...(row.paper ? { paper: row.paper } : {}),
    options,
    parse(spec, path) {
      const opts = parseOptions(options, spec, path) as z.output<S> & { merge?: MergeMode };
      const { merge, ...own } = opts;
      return {
        resolved: opts,
        make: (ctx) => mergeIf(merge, row.make(own as z.output<S>, ctx), ctx),
      };
    },
  };
}

/** The policy, merging on eviction when merge is nearest. */
const mergeIf = (merge: MergeMode | undefined, policy: RetentionPolicy, ctx: PolicyContext) =>
  merge === "nearest" ? withMerge(policy, ctx) : policy;

export const POLICIES: Record<string, PolicyEntry> = {
  full: entry({
    name: "full",
    description: "keep every token",
    options: fullOptions,
    make: () => fullPolicy(),
    merges: false,
  }),
  window: entry({
    name: "window",
    description: "FIFO sliding window: keep the last `budget` tokens",
    paper: "Beltagy et al. 2020 (Longformer), arXiv:2004.05150",
    options: windowOptions,
    make: (o) => windowPolicy(o),
  }),
  sinks: entry({
    name: "sinks",
    description:
      "attention sinks + window: first `sinks` tokens (0 = window only) and the most recent, `budget` in all; positions: absolute | cache",
    paper: "Xiao et al. 2023 (StreamingLLM), arXiv:2309.17453",
    options: sinksOptions,
    make: (o) => sinksPolicy(o),
  }),
  h2o: entry({
    name: "h2o",
    description: "heavy hitters by accumulated attention (GQA group summed) + recent window, per KV head",
    paper: "Zhang et al. 2023 (H2O), arXiv:2306.14048",
    options: h2oOptions,
    make: h2oPolicy,
  }),
  tova: entry({
    name: "tova",
    description:
      "keep the top `budget` tokens by the current query's attention, averaged over the GQA group (scope: kv-head) or over all heads of the layer, one token set per layer (scope: layer, the paper)",
    paper: "Oren et al. 2024 (TOVA), arXiv:2401.06104",
    options: tovaOptions,
    make: (o, ctx) =>
      o.scope === "layer"
        ? allocatedPolicy(
            {
              name: "tova",
              budget: o.budget,
              heads: "shared",
              floor: 0,
              layerWeights: () => null,
              scorer: { type: "tova", recent: o.recent },
            },
            ctx,
          )
        : tovaPolicy(o, ctx),
  }),
  snapkv: entry({
    name: "snapkv",
    description:
      "select by pooled attention of an observation window of the last queries, then keep new tokens",
    paper: "Li et al. 2024 (SnapKV), arXiv:2404.14469",
    options: snapkvOptions,
    make: snapkvPolicy,
  }),
  knorm: entry({
    name: "knorm",
    description: "drop the keys with the largest L2 norm (no attention weights needed)",
    paper: "Devoto et al. 2024, arXiv:2406.11430",
    options: knormOptions,
    make: knormPolicy,
  }),
  random: entry({
    name: "random",
    description: "evict uniformly random tokens past the budget (seeded baseline)",
    paper: "baseline (cf. Zhang et al. 2023, arXiv:2306.14048)",
    options: randomOptions,
    make: randomPolicy,
  }),
  lru: entry({
    name: "lru",
    description: "least recently used token goes (use = attention above `threshold`)",
    paper: "classic cache replacement (Mattson et al. 1970) applied to KV tokens",
    options: lruOptions,
    make: lruPolicy,
  }),
  lfu: entry({
    name: "lfu",
    description: "least frequently used token goes (count of attention weights above `threshold`)",
    paper: "classic cache replacement (Mattson et al. 1970) applied to KV tokens",
    options: lfuOptions,
    make: lfuPolicy,
  }),
  "expected-attention": entry({
    name: "expected-attention",
    description:
      "keys scored by the closed-form expected attention of future queries (Gaussian from the queries seen, RoPE averaged over `future` positions); sinks + recent kept",
    paper: "Devoto et al. 2025 (Expected Attention), arXiv:2510.00636",
    options: expectedAttentionOptions,
    make: expectedAttentionPolicy,
  }),
  kvzip: entry({
    name: "kvzip",
    description:
      "query-agnostic: tokens scored by the largest attention they get when the model repeats the context (a scoring forward before each prefill chunk, cost in the record); lowest go",
    paper: "Kim et al. 2025 (KVzip), arXiv:2505.23416",
    options: kvzipOptions,
    make: kvzipPolicy,
  }),
  adakv: entry({
    name: "adakv",
    description:
      "a layer's budget shared by its KV heads: top scores over the heads' flattened candidates (scorer: any scoring policy, default snapkv), each head keeping `floor` of its share",
    paper: "Feng et al. 2024 (Ada-KV), arXiv:2407.11550",
    options: adakvOptions,
    make: (o, ctx) => allocatedPolicy({ ...o, name: "adakv", heads: "adakv", layerWeights: () => null }, ctx),
  }),
  pyramidkv: entry({
    name: "pyramidkv",
    description:
      "per-layer budgets decreasing bottom to top (arithmetic, top = budget / beta, same total) over any scorer; heads: uniform | adakv",
    paper: "Cai et al. 2024 (PyramidKV), arXiv:2406.02069",
    options: pyramidkvOptions,
    make: (o, ctx) =>
      allocatedPolicy({ ...o, name: "pyramidkv", layerWeights: (n) => pyramidWeights(n, o.beta) }, ctx),
  }),
  "layer-budgets": entry({
    name: "layer-budgets",
    description:
      "per-layer budgets from a list of weights (`ratios`, bottom first; same total) over any scorer",
    paper: "per-layer allocation as in PyramidKV, Cai et al. 2024, arXiv:2406.02069",
    options: layerBudgetsOptions,
    make: (o, ctx) => allocatedPolicy({ ...o, name: "layer-budgets", layerWeights: () => o.ratios }, ctx),
  }),
  tiered: entry({
    name: "tiered",
    description:
      "recent tokens in the cache codec, older re-encoded once into `codec`, oldest evicted past `budget`",
    paper: "mixed-precision tiers as in MiKV, Yang et al. 2024, arXiv:2402.18096",
    options: tieredOptions,
    make: (o) =>
      tieredPolicy({ recent: o.recent, budget: o.budget, keys: o.codec.keys, values: o.codec.values }),
    merges: false,
  }),
};

// interval and duo parse their own way; the same shared `merge` option, typed.
const intervalWithMerge = intervalOptions.safeExtend({ merge: mergeOption() });
const duoWithMerge = duoOptions.safeExtend({ merge: mergeOption() });

POLICIES.interval = {
  name: "interval",
  description:
    "compress with `policy` (its own budget) only every `every` tokens, as during decoding: budget + every - 1 at most between compressions",
  paper: "kvpress DecodingPress (Devoto et al. 2025, arXiv:2510.00636)",
  options: intervalWithMerge,
  parse(spec, path) {
    const o = parseOptions(intervalWithMerge, spec, path);
    if (o.policy.type === "interval" || o.policy.type === "tiered")
      throw new ConfigError(
        `${path}.policy.type`,
        `policy ${o.policy.type} cannot be compressed at an interval`,
      );
    // The interval wrapper owns the evictions, so it is the one that merges.
    if (o.policy.merge !== undefined)
      throw new ConfigError(
        `${path}.policy.merge`,
        "give merge on the interval policy itself (it decides when the evictions happen)",
      );
    const inner = parsePolicy(o.policy as PolicySpec, `${path}.policy`);
    return {
      resolved: {
        type: "interval",
        every: o.every,
        policy: inner.resolved,
        ...(o.merge ? { merge: o.merge } : {}),
      },
      make: (ctx) => mergeIf(o.merge, intervalPolicy(inner.make(ctx), o.every, ctx), ctx),
    };
  },
};

POLICIES.duo = {
  name: "duo",
  description:
    "retrieval heads keep the full cache (their share of the total budget), streaming heads keep sinks + recent; heads from a profile (kvlab profile-heads), head map in the record",
  paper: "Xiao et al. 2024 (DuoAttention), arXiv:2410.10819",
  options: duoWithMerge,
  parse(spec, path) {
    const { merge, ...own } = parseOptions(duoWithMerge, spec, path);
    const o = resolveDuo(own, path);
    return {
      resolved: { ...o, ...(merge ? { merge } : {}) },
      make: (ctx) => mergeIf(merge, duoPolicy(o, ctx), ctx),
    };
  },
};

/**
 * Whether a resolved policy (or the scorer / policy it wraps) reads stored keys together with
 * the model's queries, so that keys must be stored as the queries see them (post-RoPE, not
 * rotated): expected-attention. spec.ts refuses other key storage for it.
 */
export function needsPlainKeys(p: PolicySpec): boolean {
  if (p.type === "expected-attention") return true;
  const nested = [p.scorer, p.policy].filter((x): x is PolicySpec => typeof x === "object" && x !== null);
  return nested.some(needsPlainKeys);
}

/** Options every evicting policy shares, for `kvlab info`: merge, with the policies taking it. */
export function sharedPolicyOptions(): { name: string; description: string; paper: string }[] {
  const takes = Object.values(POLICIES)
    .filter((p) => "merge" in ((p.options as unknown as { shape?: object }).shape ?? {}))
    .map((p) => p.name);
  return [
    {
      name: MERGE_INFO.name,
      description: `${MERGE_INFO.values}: ${MERGE_INFO.description}; policies: ${takes.join(", ")}`,
      paper: MERGE_INFO.paper,
    },
  ];
}

export function parsePolicy(spec: PolicySpec, path: string) {
  const row = Object.hasOwn(POLICIES, spec.type) ? POLICIES[spec.type] : undefined;
  if (!row)
    throw new ConfigError(
      `${path}.type`,
      `unknown policy "${String(spec.type)}"; known policies: ${Object.keys(POLICIES).join(", ")}`,
    );
  return row.parse(spec, path);
}

/**
 * The union of every policy's options: the `policy` field of a cache spec, as the experiment
 * JSON Schema describes it (src/experiment/json-schema.ts).
 */
export function policySpecSchema(): z.ZodType {
  const rows = Object.values(POLICIES).map((p) => p.options);
  return z.union([z.enum(Object.keys(POLICIES) as [string, ...string[]]), ...rows]);
}
