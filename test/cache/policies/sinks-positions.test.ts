/**
 * sinks, both position variants, against a naive attention written here from the definition:
 * - positions: absolute: retained keys keep their RoPE at their original positions;
 * - positions: cache (StreamingLLM): keys are stored before RoPE and rotated at their rank
 *   among retained tokens, the query at its own rank.
 * The model hands the cache post-RoPE keys and queries (the KVCache contract); the cache undoes
 * and redoes RoPE itself.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { refRope } from "../../../src/kernels/ref.ts";
import { drive, makeCache, rng, smallShape } from "./drive.ts";

function naiveAttend(
  q: Float32Array, // (headDim) post-RoPE at qRopePos
  keys: Float32Array[], // pre-RoPE
  keyRopePos: number[],
  values: Float32Array[],
  invFreq: Float32Array,
  d: number,
): Float32Array {
  const scores = keys.map((k, j) => {
    const kr = Float32Array.from(k);
    refRope(kr, Int32Array.of(keyRopePos[j]!), 1, 1, d, invFreq);
    let dot = 0;
    for (let i = 0; i < d; i++) dot += q[i]! * kr[i]!;
    return dot / Math.sqrt(d);
  });
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const sum = e.reduce((a, b) => a + b, 0);
  const out = new Float32Array(d);
  for (let j = 0; j < keys.length; j++) for (let i = 0; i < d; i++) out[i]! += (e[j]! / sum) * values[j]![i]!;
  return out;
}

for (const variant of ["absolute", "cache"] as const) {
  test(`sinks positions: ${variant} matches naive attention with ${variant} RoPE positions`, async () => {
    const shape = smallShape({ nLayers: 1, nHeads: 2, nKvHeads: 1 });
    const d = shape.headDim;
    const invFreq = shape.rope!.invFreq;
    const S = 2;
    const B = 6;
    const cache = await makeCache(
      { policy: { type: "sinks", sinks: S, budget: B, positions: variant } },
      shape,
    );
    assert.equal(cache.storesPreRopeKeys, variant === "cache");
    const r = rng(11);
    const pre: Float32Array[] = [];
    const vals: Float32Array[] = [];
    for (let t = 0; t < 20; t++) {
      const kPre = Float32Array.from({ length: d }, () => r(2));
      const v = Float32Array.from({ length: d }, () => r(1));
      pre.push(kPre);
      vals.push(v);
      const kPost = Float32Array.from(kPre);
      refRope(kPost, Int32Array.of(t), 1, 1, d, invFreq);
      cache.append(0, kPost, v, Int32Array.of(t));
      const qPre = Float32Array.from({ length: 2 * d }, () => r(2));
      const qPost = Float32Array.from(qPre);
      refRope(qPost, Int32Array.of(t, t), 2, 1, d, invFreq);
      const out = new Float32Array(2 * d);
      // Retained before this attend: sinks + the newest B - S (eviction happens after attend).
      const kept = [...cache.retainedPositions(0, 0)];
      cache.attend(0, qPost, Int32Array.of(t), out);
      for (let h = 0; h < 2; h++) {
        let qh: Float32Array;
        let keyPos: number[];
        if (variant === "absolute") {
          qh = qPost.subarray(h * d, (h + 1) * d);
          keyPos = kept;
        } else {
          qh = qPre.slice(h * d, (h + 1) * d);
          refRope(qh, Int32Array.of(kept.length - 1), 1, 1, d, invFreq);
          keyPos = kept.map((_, i) => i);
        }
        const want = naiveAttend(
          qh,
          kept.map((p) => pre[p]!),
          keyPos,
          kept.map((p) => vals[p]!),
          invFreq,
          d,
        );
        const got = out.subarray(h * d, (h + 1) * d);
        for (let i = 0; i < d; i++)
          assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4, `t=${t} head ${h} [${i}]: ${got[i]} vs ${want[i]}`);
      }
      const after = [...cache.retainedPositions(0, 0)];
      const expect = t + 1 <= B ? kept : [...kept.slice(0, S), ...kept.slice(kept.length - (B - S))];
      assert.deepEqual(after, expect);
    }
    // The two variants really differ once tokens have been evicted (t >= B).
    assert.ok(cache.stats().evicted > 0);
  });
}

test("sinks positions: cache needs the RoPE frequencies, and says so", async () => {
  const shape = smallShape();
  delete shape.rope;
  await assert.rejects(
    makeCache({ policy: { type: "sinks", sinks: 2, budget: 6, positions: "cache" } }, shape),
    /shape\.rope/,
  );
});

test("sinks positions: cache composes with Hadamard rotation (rotation undone before RoPE)", async () => {
  const shape = smallShape();
  const policy = { type: "sinks", sinks: 2, budget: 7, positions: "cache" };
  const plain = await makeCache({ codec: "f32", policy }, shape);
  const rotated = await makeCache({ preset: "int4-hadamard", codec: "f32", policy }, shape);
  const outs: Float32Array[] = [];
  drive(plain, shape, 25, [1, 3], 6, (s) => outs.push(s.out));
  let i = 0;
  drive(rotated, shape, 25, [1, 3], 6, (s) => {
    const want = outs[i++]!;
    for (let j = 0; j < want.length; j++)
      assert.ok(Math.abs(s.out[j]! - want[j]!) < 1e-4, `${s.out[j]} vs ${want[j]}`);
  });
  assert.ok(rotated.stats().evicted > 0);
});

test("sinks: 0 is the window alone: same outputs and retained tokens as window at the same budget", async () => {
  const shape = smallShape();
  const a = await makeCache({ codec: "f32", policy: { type: "sinks", sinks: 0, budget: 12 } }, shape);
  const b = await makeCache({ codec: "f32", policy: { type: "window", budget: 12 } }, shape);
  const outsA: Float32Array[] = [];
  const outsB: Float32Array[] = [];
  drive(a, shape, 60, [5, 3], 11, (s) => outsA.push(s.out));
  drive(b, shape, 60, [5, 3], 11, (s) => outsB.push(s.out));
  assert.equal(outsA.length, outsB.length);
  for (let i = 0; i < outsA.length; i++) assert.deepEqual(outsA[i], outsB[i], `step ${i}`);
  assert.equal(a.memory().payload, b.memory().payload);
  // With one sink the first token is kept and the outputs differ.
  const c = await makeCache({ codec: "f32", policy: { type: "sinks", sinks: 1, budget: 12 } }, shape);
  const outsC: Float32Array[] = [];
  drive(c, shape, 60, [5, 3], 11, (s) => outsC.push(s.out));
  assert.notDeepEqual(outsC[outsC.length - 1], outsA[outsA.length - 1]);
});
