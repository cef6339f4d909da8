/**
 * createCache for the bench, with one workaround: at the time of writing createCache rejects
 * the float codecs (resolveCacheSpec fills group/symmetric into f32/f16's resolved options and
 * makeCodec then refuses them: "codec f32 takes no group/symmetric options"). When exactly that
 * happens the cache is built the way createCache builds it, from the codec names, and the
 * section notes it. Remove once createCache("f32") works.
 */
import { createCache } from "../../src/cache/create.ts";
import { StandardKVCache } from "../../src/cache/kv-cache.ts";
import { parsePolicy } from "../../src/cache/policies/registry.ts";
import { resolveCacheSpec } from "../../src/cache/spec.ts";
import type { KVCache, KVShape } from "../../src/cache/types.ts";
import type { Executor } from "../../src/kernels/executor.ts";
import { CODECS, makeCodec } from "../../src/quant/registry.ts";
import { fillRandom } from "./executors.ts";

export const workarounds = new Set<string>();

export async function benchCache(spec: string, shape: KVShape, exec: Executor): Promise<KVCache> {
  try {
    return await createCache(spec, shape, { executor: exec });
  } catch (err) {
    if (!(err instanceof Error) || !/takes no group\/symmetric options/.test(err.message)) throw err;
    const resolved = resolveCacheSpec(spec);
    const codec = (o: typeof resolved.keys) =>
      CODECS[o.type]?.grouped ? makeCodec(o) : makeCodec({ type: o.type });
    workarounds.add(`createCache("${spec}") threw "${err.message}"; built StandardKVCache directly`);
    const policy = parsePolicy(resolved.policy, "cache.policy").make({ shape, seed: 0 });
    return new StandardKVCache(resolved, shape, codec(resolved.keys), codec(resolved.values), policy, exec);
  }
}

/**
 * Append `tokens` tokens of random keys/values to layer 0 of `cache`, positions 0..tokens-1, in
 * chunks of 512 (one random chunk reused: the values do not change the work attention does).
 */
export function fillCache(cache: KVCache, shape: KVShape, tokens: number): void {
  const CHUNK = 512;
  const k = fillRandom(new Float32Array(shape.nKvHeads * CHUNK * shape.headDim), 11); // (nKvHeads, CHUNK, headDim)
  const v = fillRandom(new Float32Array(k.length), 13);
  const pos = new Int32Array(CHUNK);
  for (let start = 0; start < tokens; start += CHUNK) {
    const n = Math.min(CHUNK, tokens - start);
    for (let i = 0; i < n; i++) pos[i] = start + i;
    // A short last chunk needs (nKvHeads, n, headDim): rows of each head are contiguous per head.
    const kk = n === CHUNK ? k : k.subarray(0, shape.nKvHeads * n * shape.headDim);
    cache.append(0, kk, n === CHUNK ? v : v.subarray(0, kk.length), pos.subarray(0, n));
  }
}
