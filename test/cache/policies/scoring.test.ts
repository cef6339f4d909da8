/**
 * The scoring policies keep what their papers say, checked on hand-made inputs through the
 * cache: knorm drops the largest key norms, tova keeps the last query's top tokens, lru drops
 * the least recently used, lfu the least often used, snapkv keeps its observation window.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PolicySpec } from "../../../src/cache/types.ts";
import { makeCache, smallShape } from "./drive.ts";

const shape = smallShape({ nLayers: 1, nHeads: 1, nKvHeads: 1 });
const d = shape.headDim;

/** Append keys (one per token, given as rows) with zero values, attending with q after each append. */
async function run(policy: PolicySpec, keys: number[][], queries: number[][]) {
  const cache = await makeCache({ policy }, shape);
  for (let t = 0; t < keys.length; t++) {
    cache.append(0, Float32Array.from(keys[t]!), new Float32Array(d), Int32Array.of(t));
    cache.attend(0, Float32Array.from(queries[t]!), Int32Array.of(t), new Float32Array(d));
  }
  return [...cache.retainedPositions(0, 0)];
}

const e = (i: number, x: number) => Array.from({ length: d }, (_, j) => (j === i ? x : 0));

test("knorm keeps the smallest key norms", async () => {
  const norms = [5, 1, 7, 2, 9, 3, 0.5, 4];
  const kept = await run(
    { type: "knorm", budget: 3 },
    norms.map((n) => e(0, n)),
    norms.map(() => e(1, 1)),
  );
  assert.deepEqual(kept, [1, 3, 6]); // norms 1, 2, 0.5
});

test("tova keeps the tokens the last query attends to most", async () => {
  // One chunk of 8 tokens; keys on distinct axes; the last query points at tokens 2 and 5,
  // the earlier queries at token 0 (which TOVA must ignore: only the last query votes).
  const cache = await makeCache({ policy: { type: "tova", budget: 2 } }, shape);
  const k = new Float32Array(8 * d);
  for (let t = 0; t < 8; t++) k[t * d + t] = 4;
  const q = new Float32Array(8 * d);
  for (let t = 0; t < 7; t++) q[t * d] = 5;
  q[7 * d + 2] = 3;
  q[7 * d + 5] = 3;
  const pos = Int32Array.from({ length: 8 }, (_, i) => i);
  cache.append(0, k, new Float32Array(8 * d), pos);
  cache.attend(0, q, pos, new Float32Array(8 * d));
  assert.deepEqual([...cache.retainedPositions(0, 0)], [2, 5]);
});

test("lru drops the token unused longest; lfu the one used least often", async () => {
  // Token 0 is attended by queries 0, 2, 3; token 1 only by query 1; tokens 2, 3 by none.
  const keys = [e(0, 6), e(1, 6), e(2, 0), e(3, 0)];
  const queries = [e(0, 6), e(1, 6), e(0, 6), e(0, 6)];
  // LRU: last uses 0 -> 3, 1 -> 1, 2 -> 2 (appended), 3 -> 3: token 1 goes.
  assert.deepEqual(await run({ type: "lru", budget: 3, threshold: 0.5 }, keys, queries), [0, 2, 3]);
  // LFU: counts 3, 1, 0, 0: the older never-used token (2) goes.
  assert.deepEqual(await run({ type: "lfu", budget: 3, threshold: 0.5 }, keys, queries), [0, 1, 3]);
});

test("snapkv keeps its observation window and the earlier tokens the window attends to", async () => {
  const keys = Array.from({ length: 8 }, (_, t) => e(t, 5));
  const queries = keys.map(() => e(3, 5)); // every query looks at token 3
  const kept = await run({ type: "snapkv", budget: 3, window: 2, kernel: 1 }, keys, queries);
  assert.deepEqual(kept, [3, 6, 7]);
});

test("tova scope layer keeps the tokens the layer's heads attend to most on average; kv-head per head", async () => {
  // Two KV heads, one chunk of 8 tokens, keys 4 e_t; only the last query (t = 7) votes.
  // Head 0's query: 3 e_2 + 2.5 e_5 -> logits 4.24 (t2), 3.54 (t5), 0 else: p2 = 0.63, p5 = 0.31.
  // Head 1's query: 4 e_5 -> logit 5.66 (t5): p5 = 0.98, p2 = 0.003.
  // Layer means: t2 0.32, t5 0.65 -> with budget 1 both heads keep t5; per KV head, head 0 keeps t2.
  const shape2 = smallShape({ nLayers: 1, nHeads: 2, nKvHeads: 2 });
  const kept = async (scope: string) => {
    const cache = await makeCache({ policy: { type: "tova", budget: 1, scope } }, shape2);
    const k = new Float32Array(2 * 8 * d);
    for (let h = 0; h < 2; h++) for (let t = 0; t < 8; t++) k[(h * 8 + t) * d + t] = 4;
    const q = new Float32Array(2 * 8 * d); // (nHeads, 8, d): rows t < 7 are zero
    q[(0 * 8 + 7) * d + 2] = 3;
    q[(0 * 8 + 7) * d + 5] = 2.5;
    q[(1 * 8 + 7) * d + 5] = 4;
    const pos = Int32Array.from({ length: 8 }, (_, i) => i);
    cache.append(0, k, new Float32Array(2 * 8 * d), pos);
    cache.attend(0, q, pos, new Float32Array(2 * 8 * d));
    return [0, 1].map((h) => [...cache.retainedPositions(0, h)]);
  };
  assert.deepEqual(await kept("layer"), [[5], [5]]);
  assert.deepEqual(await kept("kv-head"), [[2], [5]]);
});

test("interval compresses only every `every` tokens", async () => {
  // window 4 compressed every 3 tokens, tokens one by one: compressions at 3 (3 held, nothing to
  // do), 6 (-> positions 2..5), 9 (-> 5..8); between them the head grows: at 8 it holds 2..7.
  const keys = Array.from({ length: 9 }, (_, t) => e(t % d, 1));
  const policy = { type: "interval", every: 3, policy: { type: "window", budget: 4 } };
  assert.deepEqual(await run(policy, keys.slice(0, 8), keys), [2, 3, 4, 5, 6, 7]);
  assert.deepEqual(await run(policy, keys, keys), [5, 6, 7, 8]);
});

/** RoPE of one head row (rotate-half pairs (i, i + d/2)), written from its definition. */
function roped(x: number[], pos: number): number[] {
  const inv = shape.rope!.invFreq;
  const h = d / 2;
  const y = [...x];
  for (let i = 0; i < h; i++) {
    const a = pos * inv[i]!;
    y[i] = x[i]! * Math.cos(a) - x[i + h]! * Math.sin(a);
    y[i + h] = x[i + h]! * Math.cos(a) + x[i]! * Math.sin(a);
  }
  return y;
}

test("expected-attention keeps the keys future queries are expected to attend to", async () => {
  // Every query is q0 = 3 e_3 before RoPE (fed rotated to its position), so the statistics are
  // mean q0, no covariance. With future: 1 the future query is RoPE_{t+1} q0, and key
  // RoPE_8(a e_3) scores exp(a x 3 cos((8 - t - 1) x 0.001) / sqrt(8)): the order of a at every
  // step (dims 3/7 rotate at 0.001 rad per position). Budget 3 keeps a = 9, 7, 5: t4, t2, t0.
  const a = [5, 1, 7, 2, 9, 3, 0.5, 4];
  const keys = a.map((x) => roped(e(3, x), 8));
  const queries = a.map((_, t) => roped(e(3, 3), t));
  const policy = { type: "expected-attention", budget: 3, future: 1, sinks: 0, recent: 0, covariance: false };
  assert.deepEqual(await run(policy, keys, queries), [0, 2, 4]);
});

test("expected-attention's covariance term favours keys along the queries' spread", async () => {
  // Queries e_3 + e_2 then e_3 - e_2 (before RoPE): mean e_3, variance 1 along e_2.
  // Key A = 2.1 e_3, key B = 2 e_3 + 3 e_2 (both RoPE'd to position 8, future: 1, so the future
  // query's rotation nearly undoes it: dims 2/6 and 3/7 turn by 0.01 and 0.001 rad per position).
  // Mean only: 2.1 > 2, A stays. With the covariance: B gains k^T Sigma k / (2d) = 9 / 16, so
  // z_B ~ (2 + 0.5625 x sqrt(8)) / sqrt(8) > z_A ~ 2.1 / sqrt(8): B stays.
  const keys = [roped([0, 0, 0, 2.1, 0, 0, 0, 0], 8), roped([0, 0, 3, 2, 0, 0, 0, 0], 8)];
  const queries = [roped([0, 0, 1, 1, 0, 0, 0, 0], 0), roped([0, 0, -1, 1, 0, 0, 0, 0], 1)];
  const base = { type: "expected-attention", budget: 1, future: 1, sinks: 0, recent: 0 };
  assert.deepEqual(await run({ ...base, covariance: false }, keys, queries), [0]);
  assert.deepEqual(await run({ ...base, covariance: true }, keys, queries), [1]);
});
