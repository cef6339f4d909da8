/** Helpers for the policy suites: small shapes, seeded data, a stream driver. */
import { createCache } from "../../../src/cache/create.ts";
import type { StandardKVCache } from "../../../src/cache/kv-cache.ts";
import type { CacheSpecInput, KVShape } from "../../../src/cache/types.ts";

export function ropeInvFreq(headDim: number, theta = 10000): Float32Array {
  return Float32Array.from({ length: headDim / 2 }, (_, i) => theta ** ((-2 * i) / headDim));
}

export function smallShape(over: Partial<KVShape> = {}): KVShape {
  const headDim = over.headDim ?? 8;
  return {
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    headDim,
    maxTokens: 256,
    rope: { invFreq: ropeInvFreq(headDim) },
    ...over,
  };
}

/** A seeded generator of floats in [-scale, scale). */
export function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (scale = 1) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return ((s / 4294967296) * 2 - 1) * scale;
  };
}

export async function makeCache(spec: CacheSpecInput, shape: KVShape, attentionMass = false) {
  return (await createCache(spec, shape, { executor: "ref", attentionMass })) as StandardKVCache;
}

export interface StepData {
  layer: number;
  k: Float32Array; // (nKvHeads, n, headDim)
  v: Float32Array;
  q: Float32Array; // (nHeads, n, headDim)
  positions: Int32Array;
  out: Float32Array;
}

/**
 * Feed a stream in chunks (sizes from `chunks`, cycled) through every layer: append, then
 * attend, calling `after` after each layer's attend. Data is generated from `seed`.
 */
export function drive(
  cache: StandardKVCache,
  shape: KVShape,
  nTokens: number,
  chunks: number[],
  seed: number,
  after?: (s: StepData) => void,
  /** Position of the first token (a later call continuing a sequence starts after the last). */
  firstPos = 0,
): void {
  const r = rng(seed);
  const { nKvHeads, nHeads, headDim: d } = shape;
  let t = 0;
  let c = 0;
  while (t < nTokens) {
    const n = Math.min(chunks[c++ % chunks.length]!, nTokens - t);
    const positions = Int32Array.from({ length: n }, (_, i) => firstPos + t + i);
    for (let layer = 0; layer < shape.nLayers; layer++) {
      const k = Float32Array.from({ length: nKvHeads * n * d }, () => r(2));
      const v = Float32Array.from({ length: nKvHeads * n * d }, () => r(1));
      const q = Float32Array.from({ length: nHeads * n * d }, () => r(2));
      const out = new Float32Array(q.length);
      cache.append(layer, k, v, positions);
      cache.attend(layer, q, positions, out);
      after?.({ layer, k, v, q, positions, out });
    }
    t += n;
  }
}
