/** createCache for the bench (kept as one place to build a bench's cache). */
import { createCache } from "../../src/cache/create.ts";
import type { CacheSpecInput, KVCache, KVShape } from "../../src/cache/types.ts";
import type { Executor } from "../../src/kernels/executor.ts";
import { fillRandom } from "./executors.ts";

export function benchCache(spec: CacheSpecInput, shape: KVShape, exec: Executor): Promise<KVCache> {
  return createCache(spec, shape, { executor: exec });
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

/**
 * Append `tokens` tokens of random keys/values (uniform in [-1, 1), one seeded LCG stream) to
 * every layer of `cache`, positions 0..tokens-1, in chunks of 512, through its codec: the
 * long-context decode benches' stand-in for a prefill (the values do not change the work).
 */
export async function fillAllLayers(
  cache: KVCache,
  shape: Pick<KVShape, "nLayers" | "nKvHeads" | "headDim">,
  tokens: number,
): Promise<void> {
  let seed = 1;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 31 - 1;
  };
  const chunk = 512;
  const { nKvHeads, headDim } = shape;
  for (let layer = 0; layer < shape.nLayers; layer++)
    for (let p0 = 0; p0 < tokens; p0 += chunk) {
      const n = Math.min(chunk, tokens - p0);
      const k = Float32Array.from({ length: nKvHeads * n * headDim }, rnd); // (nKvHeads, n, headDim)
      const v = Float32Array.from({ length: nKvHeads * n * headDim }, rnd); // (nKvHeads, n, headDim)
      const pos = Int32Array.from({ length: n }, (_, i) => p0 + i); // (n)
      await cache.append(layer, k, v, pos);
    }
}
