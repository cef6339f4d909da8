/**
 * window: FIFO, keep the last `budget` tokens (sliding-window attention, as in Longformer /
 * Mistral's rolling buffer cache; the baseline StreamingLLM, Xiao et al. 2023,
 * arXiv:2309.17453, shows collapsing once the first tokens leave).
 */

import { z } from "zod";
import { type RetentionPolicy, resolveCount } from "../policy.ts";
import { count } from "./options.ts";
import { evictLowest } from "./select.ts";

export const windowOptions = z.strictObject({ type: z.literal("window"), budget: count() });
export type WindowOptions = z.output<typeof windowOptions>;

export function windowPolicy(opts: Omit<WindowOptions, "type">): RetentionPolicy {
  return {
    name: "window",
    wantsAttention: false,
    // A ring buffer of the last W tokens knows every position from the token count.
    positionsImplicit: true,
    onAppend() {},
    onAttention() {},
    evictions(view) {
      const b = resolveCount(opts.budget, view.seen);
      return evictLowest(view, b, 0, b, () => 0);
    },
    onMove() {},
    stateBytes: () => 0,
    reset() {},
  };
}
