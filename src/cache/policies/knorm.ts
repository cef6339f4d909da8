/**
 * knorm: keep the keys with the smallest L2 norm, drop the largest (Devoto et al. 2024, "A
 * Simple and Effective L2 Norm-Based Strategy for KV Cache Compression", arXiv:2406.11430:
 * low-norm keys tend to draw high attention). Needs no attention weights, so it also works
 * with fused kernels that never materialise them. `recent` newest tokens are always kept.
 */

import { z } from "zod";
import { type PolicyContext, type RetentionPolicy, resolveCount } from "../policy.ts";
import { count, intAtLeast, shareOf } from "./options.ts";
import { evictLowest } from "./select.ts";
import { SlotState } from "./slot-state.ts";

export const knormOptions = z.strictObject({
  type: z.literal("knorm"),
  budget: count(),
  /** Newest tokens always kept (a count). */
  recent: intAtLeast(0).default(0),
});
export type KnormOptions = z.output<typeof knormOptions>;

export function knormPolicy(opts: KnormOptions, ctx: PolicyContext): RetentionPolicy {
  const norms = new SlotState(ctx.shape, 4); // f32 key norm per slot
  const d = ctx.shape.headDim;
  let tmp = new Float32Array(0);
  return {
    name: "knorm",
    wantsAttention: false,
    positionsImplicit: false,
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
    evictions(view) {
      const b = resolveCount(opts.budget, view.seen);
      const s = norms.at(view.layer, view.kvHead, view.nSlots);
      const drop = evictLowest(view, b, 0, shareOf(opts.recent, b), (j) => -s[j]!);
      norms.setCount(view.layer, view.kvHead, view.nSlots - drop.length);
      return drop;
    },
    onMove: (l, h, from, to) => norms.move(l, h, from, to),
    stateBytes: () => norms.bytes(),
    reset: () => norms.reset(),
  };
}
