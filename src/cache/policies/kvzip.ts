/**
 * kvzip (Kim et al. 2025, "KVzip: Query-Agnostic KV Cache Compression with Context
 * Reconstruction", arXiv:2505.23416): a KV pair matters as much as the model needs it to
 * reconstruct the context. The model is asked to repeat the context ("Repeat the previous
 * context:" + the context, teacher forced) with the cache attached; a pair's score is the
 * largest attention it receives from those queries, over the query heads of its GQA group (the
 * paper's max over the group), the softmax taken over the context and the repeat tokens
 * together. Pairs with the lowest scores go, per KV head (uniform budget; `adakv` with
 * `scorer: kvzip` shares a layer's budget across its heads, the paper's non-uniform
 * allocation within a layer). Query-agnostic: the scores never see the question.
 *
 * The scores come from a scoring forward the protocol runs before each prefill chunk
 * (RetentionPolicy.scoring; src/eval/scoring-pass.ts holds the forward, its differences from
 * the paper and its cost, which runs record). Tokens never scored (decoded tokens, or every
 * token under a protocol without scoring forwards) score +Infinity: they stay while scored
 * tokens can go, and among themselves the oldest go first, so without scoring forwards the
 * policy is a sliding window and still holds its budget.
 *
 * Recent window: none by default: the newest chunk is scored by its own repeat before the cache
 * sees it, and decoded tokens are never scored (kept first), so recency needs no protection.
 * State: none of its own; the scores are the scoring pass's, reported with it.
 */
import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, countOrZero, shareOf } from "./options.ts";
import { type Scorer, scoredPolicy } from "./scorer.ts";

export const kvzipOptions = z.strictObject({
  type: z.literal("kvzip"),
  budget: count(),
  /** Text before the repeated context (the paper's repeat prompt). */
  prompt: z.string().min(1).default("Repeat the previous context:"),
  /** Newest tokens always kept: a count or a share (< 1) of the budget (see the header). */
  recent: countOrZero().default(0),
});
export type KvzipOptions = z.output<typeof kvzipOptions>;

export function kvzipScorer(opts: Omit<KvzipOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  const { nLayers, nKvHeads } = ctx.shape;
  const byPos: (Float32Array | undefined)[] = new Array(nLayers * nKvHeads);
  const upTo = new Int32Array(nLayers * nKvHeads);
  return {
    name: "kvzip",
    wantsAttention: false,
    scoring: {
      prompt: opts.prompt,
      scores(layer, kvHead, s, n) {
        byPos[layer * nKvHeads + kvHead] = s;
        upTo[layer * nKvHeads + kvHead] = n;
      },
    },
    onAppend() {},
    onAttention() {},
    score(view) {
      const idx = view.layer * nKvHeads + view.kvHead;
      const s = byPos[idx];
      const n = upTo[idx]!;
      const pos = view.positions;
      return (j) => {
        const p = pos[j]!;
        return s && p < n ? s[p]! : Number.POSITIVE_INFINITY;
      };
    },
    protect: (b) => ({ sinks: 0, recent: shareOf(opts.recent, b) }),
    kept() {},
    onMove() {},
    stateBytes: () => 0,
    reset() {
      upTo.fill(0);
    },
  };
}

export function kvzipPolicy(opts: Omit<KvzipOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(kvzipScorer(opts, ctx), opts.budget);
}
