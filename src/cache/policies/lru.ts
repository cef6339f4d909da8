/**
 * lru: Least Recently Used over tokens (the classic replacement policy, Belady 1966 / Mattson
 * et al. 1970, applied to KV tokens): a token is "used" when some query gives it attention
 * above `threshold`; appending counts as a use. Past the budget the least recently used go.
 */

import { z } from "zod";
import { type PolicyContext, type RetentionPolicy, resolveCount } from "../policy.ts";
import { count, numberIn } from "./options.ts";
import { evictLowest } from "./select.ts";
import { SlotState } from "./slot-state.ts";

export const lruOptions = z.strictObject({
  type: z.literal("lru"),
  budget: count(),
  /** Attention weight above which a query counts as a use. */
  threshold: numberIn(0, 1).default(0.01),
});
export type LruOptions = z.output<typeof lruOptions>;

export function lruPolicy(opts: LruOptions, ctx: PolicyContext): RetentionPolicy {
  const lastUse = new SlotState(ctx.shape, 4); // i32 position of the last query that used the slot
  return {
    name: "lru",
    wantsAttention: true,
    positionsImplicit: false,
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
    evictions(view) {
      const b = resolveCount(opts.budget, view.seen);
      const s = lastUse.at(view.layer, view.kvHead, view.nSlots);
      const drop = evictLowest(view, b, 0, 0, (j) => s[j]!);
      lastUse.setCount(view.layer, view.kvHead, view.nSlots - drop.length);
      return drop;
    },
    onMove: (l, h, from, to) => lastUse.move(l, h, from, to),
    stateBytes: () => lastUse.bytes(),
    reset: () => lastUse.reset(),
  };
}
