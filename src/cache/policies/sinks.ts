/**
 * sinks: attention sinks + sliding window (StreamingLLM, Xiao et al. 2023, arXiv:2309.17453):
 * keep the first `sinks` tokens, which soak up attention mass the softmax must put somewhere,
 * and the most recent budget - sinks. `positions: "cache"` gives RoPE positions by rank within
 * the cache, as StreamingLLM does (keys are then stored before RoPE and rotated at attention
 * time); `positions: "absolute"` (default) keeps each token's original position.
 */

import { z } from "zod";
import { type RetentionPolicy, resolveCount } from "../policy.ts";
import { count, countOrZero, shareOf } from "./options.ts";
import { evictLowest } from "./select.ts";

export const sinksOptions = z
  .strictObject({
    type: z.literal("sinks"),
    /** First tokens kept: a count, a share of the budget, or 0 (the window alone; with positions: cache, StreamingLLM's no-sink ablation). */
    sinks: countOrZero().default(4),
    budget: count(),
    positions: z.enum(["absolute", "cache"]).default("absolute"),
  })
  .superRefine((o, ctx) => {
    if (o.sinks >= 1 && o.budget >= 1 && o.sinks >= o.budget)
      ctx.addIssue({
        code: "custom",
        path: ["sinks"],
        message: `sinks (${o.sinks}) must be smaller than budget (${o.budget})`,
      });
  });
export type SinksOptions = z.output<typeof sinksOptions>;

export function sinksPolicy(opts: Omit<SinksOptions, "type">): RetentionPolicy {
  return {
    name: "sinks",
    wantsAttention: false,
    positionsImplicit: true, // first S then a ring buffer: positions follow from the count
    cachePositions: opts.positions === "cache",
    onAppend() {},
    onAttention() {},
    evictions(view) {
      const b = resolveCount(opts.budget, view.seen);
      const s = shareOf(opts.sinks, b);
      return evictLowest(view, b, s, b - s, () => 0);
    },
    onMove() {},
    stateBytes: () => 0,
    reset() {},
  };
}
