/**
 * The cache's running statistics on every available executor: tokens appended, non-finite and
 * saturated inputs counted across K and V, layers and KV heads (the counts a run reports so a
 * NaN in a model's activations never passes silently), and peak bytes.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import type { KVShape } from "../../src/cache/types.ts";
import { availableExecutors, disposeTestExecutors } from "../helpers/executors.ts";

after(disposeTestExecutors);

const executors = await availableExecutors();

for (const exec of executors) {
  describe(`cache stats on ${exec.name}`, () => {
    for (const spec of ["int8", "int4", "f16", "fp8-e4m3"] as const)
      test(`${spec}: non-finite and saturated inputs are counted once each`, async () => {
        const shape: KVShape = { nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, maxTokens: 8 };
        const cache = await createCache(spec, shape, { executor: exec });
        try {
          const n = 3;
          const k = new Float32Array(shape.nKvHeads * n * shape.headDim).map((_, i) => Math.sin(i));
          const v = k.map((x) => x * 0.5);
          k[5] = Number.NaN; // KV head 0
          k[shape.headDim * n + 7] = Number.NEGATIVE_INFINITY; // KV head 1
          v[2] = Number.POSITIVE_INFINITY;
          v[40] = 1e30; // beyond every codec's range here (int8/int4 scales saturate at 65504)
          const positions = Int32Array.from([0, 1, 2]);
          await cache.append(0, k, v, positions);
          await cache.append(
            1,
            k.map((x) => (Number.isFinite(x) ? x : 0)),
            v.map((x) => (x > 1e6 ? 1 : x)),
            positions,
          );
          const s = cache.stats();
          assert.equal(s.appended, 2 * n, "tokens appended, counted per layer");
          assert.equal(s.nonFinite, 3, "NaN, -Inf and +Inf");
          assert.equal(s.saturated, 1, "the one 1e30 value");
          assert.equal(s.executor, exec.name);
          assert.equal(s.peakBytes, cache.memory().total);
          const out = new Float32Array(shape.nHeads * 1 * shape.headDim);
          await cache.attend(1, new Float32Array(out.length).fill(0.1), Int32Array.from([2]), out);
          for (const x of out) assert.ok(Number.isFinite(x), "layer 1 holds only finite data");
        } finally {
          cache.dispose();
        }
      });
  });
}
