/** createCache: the public way to build a KV cache backend from a spec. */
import type { Executor } from "../kernels/executor.ts";
import { getExecutor } from "../kernels/registry.ts";
import { StandardKVCache } from "./kv-cache.ts";
import { parsePolicy } from "./policies/registry.ts";
import { resolveCacheSpec, sideCodec } from "./spec.ts";
import type { CacheSpecInput, KVCache, KVShape } from "./types.ts";

export interface CreateCacheOptions {
  /** Executor name (default: the registry's default) or an executor instance. */
  executor?: string | Executor;
  /** Seed for randomized policies and rotations. */
  seed?: number;
  /**
   * Opt-in diagnostic: measure the attention mass kept (stats().attentionMassKept). Costs a
   * shadow f32 copy of every key and a second, full attention pass (see attention-mass.ts).
   */
  attentionMass?: boolean;
}

export async function createCache(
  spec: CacheSpecInput,
  shape: KVShape,
  options: CreateCacheOptions = {},
): Promise<KVCache> {
  const resolved = resolveCacheSpec(spec);
  const exec = typeof options.executor === "object" ? options.executor : await getExecutor(options.executor);
  const policy = parsePolicy(resolved.policy, "cache.policy").make({ shape, seed: options.seed ?? 0 });
  if (exec.name === "webgpu" && !options.attentionMass) {
    // The cache lives in GPU buffers where the spec allows (src/gpu/create-cache.ts).
    const { createGpuCache } = await import("../gpu/create-cache.ts");
    const gpu = createGpuCache(
      resolved,
      shape,
      sideCodec(resolved.keys, "cache.keys"),
      sideCodec(resolved.values, "cache.values"),
      policy,
      exec,
    );
    if (gpu) return gpu;
  }
  return new StandardKVCache(
    resolved,
    shape,
    sideCodec(resolved.keys, "cache.keys"),
    sideCodec(resolved.values, "cache.values"),
    policy,
    exec,
    { seed: options.seed ?? 0, attentionMass: options.attentionMass ?? false },
  );
}
