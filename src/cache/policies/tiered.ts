/**
 * tiered: a multi-level cache (in the spirit of KVQuant's dense-and-sparse / MiKV's mixed
 * precision, Yang et al. 2024, arXiv:2402.18096, and of CPU cache hierarchies): the `recent`
 * newest tokens stay in the cache's own codec, older ones move to a cheaper codec (re-encoded
 * once, from the higher-precision copy), and past `budget` the oldest are evicted. The cache
 * does the moving (it owns the codecs); this object only carries the settings.
 */
import type { RetentionPolicy, TierSpec } from "../policy.ts";

export function tieredPolicy(tiers: TierSpec): RetentionPolicy {
  return {
    name: "tiered",
    wantsAttention: false,
    positionsImplicit: true, // both tiers are FIFO by age: ring buffers know their positions
    tiers,
    onAppend() {},
    onAttention() {},
    evictions: () => [],
    onMove() {},
    stateBytes: () => 0,
    reset() {},
  };
}
