/** full: keep every token (the uncompressed-retention baseline). */
import type { RetentionPolicy } from "../policy.ts";

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
