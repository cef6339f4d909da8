/**
 * random: evict uniformly random tokens past the budget (a seeded baseline: any method that
 * does not beat it at the same budget has learnt nothing; cf. the random baselines of H2O,
 * Zhang et al. 2023, arXiv:2306.14048, and kvpress's RandomPress). `recent` newest kept.
 */

import { z } from "zod";
import { mulberry32 } from "../../rng.ts";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, countOrZero, intAtLeast, shareOf } from "./options.ts";
import { type Scorer, scoredPolicy } from "./scorer.ts";

export const randomOptions = z.strictObject({
  type: z.literal("random"),
  budget: count(),
  /**
   * Newest tokens always kept: a count or a share (< 1) of the budget. Default none: the
   * baseline draws uniformly (a window of 16 of 64 did not help it on stories260K: KL 0.268
   * without, 0.281 with).
   */
  recent: countOrZero().default(0),
  /** Seed of the draws (default: the cache's seed). */
  seed: intAtLeast(0).optional(),
});
export type RandomOptions = z.output<typeof randomOptions>;

export function randomScorer(opts: Omit<RandomOptions, "budget" | "type">, ctx: PolicyContext): Scorer {
  const seed = opts.seed ?? ctx.seed;
  let rnd = mulberry32(seed);
  return {
    name: "random",
    wantsAttention: false,
    onAppend() {},
    onAttention() {},
    score(view) {
      // Fresh draws at each eviction: no state to keep or move.
      const keys = new Float64Array(view.nSlots);
      for (let j = 0; j < keys.length; j++) keys[j] = rnd();
      return (j) => keys[j]!;
    },
    protect: (b) => ({ sinks: 0, recent: shareOf(opts.recent, b) }),
    kept() {},
    onMove() {},
    stateBytes: () => 0,
    reset() {
      rnd = mulberry32(seed);
    },
  };
}

export function randomPolicy(opts: Omit<RandomOptions, "type">, ctx: PolicyContext): RetentionPolicy {
  return scoredPolicy(randomScorer(opts, ctx), opts.budget);
}
