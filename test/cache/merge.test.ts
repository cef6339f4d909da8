/**
 * Merging on eviction (merge: nearest, src/cache/merge.ts): the rule on hand-computed cases,
 * through a cache end to end, and as a property over policies x codecs on ref and wasm: the
 * same tokens are kept as with merge: none (the merge changes values only, never keys, so no
 * policy decision moves), the budget holds, and memory() is exactly none's plus 4 bytes per
 * retained slot (the declared merge counts). merge absent or none is unchanged.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { createCache } from "../../src/cache/create.ts";
import { mergeNearest } from "../../src/cache/merge.ts";
import { parsePolicy } from "../../src/cache/policies/registry.ts";
import type { CacheSpecInput, KVCache, KVShape, PolicySpec } from "../../src/cache/types.ts";
import { ConfigError } from "../../src/errors.ts";
import { getExecutor } from "../../src/kernels/registry.ts";
import { CODEC_NAMES } from "../../src/quant/registry.ts";
import { GGML_CODECS } from "../helpers/codec-cases.ts";
import { rng, smallShape } from "./policies/drive.ts";

fc.configureGlobal({ includeErrorInReport: true });

test("mergeNearest: hand-computed weighted merge into the most similar kept key", () => {
  // 4 slots, d = 2. Keys: 0 (1,0), 1 (0,1), 2 (1,0.1), 3 (0,2). Drop 0 and 1.
  // cos(k0, k2) = 1/sqrt(1.01) > cos(k0, k3) = 0 -> 0 into 2; cos(k1, k3) = 1 -> 1 into 3.
  const keys = Float32Array.of(1, 0, 0, 1, 1, 0.1, 0, 2);
  const values = Float32Array.of(4, 8, 2, 2, 0, 6, 9, 3);
  const w = Float64Array.of(1, 2, 3, 1); // tokens each slot already stands for
  const changed = mergeNearest(keys, values, w, 4, 2, [0, 1]);
  assert.deepEqual(changed, [2, 3]);
  // slot 2: (3*(0,6) + 1*(4,8)) / 4 = (1, 6.5); slot 3: (1*(9,3) + 2*(2,2)) / 3 = (13/3, 7/3).
  assert.deepEqual([...values.subarray(4, 8)], [1, 6.5, Math.fround(13 / 3), Math.fround(7 / 3)]);
  assert.deepEqual([...w], [1, 2, 4, 3]);
  // Dropped rows are left as they were (the head frees them next).
  assert.deepEqual([...values.subarray(0, 4)], [4, 8, 2, 2]);
});

test("mergeNearest: ties go to the lower slot, zero keys count as similarity 0, all dropped merges nothing", () => {
  // k0 = 0 (zero key): similarity 0 with both kept; tie -> slot 1.
  const keys = Float32Array.of(0, 0, 1, 0, -1, 0);
  const values = Float32Array.of(6, 0, 0, 0, 3, 3);
  const w = Float64Array.of(1, 1, 1);
  assert.deepEqual(mergeNearest(keys, values, w, 3, 2, [0]), [1]);
  assert.deepEqual([...values.subarray(2, 4)], [3, 0]);
  assert.deepEqual(mergeNearest(keys, values, w, 3, 2, [0, 1, 2]), []);
});

const oneHead: KVShape = { nLayers: 1, nHeads: 1, nKvHeads: 1, headDim: 2, maxTokens: 64 };

/** Append tokens (keys, values (n, 2)) at positions, attend with zero queries (uniform weights). */
function step(cache: KVCache, k: number[], v: number[], positions: number[]): Float32Array {
  const pos = Int32Array.from(positions);
  const out = new Float32Array(positions.length * 2);
  cache.append(0, Float32Array.from(k), Float32Array.from(v), pos);
  cache.attend(0, new Float32Array(positions.length * 2), pos, out);
  return out;
}

// Values as f32 rows, or behind a 1-token f32 window (ValueResidual): the first merge then
// rewrites a window row, the second an encoded row.
const CODECS: unknown[] = ["f32", { keys: { type: "f32" }, values: { type: "f32", residual: 1 } }];

test("window 2 + merge nearest, f32: outputs equal the hand-computed means of merged values", async () => {
  for (const executor of ["ref", "wasm"])
    for (const codec of CODECS) {
      const spec = (merge?: string): CacheSpecInput => ({
        codec: codec as never,
        policy: { type: "window", budget: 2, ...(merge ? { merge } : {}) },
      });
      const cache = await createCache(spec("nearest"), oneHead, { executor });
      const plain = await createCache(spec(), oneHead, { executor });
      const s0 = [
        [1, 0, 0, 1, 1, 0.1],
        [4, 8, 2, 2, 0, 6],
        [0, 1, 2],
      ] as const;
      step(cache, [...s0[0]], [...s0[1]], [...s0[2]]);
      step(plain, [...s0[0]], [...s0[1]], [...s0[2]]);
      // pos 0 (k (1,0)) left: nearest kept key is pos 2 (1,0.1): v2 = ((0,6) + (4,8)) / 2 = (2,7), w 2.
      // Step 2 attends pos 1 (2,2), pos 2 (2,7), pos 3 (10,0) uniformly: (14/3, 3).
      const o1 = step(cache, [-1, 0], [10, 0], [3]);
      // (wasm sums in another order than ref: a few f32 ulps.)
      const near = (o: Float32Array, e: number[]) =>
        assert.ok(
          Math.abs(o[0]! - e[0]!) < 1e-6 && Math.abs(o[1]! - e[1]!) < 1e-6,
          `${executor}: ${[...o]} vs ${e}`,
        );
      near(o1, [14 / 3, 3]);
      near(step(plain, [-1, 0], [10, 0], [3]), [4, 8 / 3]);
      assert.equal(cache.memory().policyState, 2 * 4, "two slots' merge counts");
      // pos 1 (k (0,1)) left: cos with (1,0.1) = 0.0995 > cos with (-1,0) = 0:
      // v2 = (2*(2,7) + (2,2)) / 3 = (2, 16/3). Step 3: mean of (2,16/3), (10,0), (0,0) = (4, 16/9).
      const o2 = step(cache, [0, -1], [0, 0], [4]);
      near(o2, [4, 16 / 9]);
      cache.dispose();
      plain.dispose();
    }
});

test("merge: the option is parsed for evicting policies only, absent when not given", () => {
  assert.equal(parsePolicy({ type: "h2o", budget: 8 }, "p").resolved.merge, undefined);
  assert.equal(parsePolicy({ type: "h2o", budget: 8, merge: "nearest" }, "p").resolved.merge, "nearest");
  assert.throws(
    () => parsePolicy({ type: "h2o", budget: 8, merge: "mean" }, "caches[0].policy"),
    (e: Error) =>
      e instanceof ConfigError && /caches\[0\]\.policy\.merge/.test(e.message) && /nearest/.test(e.message),
  );
  for (const spec of [{ type: "full" }, { type: "tiered", budget: 8, recent: 0.5, codec: "int4" }])
    assert.throws(
      () => parsePolicy({ ...spec, merge: "nearest" } as PolicySpec, "p"),
      (e: Error) => e instanceof ConfigError && /merge/.test(e.message),
    );
  assert.throws(
    () =>
      parsePolicy({ type: "interval", every: 2, policy: { type: "h2o", budget: 4, merge: "nearest" } }, "p"),
    (e: Error) => e instanceof ConfigError && /p\.policy\.merge/.test(e.message),
  );
  const interval = parsePolicy(
    { type: "interval", every: 2, merge: "nearest", policy: { type: "h2o", budget: 4 } },
    "p",
  );
  assert.equal(interval.resolved.merge, "nearest");
});

const policyArb: fc.Arbitrary<PolicySpec> = fc.oneof(
  fc.record({ type: fc.constant("window"), budget: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ type: fc.constant("sinks"), sinks: fc.constant(2), budget: fc.integer({ min: 3, max: 10 }) }),
  fc.record({ type: fc.constant("h2o"), budget: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ type: fc.constant("tova"), budget: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ type: fc.constant("snapkv"), budget: fc.integer({ min: 1, max: 10 }), window: fc.constant(2) }),
  fc.record({ type: fc.constant("knorm"), budget: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ type: fc.constant("random"), budget: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ type: fc.constant("lfu"), budget: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ type: fc.constant("adakv"), budget: fc.integer({ min: 2, max: 10 }) }),
  fc.record({
    type: fc.constant("interval"),
    every: fc.integer({ min: 1, max: 4 }),
    policy: fc.record({ type: fc.constant("h2o"), budget: fc.integer({ min: 1, max: 10 }) }),
  }),
);

const codecArb: fc.Arbitrary<{ codec?: string; preset?: string }> = fc.oneof(
  fc.constantFrom(...CODEC_NAMES).map((c) => ({ codec: c })),
  // kivi2: channel-axis keys and values with a full-precision window (ValueResidual.rewrite).
  fc.constantFrom("kivi2", "kivi4", "int4-hadamard", "q4_0").map((p) => ({ preset: p })),
);

/** Per-head budget bound a policy spec implies after each attend (integer budgets here). */
function bound(p: PolicySpec): number {
  if (p.type === "interval") return (p.policy as { budget: number }).budget + (p.every as number) - 1;
  return p.budget as number;
}

test("every policy x every codec, ref and wasm: merge nearest keeps what none keeps, budget holds, memory = none's + 4 bytes a slot", async () => {
  await fc.assert(
    fc.asyncProperty(
      policyArb,
      codecArb,
      fc.constantFrom("ref", "wasm"),
      fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 1, max: 1000 }),
      async (policy, codec, executor, chunks, nTokens, seed) => {
        const name = codec.codec ?? codec.preset;
        const shape = smallShape(
          (GGML_CODECS as readonly (string | undefined)[]).includes(name) ? { headDim: 32 } : {},
        );
        const make = (merge: boolean) =>
          createCache({ ...codec, policy: merge ? { ...policy, merge: "nearest" } : policy }, shape, {
            executor,
            seed,
          });
        const merged = await make(true);
        const plain = await make(false);
        const r = rng(seed);
        const { nKvHeads, nHeads, headDim: d, nLayers } = shape;
        let t = 0;
        let c = 0;
        while (t < nTokens) {
          const n = Math.min(chunks[c++ % chunks.length]!, nTokens - t);
          const positions = Int32Array.from({ length: n }, (_, i) => t + i);
          for (let layer = 0; layer < nLayers; layer++) {
            const k = Float32Array.from({ length: nKvHeads * n * d }, () => r(2));
            const v = Float32Array.from({ length: nKvHeads * n * d }, () => r(1));
            const q = Float32Array.from({ length: nHeads * n * d }, () => r(2));
            const out = new Float32Array(q.length);
            for (const cache of [merged, plain]) {
              cache.append(layer, k, v, positions);
              cache.attend(layer, q, positions, out);
              assert.ok(out.every(Number.isFinite), "finite outputs");
            }
            let slots = 0;
            for (let h = 0; h < nKvHeads; h++) {
              const a = (
                merged as unknown as { retainedPositions(l: number, h: number): Int32Array }
              ).retainedPositions(layer, h);
              const b = (
                plain as unknown as { retainedPositions(l: number, h: number): Int32Array }
              ).retainedPositions(layer, h);
              assert.deepEqual([...a], [...b], "same tokens kept");
              if (policy.type !== "adakv") assert.ok(a.length <= bound(policy), `budget ${a.length}`);
            }
            for (let l = 0; l < nLayers; l++)
              for (let h = 0; h < nKvHeads; h++)
                slots += (
                  merged as unknown as { retainedPositions(l: number, h: number): Int32Array }
                ).retainedPositions(l, h).length;
            const mm = merged.memory();
            const pm = plain.memory();
            assert.equal(mm.policyState, pm.policyState + 4 * slots, "declared merge counts");
            assert.equal(mm.total, pm.total + 4 * slots, "memory = none's + counts");
          }
          t += n;
        }
        merged.dispose();
        plain.dispose();
      },
    ),
    { numRuns: 120, seed: 17 },
  );
});

test("merge none (explicit) is bit-identical to no merge option", async () => {
  const shape = smallShape();
  for (const executor of ["ref", "wasm"]) {
    const outs: number[][] = [];
    const mems: number[] = [];
    for (const policy of [
      { type: "h2o", budget: 6 },
      { type: "h2o", budget: 6, merge: "none" },
    ]) {
      const cache = await createCache({ codec: "int4", policy }, shape, { executor });
      const r = rng(5);
      const all: number[] = [];
      for (let t = 0; t < 20; t += 4) {
        const positions = Int32Array.from({ length: 4 }, (_, i) => t + i);
        for (let layer = 0; layer < shape.nLayers; layer++) {
          const k = Float32Array.from({ length: 2 * 4 * 8 }, () => r(2));
          const v = Float32Array.from({ length: 2 * 4 * 8 }, () => r(1));
          const q = Float32Array.from({ length: 4 * 4 * 8 }, () => r(2));
          const out = new Float32Array(q.length);
          cache.append(layer, k, v, positions);
          cache.attend(layer, q, positions, out);
          all.push(...out);
        }
      }
      outs.push(all);
      mems.push(cache.memory().total);
      cache.dispose();
    }
    assert.deepEqual(outs[0], outs[1], executor);
    assert.equal(mems[0], mems[1]);
  }
});

test("a merging policy never goes to an executor's own cache (webgpu's does not merge)", async () => {
  const ref = await getExecutor("ref");
  let asked = 0;
  const exec = new Proxy(ref, {
    get(target, key) {
      if (key === "createCache")
        return () => {
          asked++;
          return null; // "no own cache for this spec": the standard cache is built
        };
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const shape = smallShape();
  await createCache({ codec: "f16", policy: { type: "h2o", budget: 4 } }, shape, { executor: exec });
  assert.equal(asked, 1, "a plain policy is offered to the executor's cache");
  await createCache({ codec: "f16", policy: { type: "h2o", budget: 4, merge: "nearest" } }, shape, {
    executor: exec,
  });
  assert.equal(asked, 1, "a merging one is not");
});
