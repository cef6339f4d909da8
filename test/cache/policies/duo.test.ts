/**
 * duo (DuoAttention, arXiv:2410.10819): the head map from the profile scores, the budgets of
 * retrieval and streaming heads at an equal total (hand-computed), the map in the resolved spec,
 * the errors; the head profile's proxy on a hand-made attention pattern.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { headMapText, retrievalHeads } from "../../../src/cache/policies/duo.ts";
import { parsePolicy } from "../../../src/cache/policies/registry.ts";
import { resolveCacheSpec } from "../../../src/cache/spec.ts";
import { ConfigError } from "../../../src/errors.ts";
import { profileHeads } from "../../../src/eval/head-profile.ts";
import { drive, makeCache, smallShape } from "./drive.ts";

const SCORES = [
  [0.9, 0.1],
  [0.2, 0.8],
];

test("the retrieval share of KV heads with the highest scores are retrieval heads (ties: lower index)", () => {
  assert.deepEqual(retrievalHeads([0.9, 0.1, 0.2, 0.8], 0.5), [true, false, false, true]);
  assert.deepEqual(retrievalHeads([0.5, 0.5, 0.5, 0.5], 0.25), [true, false, false, false]);
  assert.deepEqual(retrievalHeads([1, 2, 3], 0), [false, false, false]);
  assert.equal(headMapText([true, false, false, true], 2), "RS|SR");
});

test("the resolved spec carries the head map; a wrong map or shape is refused by name", async () => {
  const r = parsePolicy({ type: "duo", budget: 8, scores: SCORES }, "caches[0].policy").resolved;
  assert.equal(r.map, "RS|SR");
  assert.equal(
    resolveCacheSpec({ policy: { type: "duo", budget: 8, scores: SCORES, retrieval: 0.25 } }).policy.map,
    "RS|SS",
  );
  assert.throws(
    () => parsePolicy({ type: "duo", budget: 8, scores: SCORES, map: "SS|RR" }, "p"),
    (e) => e instanceof ConfigError && /p\.map/.test(e.message),
  );
  assert.throws(() => parsePolicy({ type: "duo", budget: 8, scores: [[1, 2], [3]] }, "p"), /p\.scores/);
  await assert.rejects(
    makeCache({ policy: { type: "duo", budget: 8, scores: [[1, 2, 3]] } }, smallShape()),
    /2 layers x 2 KV heads/,
  );
});

test("streaming heads keep sinks + recent; retrieval heads the rest of the equal total, oldest after the sinks going", async () => {
  // 2 layers x 2 KV heads, b = 8: streaming heads keep 2 sinks + 2 recent = 4; the two
  // retrieval heads share 4 x 8 - 2 x 4 = 24, 12 each.
  const shape = smallShape();
  const cache = await makeCache(
    { policy: { type: "duo", budget: 8, sinks: 2, recent: 2, scores: SCORES } },
    shape,
  );
  drive(cache, shape, 20, [3, 1, 4], 3);
  const sorted = (l: number, h: number) => [...cache.retainedPositions(l, h)].sort((a, b) => a - b);
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  assert.deepEqual(sorted(0, 0), [0, 1, ...range(10, 20)]); // retrieval: sinks + newest 10
  assert.deepEqual(sorted(0, 1), [0, 1, 18, 19]); // streaming
  assert.deepEqual(sorted(1, 0), [0, 1, 18, 19]);
  assert.deepEqual(sorted(1, 1), [0, 1, ...range(10, 20)]);
  let total = 0;
  for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) total += sorted(l, h).length;
  assert.ok(total <= 4 * 8);
});

test("head profile: mass outside sinks + recent window, hand-made heads (a sink head scores ~0, a uniform head (q-2)/(q+1))", async () => {
  // One layer, two KV heads (one query head each), head_dim 2. Token 0's key is (20, 0), the
  // others (0, 0). Head 0's queries are (1, 0): nearly all mass on token 0 (a sink). Head 1's
  // queries are (0, 0): uniform over the q + 1 visible tokens, of which q - 2 lie outside
  // sinks {0} and the recent window {q - 1, q} (sinks 1, recent 2).
  const T = 12;
  const shape = { nLayers: 1, nHeads: 2, nKvHeads: 2, headDim: 2, maxTokens: T };
  const fake = {
    kvShape: (n: number) => ({ ...shape, maxTokens: n }),
    async forward(
      ids: ArrayLike<number>,
      pos: Int32Array,
      cache: import("../../../src/cache/types.ts").KVCache,
    ) {
      const n = pos.length;
      const k = new Float32Array(2 * n * 2);
      for (let i = 0; i < n; i++) if (pos[i] === 0) for (let h = 0; h < 2; h++) k[(h * n + i) * 2] = 20;
      const q = new Float32Array(2 * n * 2);
      for (let i = 0; i < n; i++) q[i * 2] = 1; // head 0
      await cache.append(0, k, new Float32Array(k.length), pos);
      await cache.attend(0, q, pos, new Float32Array(q.length));
      return new Float32Array(ids.length);
    },
  } as unknown as import("../../../src/model/llama.ts").LanguageModel;
  const p = await profileHeads(
    fake,
    Array.from({ length: T }, (_, i) => i),
    { sinks: 1, recent: 2, chunk: 5 },
  );
  let want = 0;
  let sink = 0;
  const e = Math.exp(20 / Math.sqrt(2)); // token 0's weight for head 0 (logit 20 x 1 / sqrt(2))
  for (let q = 3; q < T; q++) {
    want += (q - 2) / (q + 1);
    sink += (q - 2) / (e + q);
  }
  want /= T - 3;
  sink /= T - 3;
  assert.equal(p.rows, T - 3);
  assert.ok(
    sink < 1e-5 && Math.abs(p.scores[0]![0]! - sink) < 1e-9,
    `sink head ${p.scores[0]![0]} vs ${sink}`,
  );
  assert.ok(Math.abs(p.scores[0]![1]! - want) < 1e-12, `uniform head ${p.scores[0]![1]} vs ${want}`);
});
