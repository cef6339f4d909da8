/**
 * h2o: Heavy-Hitter Oracle (Zhang et al. 2023, arXiv:2306.14048). Each retained token's score
 * is the attention it has received so far (summed over the query heads of its GQA group and
 * over queries); a KV head keeps the `recent` newest tokens plus the highest-scoring others,
 * `budget` in all. Per KV head: each head keeps its own token set.
 */

import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count } from "./options.ts";
import { type Scorer, scoredPolicy, stateScorer } from "./scorer.ts";
import { SlotState } from "./slot-state.ts";

export const h2oOptions = z.strictObject({
  type: z.literal("h2o"),
  budget: count(),
  /** Recent window: a count or a share (< 1) of the budget. */
  recent: count().default(0.5),
});
export type H2OOptions = z.output<typeof h2oOptions>;

export function h2oScorer(opts: Omit<H2OOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  const scores = new SlotState(ctx.shape, 8); // f64 accumulated attention per slot
  return {
    name: "h2o",
    wantsAttention: true,
    onAppend(view, first, n) {
      scores.at(view.layer, view.kvHead, view.nSlots).fill(0, first, first + n);
    },
    onAttention(view, probs, nRows) {
      const s = scores.at(view.layer, view.kvHead, view.nSlots);
      const n = view.nSlots;
      for (let r = 0; r < nRows; r++) for (let j = 0; j < n; j++) s[j]! += probs[r * n + j]!;
    },
    ...stateScorer(scores, opts.recent),
  };
}

export function h2oPolicy(opts: Omit<H2OOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(h2oScorer(opts, ctx), opts.budget);
}
