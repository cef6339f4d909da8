/**
 * lfu: Least Frequently Used over tokens (the classic replacement policy applied to KV tokens):
 * a token's count is the number of query rows that gave it attention above `threshold`; past
 * the budget the least used go (older first on ties). Like LFU in any cache, a new token starts
 * with the count of its first use only.
 */

import { z } from "zod";
import { type PolicyContext, type RetentionPolicy, resolveCount } from "../policy.ts";
import { count, numberIn } from "./options.ts";
import { evictLowest } from "./select.ts";
import { SlotState } from "./slot-state.ts";

export const lfuOptions = z.strictObject({
  type: z.literal("lfu"),
  budget: count(),
  /** Attention weight above which a query counts as a use. */
  threshold: numberIn(0, 1).default(0.01),
});
export type LfuOptions = z.output<typeof lfuOptions>;

export function lfuPolicy(opts: LfuOptions, ctx: PolicyContext): RetentionPolicy {
  const uses = new SlotState(ctx.shape, 4); // u32 use count per slot
  return {
    name: "lfu",
    wantsAttention: true,
    positionsImplicit: false,
    onAppend(view, first, n) {
      uses.at(view.layer, view.kvHead, view.nSlots).fill(0, first, first + n);
    },
    onAttention(view, probs, nRows) {
      const n = view.nSlots;
      const s = uses.at(view.layer, view.kvHead, n);
      for (let r = 0; r < nRows; r++)
        for (let j = 0; j < n; j++) if (probs[r * n + j]! > opts.threshold) s[j]!++;
    },
    evictions(view) {
      const b = resolveCount(opts.budget, view.seen);
      const s = uses.at(view.layer, view.kvHead, view.nSlots);
      const drop = evictLowest(view, b, 0, 0, (j) => s[j]!);
      uses.setCount(view.layer, view.kvHead, view.nSlots - drop.length);
      return drop;
    },
    onMove: (l, h, from, to) => uses.move(l, h, from, to),
    stateBytes: () => uses.bytes(),
    reset: () => uses.reset(),
  };
}
