/**
 * Routing for createCache with executor "webgpu": the GPU-resident cache where it supports the
 * spec, else null (the caller builds the standard cache, whose ops then run through the
 * executor's counted ref fallbacks, so results still record that the GPU did not run them).
 */
import type { RetentionPolicy } from "../cache/policy.ts";
import type { KVCache, KVShape, ResolvedCacheSpec } from "../cache/types.ts";
import type { Executor } from "../kernels/executor.ts";
import type { Codec } from "../quant/types.ts";
import { isWebGpuExecutor } from "./executor.ts";
import { GpuKVCache } from "./kv-cache.ts";

/** Why the GPU cache cannot hold this spec, or null when it can. */
export function gpuCacheUnsupported(spec: ResolvedCacheSpec, policy: RetentionPolicy): string | null {
  const { keys, values } = spec;
  if (keys.axis === "channel") return "channel-axis keys";
  if (keys.residual || values.residual) return "residual windows";
  if (keys.rotation !== "none") return "key rotation";
  if (keys.preRope) return "pre-RoPE keys";
  if (policy.tiers) return "tiers";
  if (policy.cachePositions) return "cache positions";
  return null;
}

export function createGpuCache(
  spec: ResolvedCacheSpec,
  shape: KVShape,
  kCodec: Codec,
  vCodec: Codec,
  policy: RetentionPolicy,
  exec: Executor,
): KVCache | null {
  if (!isWebGpuExecutor(exec) || gpuCacheUnsupported(spec, policy) !== null) return null;
  return new GpuKVCache(spec, shape, kCodec, vCodec, policy, exec.gpu);
}
