/**
 * Channel-axis keys in the cache (presets kivi2/kivi4): the f32 residual, group flushing,
 * exact memory by part, groups freed by eviction, and composition with policies.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { sideCodec } from "../../src/cache/spec.ts";
import { channelCodeBytes } from "../../src/quant/channel.ts";
import { drive, makeCache, rng, smallShape } from "../cache/policies/drive.ts";

test("kivi2: keys wait in an f32 residual of 128 tokens, then 4 groups of 32 are quantized; memory by part", async () => {
  const shape = smallShape({ nLayers: 1 });
  const d = shape.headDim;
  const cache = await makeCache("kivi2", shape);
  const vL = sideCodec(cache.spec.values).layout(d);
  const cb = channelCodeBytes(2, d);
  const heads = shape.nKvHeads;
  const chunks = [1, 1, 30, 60, 40, 3, 100, 5];
  let t = 0;
  for (const n of chunks) {
    drive(cache, shape, n, [n], t + 1, undefined, t);
    t += n;
    // Keys: whole groups flush once 128 have gathered. Values: the newest 128 stay f32 (KIVI).
    const m = cache.memory();
    const kRes = residualAfter(chunks, t);
    const vRes = Math.min(t, 128);
    const quant = t - kRes;
    assert.equal(m.residual, heads * (kRes + vRes) * d * 4, `after ${t}: residual`);
    assert.equal(m.payload, heads * (quant * cb + (t - vRes) * vL.payloadBytes), `after ${t}: payload`);
    assert.equal(
      m.scales,
      heads * ((quant / 32) * d * 2 + (t - vRes) * 2 * vL.scalesPerRow),
      `after ${t}: scales`,
    );
    assert.equal(
      m.zeros,
      heads * ((quant / 32) * d * 2 + (t - vRes) * 2 * vL.zerosPerRow),
      `after ${t}: zeros`,
    );
    assert.equal(m.indices, 0, "policy full keeps slots in append order: group ids implicit");
    assert.equal(m.total, m.payload + m.scales + m.zeros + m.residual);
  }
});

/** Residual count after feeding chunks (whole groups of 32 flush once 128 have gathered). */
function residualAfter(chunks: number[], upTo: number): number {
  let res = 0;
  let t = 0;
  for (const n of chunks) {
    if (t >= upTo) break;
    res += n;
    t += n;
    if (res >= 128) res -= Math.floor(res / 32) * 32;
  }
  return res;
}

test("kivi2: residual keys are exact (f32): attention equals f32 until the first flush", async () => {
  const shape = smallShape({ nLayers: 1, nKvHeads: 1, nHeads: 1 });
  const d = shape.headDim;
  const cache = await makeCache({ preset: "kivi2", codec: { keys: "int2", values: "f32" } }, shape);
  const exact = await makeCache("f32", shape);
  const r = rng(3);
  for (let t = 0; t < 140; t++) {
    const k = Float32Array.from({ length: d }, () => r(2));
    const v = Float32Array.from({ length: d }, () => r(1));
    const q = Float32Array.from({ length: d }, () => r(1));
    const o1 = new Float32Array(d);
    const o2 = new Float32Array(d);
    cache.append(0, k, v, Int32Array.of(t));
    exact.append(0, k, v, Int32Array.of(t));
    cache.attend(0, q, Int32Array.of(t), o1);
    exact.attend(0, q, Int32Array.of(t), o2);
    // Before the first flush at 128 every key is in the f32 residual: identical attention.
    if (t < 127) assert.deepEqual(o1, o2, `t=${t}`);
  }
  // Keys: 12 tokens past the flush at 128; values: the newest 128.
  assert.equal(cache.memory().residual, (140 - 128 + 128) * d * 4);
});

test("kivi2 with an evicting policy frees code rows, residual rows and whole groups", async () => {
  const shape = smallShape({ nLayers: 1, maxTokens: 400 });
  const d = shape.headDim;
  // Values f32 so that every value byte is a row of the retained tokens: the rest is keys.
  const cache = await makeCache(
    { preset: "kivi2", codec: { keys: "int2", values: "f32" }, policy: { type: "window", budget: 40 } },
    shape,
  );
  drive(cache, shape, 400, [1, 7], 2);
  const m = cache.memory();
  const slots = m.tokenSlots;
  assert.equal(slots, 40 * shape.nKvHeads);
  // Window 40 < the value window 128: every retained value is in the f32 residual.
  const keyResidual = m.residual - slots * d * 4;
  assert.ok(keyResidual >= 0);
  const quant = m.payload / channelCodeBytes(2, d);
  assert.equal(keyResidual / (d * 4) + quant, slots, "each key is either a code row or a residual row");
  // At most two partly evicted groups of 32 per head can hold the quantized part of 40 tokens.
  assert.ok(m.scales <= shape.nKvHeads * 2 * d * 2, `live group scales ${m.scales}`);
  assert.equal(m.scales, m.zeros);
  assert.equal(m.indices, quant * 4, "group ids count once slots are reordered by eviction");
});

test("kivi2 beats per-token int2 for keys with outlier channels (attention error)", async () => {
  const shape = smallShape({ nLayers: 1, headDim: 32, maxTokens: 300 });
  const d = shape.headDim;
  const exact = await makeCache("f32", shape);
  const kivi = await makeCache({ preset: "kivi2", codec: { keys: "int2", values: "f32" } }, shape);
  const int2 = await makeCache({ codec: { keys: { type: "int2", group: 32 }, values: "f32" } }, shape);
  const r = rng(4);
  const err = [0, 0];
  for (let t = 0; t < 300; t++) {
    const k = Float32Array.from({ length: shape.nKvHeads * d }, (_, i) =>
      i % d === 2 ? 12 + r(1) : i % d === 9 ? -8 + r(1) : r(1),
    );
    const v = Float32Array.from({ length: shape.nKvHeads * d }, () => r(1));
    const q = Float32Array.from({ length: shape.nHeads * d }, () => r(1));
    const outs = [exact, kivi, int2].map((c) => {
      const o = new Float32Array(q.length);
      c.append(0, k, v, Int32Array.of(t));
      c.attend(0, q, Int32Array.of(t), o);
      return o;
    });
    for (let i = 0; i < q.length; i++) {
      err[0]! += (outs[1]![i]! - outs[0]![i]!) ** 2;
      err[1]! += (outs[2]![i]! - outs[0]![i]!) ** 2;
    }
  }
  assert.ok(err[0]! < err[1]!, `kivi2 error ${err[0]} should be below int2 per-token ${err[1]}`);
});

test("channel-axis keys need an integer key codec and cannot be tiered", async () => {
  await assert.rejects(
    makeCache({ preset: "kivi2", codec: { keys: "f16", values: "int2" } }, smallShape()),
    /integer key codec/,
  );
  await assert.rejects(
    makeCache({ preset: "kivi2", policy: { type: "tiered", budget: 8, recent: 4 } }, smallShape()),
    /tiered/,
  );
});

test("kivi2 and kivi2-prerope equal f32 attention while every key and value is in the f32 windows", async () => {
  const shape = smallShape({ nLayers: 1 });
  const exact = await makeCache("f32", shape);
  const kivi = await makeCache("kivi2", shape);
  const pre = await makeCache("kivi2-prerope", shape);
  assert.equal(pre.storesPreRopeKeys, true);
  const outs: Float32Array[] = [];
  drive(exact, shape, 120, [1, 5], 12, (s) => outs.push(s.out));
  for (const c of [kivi, pre]) {
    let i = 0;
    drive(c, shape, 120, [1, 5], 12, (s) => {
      const want = outs[i++]!;
      // kivi2 is bit-identical; pre-RoPE storage un-rotates and re-rotates keys (f32 rounding).
      for (let j = 0; j < want.length; j++)
        assert.ok(
          Math.abs(s.out[j]! - want[j]!) <= (c === kivi ? 0 : 1e-5),
          `${c.spec.name}: ${s.out[j]} vs ${want[j]}`,
        );
    });
  }
  const shapeNoRope = smallShape();
  delete shapeNoRope.rope;
  await assert.rejects(
    makeCache("kivi2-prerope", shapeNoRope),
    /cache\.keys\.preRope: kivi2-prerope: preRope stores keys before RoPE/,
  );
});
