/**
 * snapkv (Li et al. 2024, arXiv:2404.14469): at the end of a prefill, the last `window` queries
 * (the observation window) vote: each earlier token's score is the attention those queries give
 * it, summed over them and the GQA group, then max-pooled over neighbouring positions (`kernel`)
 * so that a selected token keeps its context. A KV head keeps the observation window plus the
 * top-scoring earlier tokens, `budget` in all; new tokens are then kept without scoring.
 * In a stream longer than the budget the head overflows again; each attend call that leaves a
 * head over budget re-selects with the queries of that call (a single query when decoding
 * token by token), so the budget holds after every call.
 */

import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, intAtLeast } from "./options.ts";
import { type Scorer, scoredPolicy } from "./scorer.ts";
import { slotsByPosition } from "./select.ts";
import { SlotState } from "./slot-state.ts";

export const snapkvOptions = z.strictObject({
  type: z.literal("snapkv"),
  budget: count(),
  /** Observation window: the last `window` query positions of a call (also kept as recent tokens). */
  window: intAtLeast(1).default(16),
  /** Max-pooling kernel over neighbouring positions (odd, 1 = none). */
  kernel: intAtLeast(1)
    .refine((k) => k % 2 === 1, { error: (i) => `expected an odd pooling kernel, got ${String(i.input)}` })
    .default(5),
});
export type SnapKVOptions = z.output<typeof snapkvOptions>;

export function snapkvScorer(opts: Omit<SnapKVOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  // Scores live only between onAttention and evictions of one call: nothing persists across
  // steps, so they count as scratch, not as policy state.
  const scores = new SlotState(ctx.shape, 0);
  const raw = new SlotState(ctx.shape, 0);
  return {
    name: "snapkv",
    wantsAttention: true,
    onAppend() {},
    onAttention(view, probs, nRows, qPos) {
      const n = view.nSlots;
      let last = Number.NEGATIVE_INFINITY;
      for (let r = 0; r < nRows; r++) if (qPos[r]! > last) last = qPos[r]!;
      const r0 = raw.at(view.layer, view.kvHead, n);
      r0.fill(0, 0, n);
      for (let r = 0; r < nRows; r++) {
        if (qPos[r]! <= last - opts.window) continue;
        for (let j = 0; j < n; j++) r0[j]! += probs[r * n + j]!;
      }
      // Max-pool along positions (slots are unordered: pool in position order).
      const order = slotsByPosition(view);
      const s = scores.at(view.layer, view.kvHead, n);
      const half = (opts.kernel - 1) >> 1;
      for (let i = 0; i < n; i++) {
        let m = 0;
        for (let k = Math.max(0, i - half); k <= Math.min(n - 1, i + half); k++)
          m = Math.max(m, r0[order[k]!]!);
        s[order[i]!] = m;
      }
    },
    score(view) {
      const s = scores.at(view.layer, view.kvHead, view.nSlots);
      return (j) => s[j]!;
    },
    protect: (b) => ({ sinks: 0, recent: Math.min(opts.window, b) }),
    kept() {},
    onMove() {},
    stateBytes: () => 0,
    reset() {},
  };
}

export function snapkvPolicy(opts: Omit<SnapKVOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(snapkvScorer(opts, ctx), opts.budget);
}
