/**
 * duo (Xiao et al. 2024, "DuoAttention: Efficient Long-Context LLM Inference with Retrieval
 * and Streaming Heads", arXiv:2410.10819): only some heads (retrieval heads) need the whole
 * context; the others (streaming heads) attend to attention sinks and recent tokens only. Each
 * KV head is one or the other, from a profile of the model (`scores`: one list per layer, one
 * score per KV head in it, higher = more of a retrieval head): the `retrieval` share of KV heads with the highest
 * scores keep the full cache, the rest keep `sinks` + `recent` tokens.
 *
 * The profile: the paper learns a gate per head by optimisation (distilling the full-attention
 * output on synthetic pass-key data); kvlab uses a cheap proxy, documented in
 * src/eval/head-profile.ts (`kvlab profile-heads`): the attention mass each KV head gives to
 * tokens outside sinks + recent window on a calibration text, with a full cache.
 *
 * Equal budgets: `budget` is the uniform per-KV-head budget b; streaming heads keep
 * s = min(b, sinks + recent) tokens and the retrieval heads share what the model-wide total
 * (nLayers x nKvHeads x b) leaves, floor((N b - N_s s) / N_r) tokens each, so the model holds
 * no more than a uniform policy at b. A retrieval head past its share drops its oldest tokens
 * after the sinks ("full cache within the budget"); with budget 1 (every token) nothing goes.
 * The head map (R retrieval, S streaming, one letter per KV head, layers separated by |) is
 * part of the resolved spec, so every run record carries it.
 */
import { z } from "zod";
import { ConfigError } from "../../errors.ts";
import { type PolicyContext, type RetentionPolicy, resolveCount } from "../policy.ts";
import { count, intAtLeast, numberIn, shareOf } from "./options.ts";
import { evictLowest } from "./select.ts";

export const duoOptions = z.strictObject({
  type: z.literal("duo"),
  budget: count(),
  /** Share of the KV heads that are retrieval heads (the paper's ratio of retrieval heads). */
  retrieval: numberIn(0, 1).default(0.5),
  /** Attention sinks every head keeps (the paper's sink tokens). */
  sinks: intAtLeast(0).default(4),
  /** Recent tokens of a streaming head: a count or a share (< 1) of the budget. */
  recent: count().default(0.25),
  /** The profile: per layer (bottom first) one score per KV head (kvlab profile-heads prints it). */
  scores: z
    .array(z.array(z.number().refine(Number.isFinite, { error: "expected a finite head score" })).min(1))
    .min(1)
    .refine((rows) => rows.every((r) => r.length === rows[0]!.length), {
      error: "expected the same number of KV heads in every layer",
    }),
  /** The head map these options give (filled in when resolved; checked when given). */
  map: z.string().optional(),
});
export type DuoOptions = z.output<typeof duoOptions>;

/** Which KV heads are retrieval heads: the round(retrieval x N) highest scores (ties: lower index). */
export function retrievalHeads(scores: readonly number[], retrieval: number): boolean[] {
  const n = scores.length;
  const nR = Math.round(retrieval * n);
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const out = new Array<boolean>(n).fill(false);
  for (let k = 0; k < nR; k++) out[order[k]![1]] = true;
  return out;
}

/** The map as text: one letter per KV head (R / S), layers separated by "|". */
export function headMapText(isRetrieval: readonly boolean[], nKvHeads: number): string {
  const layers: string[] = [];
  for (let a = 0; a < isRetrieval.length; a += nKvHeads)
    layers.push(
      isRetrieval
        .slice(a, a + nKvHeads)
        .map((r) => (r ? "R" : "S"))
        .join(""),
    );
  return layers.join("|");
}

/** Resolve: fill `map` from scores and retrieval (a given map must be that one). */
export function resolveDuo(o: DuoOptions, path: string): DuoOptions {
  const map = headMapText(retrievalHeads(o.scores.flat(), o.retrieval), o.scores[0]!.length);
  if (o.map !== undefined && o.map !== map)
    throw new ConfigError(
      `${path}.map`,
      `"${o.map}" is not the map of these scores at retrieval ${o.retrieval} ("${map}"); leave map out to have it filled in`,
    );
  return { ...o, map };
}

export function duoPolicy(opts: Omit<DuoOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  const { nLayers, nKvHeads } = ctx.shape;
  const n = nLayers * nKvHeads;
  if (opts.scores.length !== nLayers || opts.scores[0]!.length !== nKvHeads)
    throw new ConfigError(
      "cache.policy.scores",
      `expected ${nLayers} layers x ${nKvHeads} KV heads of scores, got ${opts.scores.length} x ${opts.scores[0]!.length}; run kvlab profile-heads on this model`,
    );
  const isR = retrievalHeads(opts.scores.flat(), opts.retrieval);
  const nR = isR.filter(Boolean).length;
  return {
    name: "duo",
    wantsAttention: false,
    positionsImplicit: false,
    onAppend() {},
    onAttention() {},
    evictions(view) {
      const b = resolveCount(opts.budget, view.seen);
      const sinks = Math.min(opts.sinks, b);
      const stream = Math.min(b, sinks + shareOf(opts.recent, b));
      const keep = isR[view.layer * nKvHeads + view.kvHead]
        ? Math.floor((n * b - (n - nR) * stream) / nR)
        : stream;
      if (view.nSlots <= keep) return [];
      // Sinks stay; among the rest the oldest go (score = position).
      const pos = view.positions;
      return evictLowest(view, keep, sinks, 0, (j) => pos[j]!);
    },
    onMove() {},
    stateBytes: () => 0,
    reset() {},
  };
}
