/**
 * Budget allocations (src/cache/policies/allocation.ts) keep what their papers say, on
 * hand-made inputs whose retained sets are derived by hand in the comments: AdaKV pools the
 * heads' scores with a per-head floor; PyramidKV and layer-budgets split the model's total
 * over layers (arithmetic schedule / given weights) and never exceed it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PolicySpec } from "../../../src/cache/types.ts";
import { makeCache, smallShape } from "./drive.ts";

/** One layer, two KV heads (one query head each); keys on axis 0 with the given norms per head. */
async function adakv(policy: PolicySpec, norms: [number[], number[]]) {
  const shape = smallShape({ nLayers: 1, nHeads: 2, nKvHeads: 2 });
  const d = shape.headDim;
  const n = norms[0].length;
  const cache = await makeCache({ policy }, shape);
  const k = new Float32Array(2 * n * d); // (nKvHeads, n, d)
  for (let h = 0; h < 2; h++) for (let t = 0; t < n; t++) k[(h * n + t) * d] = norms[h]![t]!;
  const pos = Int32Array.from({ length: n }, (_, i) => i);
  cache.append(0, k, new Float32Array(2 * n * d), pos);
  cache.attend(0, new Float32Array(2 * n * d), pos, new Float32Array(2 * n * d));
  return [0, 1].map((h) => [...cache.retainedPositions(0, h)].sort((a, b) => a - b));
}

test("adakv pools the layer's scores across heads, each head keeping its floor", async () => {
  // knorm scores (smaller norm = better), no recent window, budget 2 per head = 4 for the layer.
  const norms: [number[], number[]] = [
    [1, 2, 3, 4],
    [8, 9, 9.5, 9.7],
  ];
  const scorer = { type: "knorm", recent: 0 };
  // floor 0: the 4 smallest norms of the layer are all head 0's; head 1 keeps nothing.
  assert.deepEqual(await adakv({ type: "adakv", budget: 2, floor: 0, scorer }, norms), [[0, 1, 2, 3], []]);
  // floor 0.5: each head first keeps floor(0.5 x 2) = 1 by its own ranking (head 0: t0, head 1:
  // t0 with norm 8); the 2 left go to the best of the rest: head 0's t1 (2) and t2 (3).
  assert.deepEqual(await adakv({ type: "adakv", budget: 2, floor: 0.5, scorer }, norms), [[0, 1, 2], [0]]);
  // floor 1 is the uniform split: 2 per head.
  assert.deepEqual(await adakv({ type: "adakv", budget: 2, floor: 1, scorer }, norms), [
    [0, 1],
    [0, 1],
  ]);
});

test("adakv protects each head's recent window before pooling", async () => {
  // recent 1: each head keeps its newest token (t3) first; 2 of the layer's 4 are left, and the
  // best of the rest are head 0's t0 (1) and t1 (2).
  const kept = await adakv({ type: "adakv", budget: 2, floor: 0, scorer: { type: "knorm", recent: 1 } }, [
    [1, 2, 3, 4],
    [8, 9, 9.5, 9.7],
  ]);
  assert.deepEqual(kept, [[0, 1, 3], [3]]);
});

/** Tokens held per layer (summed over KV heads) after streaming n tokens one by one. */
async function perLayer(policy: PolicySpec, nLayers: number, n: number): Promise<number[]> {
  const shape = smallShape({ nLayers, nHeads: 1, nKvHeads: 1 });
  const d = shape.headDim;
  const cache = await makeCache({ policy }, shape);
  for (let t = 0; t < n; t++)
    for (let l = 0; l < nLayers; l++) {
      const k = Float32Array.from({ length: d }, (_, i) => Math.sin(t * 7 + i + l));
      cache.append(l, k, k, Int32Array.of(t));
      cache.attend(l, k, Int32Array.of(t), new Float32Array(d));
    }
  return Array.from({ length: nLayers }, (_, l) => cache.retainedPositions(l, 0).length);
}

test("pyramidkv: every layer keeps the window, the rest arithmetic from bottom to top, same total", async () => {
  // b = 8, h2o's recent window 0.5 x 8 = 4 in every layer; the other 4 x 4 = 16 tokens over 4
  // layers with beta = 2: 4 x (1.5, 1.17, 0.83, 0.5) = 6, 4.67, 3.33, 2; floors 6, 4, 3, 2
  // leave 1, to the largest remainder (4.67): 6, 5, 3, 2. Per layer: 10, 9, 7, 6 (sum 32 = 4 x 8).
  assert.deepEqual(
    await perLayer({ type: "pyramidkv", budget: 8, beta: 2, scorer: "h2o" }, 4, 20),
    [10, 9, 7, 6],
  );
  // Without a window (knorm recent 0) the schedule covers the whole budget: 12, 9.33, 6.67, 4
  // (sum 32; the 1 left goes to 6.67).
  assert.deepEqual(
    await perLayer({ type: "pyramidkv", budget: 8, beta: 2, scorer: { type: "knorm", recent: 0 } }, 4, 20),
    [12, 9, 7, 4],
  );
});

test("layer-budgets: weights scaled to the uniform total", async () => {
  // b = 4 on 2 layers = 8 tokens; knorm's window 0.25 x 4 = 1 in each layer, the other 6 split
  // 3:1 -> 4.5 and 1.5, floors 4 and 1, the tie of remainders to the lower layer: 5 and 1.
  // Per layer: 6 and 2.
  assert.deepEqual(
    await perLayer({ type: "layer-budgets", budget: 4, ratios: [3, 1], scorer: "knorm" }, 2, 12),
    [6, 2],
  );
  // A ratio list of the wrong length is refused, naming the field.
  await assert.rejects(
    perLayer({ type: "layer-budgets", budget: 4, ratios: [1, 1, 1], scorer: "knorm" }, 2, 1),
    /ratios/,
  );
});
