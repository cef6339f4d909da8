/** createCache: the public way to build a KV cache backend from a spec. */
import { ConfigError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { getExecutor } from "../kernels/registry.ts";
import { assertBlocksFit } from "../quant/ggml-block.ts";
import { StandardKVCache } from "./kv-cache.ts";
import { mergerOf } from "./merge.ts";
import { withModelWindow } from "./model-window.ts";
import { parsePolicy } from "./policies/registry.ts";
import { bindPolicy } from "./policy.ts";
import { softcapOf, withSoftcap } from "./softcap.ts";
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
  // A model trained with a sliding window gets it whatever policy is asked for (model-window.ts).
  const policy = withModelWindow(
    parsePolicy(resolved.policy, "cache.policy").make({ shape, seed: options.seed ?? 0 }),
    shape,
  );
  const kCodec = sideCodec(resolved.keys, "cache.keys");
  const vCodec = sideCodec(resolved.values, "cache.values");
  // ggml block types need whole blocks of 32 per head row; refuse before allocating anything.
  assertBlocksFit(kCodec, shape.headDim, `cache "${resolved.name}" keys`);
  assertBlocksFit(vCodec, shape.headDim, `cache "${resolved.name}" values`);
  // The attention-mass diagnostic recomputes attention without the model's soft-cap.
  if (options.attentionMass && softcapOf(shape) !== undefined)
    throw new ConfigError(
      "attentionMass",
      "the attention-mass diagnostic does not soft-cap attention scores as this model (Gemma 2) does; run without it",
    );
  // The executor's own cache where it has one for this spec (the attention-mass diagnostic
  // needs the standard cache's shadow keys; query: q8 is the standard cache's, src/quant/q8-query.ts).
  // Merging on eviction re-encodes kept rows in the standard cache's stores (merge.ts).
  const own =
    options.attentionMass || resolved.query || mergerOf(policy)
      ? null
      : exec.createCache?.(resolved, shape, { kCodec, vCodec, policy, seed: options.seed ?? 0 });
  if (own) return bindPolicy(own, policy);
  return bindPolicy(
    // A model that soft-caps attention scores (Gemma 2) gets them capped in every attend (softcap.ts).
    new StandardKVCache(resolved, shape, kCodec, vCodec, policy, withSoftcap(exec, shape), {
      seed: options.seed ?? 0,
      attentionMass: options.attentionMass ?? false,
    }),
    policy,
  );
}
