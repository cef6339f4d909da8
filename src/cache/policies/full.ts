/** full: keep every token (the uncompressed-retention baseline). */
import { z } from "zod";
import type { RetentionPolicy } from "../policy.ts";

export const fullOptions = z.strictObject({ type: z.literal("full") });

export function fullPolicy(): RetentionPolicy {
  return {
    name: "full",
    wantsAttention: false,
    positionsImplicit: true,
    onAppend() {},
    onAttention() {},
    evictions: () => [],
    onMove() {},
    stateBytes: () => 0,
    reset() {},
  };
}
