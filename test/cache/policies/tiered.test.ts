/**
 * tiered: the newest `recent` tokens in the cache codec, older ones re-encoded once (from the
 * higher-precision copy) into the cheaper codec, the oldest evicted past the budget; memory
 * counts each tier at its own row size.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeCodec } from "../../../src/quant/registry.ts";
import { allocRows, rowBytes } from "../../../src/quant/types.ts";
import { drive, makeCache, rng, smallShape } from "./drive.ts";

test("tiered keeps R newest hot, B - R cold, and counts each tier at its own row size", async () => {
  const shape = smallShape();
  const d = shape.headDim;
  const R = 4;
  const B = 10;
  const cache = await makeCache(
    { codec: "f16", policy: { type: "tiered", recent: R, budget: B, codec: "int4" } },
    shape,
  );
  let seen = 0;
  drive(cache, shape, 30, [1, 3, 2], 8, (s) => {
    if (s.layer === 0) seen += s.positions.length;
    const kept = [...cache.retainedPositions(s.layer, 0)];
    const want = Array.from({ length: Math.min(seen, B) }, (_, i) => seen - Math.min(seen, B) + i);
    assert.deepEqual(kept, want, "FIFO across both tiers");
  });
  const hot = rowBytes(makeCodec("f16").layout(d)) * 2;
  const cold = rowBytes(makeCodec("int4").layout(d)) * 2;
  const heads = shape.nLayers * shape.nKvHeads;
  const m = cache.memory();
  assert.equal(m.tokenSlots, heads * B);
  assert.equal(m.total, heads * (R * hot + (B - R) * cold), "positions are implicit in both FIFO tiers");
  const st = cache.stats();
  assert.equal(st.demoted, heads * (30 - R));
  assert.equal(st.evicted, heads * (30 - B));
});

test("tiered attention equals naive attention over hot f16 rows and cold rows re-encoded from the f16 copy", async () => {
  const shape = smallShape({ nLayers: 1, nHeads: 1, nKvHeads: 1 });
  const d = shape.headDim;
  const R = 3;
  const B = 7;
  const cache = await makeCache(
    { codec: "f16", policy: { type: "tiered", recent: R, budget: B, codec: "int2" } },
    shape,
  );
  const f16 = makeCodec("f16");
  const int2 = makeCodec("int2");
  // Round trips the test does itself: through f16, then (when cold) from that f16 copy into int2.
  const through = (codec: typeof f16, x: Float32Array) => {
    const rows = allocRows(codec.layout(d), 1);
    codec.encode(x, 1, d, rows, 0);
    const y = new Float32Array(d);
    codec.decode(rows, 0, 1, d, y);
    return y;
  };
  const r = rng(21);
  const K: Float32Array[] = [];
  const V: Float32Array[] = [];
  for (let t = 0; t < 16; t++) {
    const k = Float32Array.from({ length: d }, () => r(2));
    const v = Float32Array.from({ length: d }, () => r(1));
    K.push(k);
    V.push(v);
    const q = Float32Array.from({ length: d }, () => r(2));
    const out = new Float32Array(d);
    cache.append(0, k, v, Int32Array.of(t));
    cache.attend(0, q, Int32Array.of(t), out);
    // At this attend (before its tier step): the B tokens kept after the previous step plus the
    // new token t; the hot ones are the newest R of the previous step, plus t.
    const first = Math.max(0, t - B);
    const keys: Float32Array[] = [];
    const vals: Float32Array[] = [];
    for (let p = first; p <= t; p++) {
      const isHot = p > t - 1 - R; // hot after the previous step: newest R of 0..t-1, plus t
      keys.push(isHot ? through(f16, K[p]!) : through(int2, through(f16, K[p]!)));
      vals.push(isHot ? through(f16, V[p]!) : through(int2, through(f16, V[p]!)));
    }
    const scores = keys.map((k) => k.reduce((s, x, i) => s + x * q[i]!, 0) / Math.sqrt(d));
    const mx = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - mx));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let i = 0; i < d; i++) {
      const want = vals.reduce((s, v, j) => s + (e[j]! / sum) * v[i]!, 0);
      assert.ok(Math.abs(out[i]! - want) < 1e-5, `t=${t} [${i}] ${out[i]} vs ${want}`);
    }
  }
});
