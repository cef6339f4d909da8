/**
 * random: evict uniformly random tokens past the budget (a seeded baseline: any method that
 * does not beat it at the same budget has learnt nothing; cf. the random baselines of H2O,
 * Zhang et al. 2023, arXiv:2306.14048, and kvpress's RandomPress). `recent` newest kept.
 */

import { z } from "zod";
import { mulberry32 } from "../../rng.ts";
import { type PolicyContext, type RetentionPolicy, resolveCount } from "../policy.ts";
import { count, intAtLeast, shareOf } from "./options.ts";
import { evictLowest } from "./select.ts";

export const randomOptions = z.strictObject({
  type: z.literal("random"),
  budget: count(),
  /** Newest tokens always kept (a count). */
  recent: intAtLeast(0).default(0),
  /** Seed of the draws (default: the cache's seed). */
  seed: intAtLeast(0).optional(),
});
export type RandomOptions = z.output<typeof randomOptions>;

export function randomPolicy(opts: RandomOptions, ctx: PolicyContext): RetentionPolicy {
  const seed = opts.seed ?? ctx.seed;
  let rnd = mulberry32(seed);
  return {
    name: "random",
    wantsAttention: false,
    positionsImplicit: false,
    onAppend() {},
    onAttention() {},
    evictions(view) {
      const b = resolveCount(opts.budget, view.seen);
      if (view.nSlots <= b) return [];
      const keys = new Float64Array(view.nSlots);
      for (let j = 0; j < keys.length; j++) keys[j] = rnd();
      return evictLowest(view, b, 0, shareOf(opts.recent, b), (j) => keys[j]!);
    },
    onMove() {},
    stateBytes: () => 0,
    reset() {
      rnd = mulberry32(seed);
    },
  };
}
