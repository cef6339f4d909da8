/**
 * knorm: keep the keys with the smallest L2 norm, drop the largest (Devoto et al. 2024, "A
 * Simple and Effective L2 Norm-Based Strategy for KV Cache Compression", arXiv:2406.11430:
 * low-norm keys tend to draw high attention). Needs no attention weights, so it also works
 * with fused kernels that never materialise them. `recent` newest tokens are always kept.
 */

import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, countOrZero } from "./options.ts";
import { type Scorer, scoredPolicy, stateScorer } from "./scorer.ts";
import { SlotState } from "./slot-state.ts";

export const knormOptions = z.strictObject({
  type: z.literal("knorm"),
  budget: count(),
  /**
   * Newest tokens always kept: a count or a share (< 1) of the budget. Default a quarter of the
   * budget: with none, a freshly appended key with a large norm is evicted before the next
   * token sees it (stories260K, budget 64 of 256, chunks of 32: KL 0.208 with none, 0.127 with
   * 16 = 0.25 x 64; budget 128: 0.110 -> 0.043; see issue 17).
   */
  recent: countOrZero().default(0.25),
});
export type KnormOptions = z.output<typeof knormOptions>;

export function knormScorer(opts: Omit<KnormOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  const norms = new SlotState(ctx.shape, 4); // f32 key norm per slot
  const d = ctx.shape.headDim;
  let tmp = new Float32Array(0);
  return {
    name: "knorm",
    wantsAttention: false,
    readsKeys: true,
    onAppend(view, first, n) {
      const s = norms.at(view.layer, view.kvHead, view.nSlots);
      if (tmp.length < n * d) tmp = new Float32Array(n * d);
      view.decodeKeys(tmp, first, n);
      for (let t = 0; t < n; t++) {
        let ss = 0;
        for (let i = 0; i < d; i++) ss += tmp[t * d + i]! * tmp[t * d + i]!;
        // NaN norms (non-finite keys) sort as the largest: such keys go first.
        s[first + t] = Number.isNaN(ss) ? Number.POSITIVE_INFINITY : Math.sqrt(ss);
      }
    },
    onAttention() {},
    ...stateScorer(norms, opts.recent, -1),
  };
}

export function knormPolicy(opts: Omit<KnormOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(knormScorer(opts, ctx), opts.budget);
}
