/**
 * Every retention policy on every available executor behaves as on `ref`: the same seeded
 * stream (chunks of several sizes, GQA, two layers) gives the same attention outputs within a
 * named tolerance, the same exact memory() after every step, and the same retained token
 * positions per KV head (where the cache exposes them). A policy that evicted a different
 * token on another executor would change the outputs and positions, so this is also the
 * cross-executor check of the eviction decisions themselves.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createCache } from "../../../src/cache/create.ts";
import { policyOf } from "../../../src/cache/policy.ts";
import type { CacheSpecInput, KVCache } from "../../../src/cache/types.ts";
import type { Executor } from "../../../src/kernels/executor.ts";
import { disposeTestExecutors, executorsUnderTest, refExecutor } from "../../helpers/executors.ts";
import { rng, smallShape } from "./drive.ts";

/** Largest |out - ref| relative to the largest |ref| of the step (attention outputs). */
const POLICY_PARITY_TOL = 1e-4;

const SPECS: CacheSpecInput[] = [
  { policy: { type: "window", budget: 12 } },
  { policy: { type: "sinks", sinks: 2, budget: 10 } },
  { policy: { type: "sinks", sinks: 2, budget: 10, positions: "cache" } },
  { policy: { type: "h2o", budget: 12, recent: 0.5 }, codec: "int4" },
  { policy: { type: "h2o", budget: 0.3 } },
  { policy: { type: "tova", budget: 10 }, codec: "int8" },
  { policy: { type: "snapkv", budget: 10, window: 3 } },
  { policy: { type: "knorm", budget: 10 } },
  { policy: { type: "random", budget: 10, seed: 3 } },
  { policy: { type: "lru", budget: 10 } },
  { policy: { type: "lfu", budget: 10 } },
  { policy: { type: "tiered", recent: 4, budget: 12, codec: "int4" } },
  { policy: { type: "adakv", budget: 10, scorer: { type: "snapkv", window: 3 } } },
  { policy: { type: "tova", budget: 10, scope: "layer" } },
  { policy: { type: "expected-attention", budget: 10, future: 64 } },
  { policy: { type: "adakv", budget: 10, scorer: "expected-attention" }, codec: "int8" },
  { policy: { type: "interval", every: 4, policy: { type: "h2o", budget: 8 } } },
  { policy: { type: "adakv", budget: 10, floor: 0, scorer: "knorm" }, codec: "int8" },
  { policy: { type: "pyramidkv", budget: 10, beta: 4, heads: "adakv", scorer: "h2o" } },
  { policy: { type: "layer-budgets", budget: 10, ratios: [3, 1], scorer: "tova" } },
  { preset: "kivi2", policy: { type: "window", budget: 40 } },
  // kvzip: compare() hands both caches the same scores, as a scoring forward would.
  { policy: { type: "kvzip", budget: 10 }, codec: "int8" },
  { policy: { type: "adakv", budget: 10, scorer: "kvzip" } },
  {
    policy: {
      type: "duo",
      budget: 10,
      sinks: 2,
      recent: 3,
      scores: [
        [0.9, 0.1],
        [0.2, 0.8],
      ],
    },
    codec: "int4",
  },
];

type WithPositions = KVCache & { retainedPositions?(layer: number, kvHead: number): Int32Array };

function sortedPositions(cache: WithPositions, layer: number, kvHead: number): number[] | undefined {
  const p = cache.retainedPositions?.(layer, kvHead);
  return p ? Array.from(p).sort((a, b) => a - b) : undefined;
}

async function compare(spec: CacheSpecInput, ref: Executor, other: Executor): Promise<void> {
  const shape = smallShape({ maxTokens: 128 });
  const a = (await createCache(spec, shape, { executor: ref, seed: 5 })) as WithPositions;
  const b = (await createCache(spec, shape, { executor: other, seed: 5 })) as WithPositions;
  const r = rng(17);
  const { nKvHeads, nHeads, headDim: d } = shape;
  // Policies scored by a scoring forward (kvzip): the same scores by position on both executors,
  // positions >= 40 left unscored.
  const rs = rng(23);
  const byPos = Array.from({ length: shape.nLayers * nKvHeads }, () =>
    Float32Array.from({ length: shape.maxTokens }, () => Math.abs(rs(1))),
  );
  for (const c of [a, b]) {
    const req = policyOf(c)?.scoring;
    if (req)
      for (let l = 0; l < shape.nLayers; l++)
        for (let h = 0; h < nKvHeads; h++) req.scores(l, h, byPos[l * nKvHeads + h]!, 40);
  }
  const chunks = [5, 1, 3, 1, 1, 8, 1, 2];
  let t = 0;
  for (let step = 0; t < 60; step++) {
    const n = Math.min(chunks[step % chunks.length]!, 60 - t);
    const positions = Int32Array.from({ length: n }, (_, i) => t + i);
    for (let layer = 0; layer < shape.nLayers; layer++) {
      const k = Float32Array.from({ length: nKvHeads * n * d }, () => r(2));
      const v = Float32Array.from({ length: nKvHeads * n * d }, () => r(1));
      const q = Float32Array.from({ length: nHeads * n * d }, () => r(2));
      const outA = new Float32Array(q.length);
      const outB = new Float32Array(q.length);
      await a.append(layer, k, v, positions);
      await b.append(layer, k, v, positions);
      await a.attend(layer, q, positions, outA);
      await b.attend(layer, q, positions, outB);
      let scale = 0;
      let err = 0;
      for (let i = 0; i < outA.length; i++) {
        scale = Math.max(scale, Math.abs(outA[i]!));
        err = Math.max(err, Math.abs(outA[i]! - outB[i]!));
      }
      assert.ok(
        err <= POLICY_PARITY_TOL * Math.max(scale, 1e-6),
        `${a.spec.name} on ${other.name}: step ${step} layer ${layer} output differs by ${err} (scale ${scale})`,
      );
      for (let h = 0; h < nKvHeads; h++) {
        const pa = sortedPositions(a, layer, h);
        const pb = sortedPositions(b, layer, h);
        if (pa && pb)
          assert.deepEqual(pb, pa, `${a.spec.name} on ${other.name}: retained positions, layer ${layer}`);
      }
    }
    assert.deepEqual(b.memory(), a.memory(), `${a.spec.name} on ${other.name}: memory() after step ${step}`);
    t += n;
  }
  a.dispose();
  b.dispose();
}

after(disposeTestExecutors);

test("every policy on every executor matches ref (outputs, memory, retained positions)", async (t) => {
  const ref = await refExecutor();
  const others = await executorsUnderTest();
  if (others.length === 0) {
    t.skip("only the ref executor is available");
    return;
  }
  for (const exec of others)
    for (const spec of SPECS)
      await t.test(`${exec.name}: ${JSON.stringify(spec)}`, () => compare(spec, ref, exec));
});
