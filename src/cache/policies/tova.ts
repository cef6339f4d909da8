/**
 * tova: Token Omission Via Attention (Oren et al. 2024, arXiv:2401.06104): after each step keep
 * the `budget` tokens with the highest attention from the current (last) query, averaged over
 * heads. By default here per KV head, averaged over the query heads of its GQA group; with
 * `scope: layer` as the paper: averaged over all heads of a layer, one token set per layer.
 */

import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, countOrZero } from "./options.ts";
import { type Scorer, scoredPolicy, stateScorer } from "./scorer.ts";
import { SlotState } from "./slot-state.ts";

export const tovaOptions = z.strictObject({
  type: z.literal("tova"),
  budget: count(),
  /**
   * Newest tokens always kept: a count or a share (< 1) of the budget. Default none, as the
   * paper: the last query's own attention decides (and it attends to its recent context).
   */
  recent: countOrZero().default(0),
  /**
   * "kv-head" (default): each KV head keeps its own top tokens, scored by its GQA group's mean
   * attention (kvlab's original TOVA). "layer": the paper's TOVA, one token set per layer scored
   * by the mean over all heads of the layer (allocation.ts, heads: shared).
   */
  scope: z.enum(["kv-head", "layer"]).default("kv-head"),
});
export type TovaOptions = z.output<typeof tovaOptions>;

export function tovaScorer(opts: Omit<TovaOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  const scores = new SlotState(ctx.shape, 4); // f32 attention of the last query per slot
  return {
    name: "tova",
    wantsAttention: true,
    onAppend(view, first, n) {
      scores.at(view.layer, view.kvHead, view.nSlots).fill(0, first, first + n);
    },
    onAttention(view, probs, nRows, qPos) {
      const n = view.nSlots;
      const s = scores.at(view.layer, view.kvHead, n);
      let last = Number.NEGATIVE_INFINITY;
      for (let r = 0; r < nRows; r++) if (qPos[r]! > last) last = qPos[r]!;
      s.fill(0, 0, n);
      let heads = 0;
      for (let r = 0; r < nRows; r++) {
        if (qPos[r] !== last) continue;
        heads++;
        for (let j = 0; j < n; j++) s[j]! += probs[r * n + j]!;
      }
      for (let j = 0; j < n; j++) s[j]! /= heads;
    },
    ...stateScorer(scores, opts.recent),
  };
}

/** TOVA per KV head (scope kv-head); scope layer is built by the registry (allocation.ts, heads: shared). */
export function tovaPolicy(opts: Omit<TovaOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(tovaScorer(opts, ctx), opts.budget);
}
