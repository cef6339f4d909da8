/**
 * lru: Least Recently Used over tokens (the classic replacement policy, Belady 1966 / Mattson
 * et al. 1970, applied to KV tokens): a token is "used" when some query gives it attention
 * above `threshold`; appending counts as a use. Past the budget the least recently used go.
 */

import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, countOrZero, numberIn } from "./options.ts";
import { type Scorer, scoredPolicy, stateScorer } from "./scorer.ts";
import { SlotState } from "./slot-state.ts";

export const lruOptions = z.strictObject({
  type: z.literal("lru"),
  budget: count(),
  /** Attention weight above which a query counts as a use. */
  threshold: numberIn(0, 1).default(0.01),
  /**
   * Newest tokens always kept: a count or a share (< 1) of the budget. Default none: appending
   * counts as a use, so the newest tokens are already the most recently used.
   */
  recent: countOrZero().default(0),
});
export type LruOptions = z.output<typeof lruOptions>;

export function lruScorer(opts: Omit<LruOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  const lastUse = new SlotState(ctx.shape, 4); // i32 position of the last query that used the slot
  return {
    name: "lru",
    wantsAttention: true,
    onAppend(view, first, n) {
      const s = lastUse.at(view.layer, view.kvHead, view.nSlots);
      for (let j = first; j < first + n; j++) s[j] = view.positions[j]!;
    },
    onAttention(view, probs, nRows, qPos) {
      const n = view.nSlots;
      const s = lastUse.at(view.layer, view.kvHead, n);
      for (let r = 0; r < nRows; r++)
        for (let j = 0; j < n; j++)
          if (probs[r * n + j]! > opts.threshold && qPos[r]! > s[j]!) s[j] = qPos[r]!;
    },
    ...stateScorer(lastUse, opts.recent),
  };
}

export function lruPolicy(opts: Omit<LruOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(lruScorer(opts, ctx), opts.budget);
}
