/** Eviction counts and ages, and the opt-in attention-mass-kept diagnostic, against hand computations. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { drive, makeCache, rng, smallShape } from "./drive.ts";

test("window: every eviction happens at age = budget; counts per head and layer", async () => {
  const shape = smallShape();
  const B = 5;
  const cache = await makeCache({ policy: { type: "window", budget: B } }, shape);
  drive(cache, shape, 40, [1], 1);
  const st = cache.stats();
  assert.equal(st.evicted, shape.nLayers * shape.nKvHeads * (40 - B));
  assert.equal(st.evictionAge!.mean, B);
  assert.equal(st.evictionAge!.max, B);
  // Age 5 falls in bucket floor(log2 5) + 1 = 3.
  assert.deepEqual(st.evictionAge!.log2Histogram, [0, 0, 0, st.evicted]);
  assert.equal(st.attentionMassKept, undefined, "the diagnostic is opt-in");
});

test("attention mass kept: 1 with nothing evicted, and equal to a hand computation after eviction", async () => {
  const shape = smallShape({ nLayers: 1, nHeads: 1, nKvHeads: 1 });
  const d = shape.headDim;
  const full = await makeCache("f32", shape, true);
  drive(full, shape, 20, [1, 2], 4);
  assert.deepEqual(full.stats().attentionMassKept, { mean: 1, min: 1, rows: 20 });

  const B = 4;
  const cache = await makeCache({ policy: { type: "window", budget: B } }, shape, true);
  const r = rng(2);
  const K: Float32Array[] = [];
  let sum = 0;
  let rows = 0;
  for (let t = 0; t < 12; t++) {
    const k = Float32Array.from({ length: d }, () => r(3));
    const v = Float32Array.from({ length: d }, () => r(1));
    const q = Float32Array.from({ length: d }, () => r(3));
    K.push(k);
    cache.append(0, k, v, Int32Array.of(t));
    cache.attend(0, q, Int32Array.of(t), new Float32Array(d));
    // Retained at attend time: the last B tokens of 0..t-1 (window after the previous step) plus t.
    const e = K.map((kk) => Math.exp(kk.reduce((s, x, i) => s + x * q[i]!, 0) / Math.sqrt(d)));
    const total = e.reduce((a, b) => a + b, 0);
    const kept = e.slice(Math.max(0, t - B)).reduce((a, b) => a + b, 0);
    sum += kept / total;
    rows++;
  }
  const got = cache.stats().attentionMassKept!;
  assert.equal(got.rows, rows);
  assert.ok(Math.abs(got.mean - sum / rows) < 1e-9, `${got.mean} vs ${sum / rows}`);
  assert.ok(got.min < 1);
});
