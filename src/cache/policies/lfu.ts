/**
 * lfu: Least Frequently Used over tokens (the classic replacement policy applied to KV tokens):
 * a token's count is the number of query rows that gave it attention above `threshold`; past
 * the budget the least used go (older first on ties). Like LFU in any cache, a new token starts
 * with the count of its first use only.
 */

import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, countOrZero, numberIn } from "./options.ts";
import { type Scorer, scoredPolicy, stateScorer } from "./scorer.ts";
import { SlotState } from "./slot-state.ts";

export const lfuOptions = z.strictObject({
  type: z.literal("lfu"),
  budget: count(),
  /** Attention weight above which a query counts as a use. */
  threshold: numberIn(0, 1).default(0.01),
  /**
   * Newest tokens always kept: a count or a share (< 1) of the budget. Default a quarter of the
   * budget: a new token has at most its first use, so without a window LFU evicts the tokens
   * just appended (the classic LFU weakness; stories260K, budget 64: see issue 17's note).
   */
  recent: countOrZero().default(0.25),
});
export type LfuOptions = z.output<typeof lfuOptions>;

export function lfuScorer(opts: Omit<LfuOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  const uses = new SlotState(ctx.shape, 4); // u32 use count per slot
  return {
    name: "lfu",
    wantsAttention: true,
    onAppend(view, first, n) {
      uses.at(view.layer, view.kvHead, view.nSlots).fill(0, first, first + n);
    },
    onAttention(view, probs, nRows) {
      const n = view.nSlots;
      const s = uses.at(view.layer, view.kvHead, n);
      for (let r = 0; r < nRows; r++)
        for (let j = 0; j < n; j++) if (probs[r * n + j]! > opts.threshold) s[j]!++;
    },
    ...stateScorer(uses, opts.recent),
  };
}

export function lfuPolicy(opts: Omit<LfuOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(lfuScorer(opts, ctx), opts.budget);
}
