/** Randomized Hadamard rotation: orthogonal (dot products and norms kept), invertible, seeded. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { HadamardRotation } from "../../src/quant/hadamard.ts";
import { makeCache, rng, smallShape } from "../cache/policies/drive.ts";

test("rotation keeps dot products (attention scores) and inverts exactly up to f32 rounding", () => {
  fc.assert(
    fc.property(fc.constantFrom(1, 2, 4, 8, 16, 64, 128), fc.integer(), (n, seed) => {
      const rot = new HadamardRotation(n, seed);
      const r = rng(seed);
      const a = Float32Array.from({ length: n }, () => r(10));
      const b = Float32Array.from({ length: n }, () => r(10));
      let dot = 0;
      let na = 0;
      for (let i = 0; i < n; i++) {
        dot += a[i]! * b[i]!;
        na += a[i]! * a[i]!;
      }
      const ra = Float32Array.from(a);
      const rb = Float32Array.from(b);
      rot.apply(ra, 1);
      rot.apply(rb, 1);
      let rdot = 0;
      for (let i = 0; i < n; i++) rdot += ra[i]! * rb[i]!;
      const tol = 1e-5 * n * 100;
      assert.ok(Math.abs(rdot - dot) <= tol, `dot ${rdot} vs ${dot}`);
      rot.invert(ra, 1);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(ra[i]! - a[i]!) <= 1e-5 * Math.sqrt(na) + 1e-6);
    }),
  );
});

test("rotation spreads a single outlier channel over every channel", () => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const rot = new HadamardRotation(16, seed);
      const y = new Float32Array(16);
      y[3] = 64;
      rot.apply(y, 1);
      for (const e of y) assert.ok(Math.abs(Math.abs(e) - 16) < 1e-4, `|${e}| should be 64/sqrt(16)`);
    }),
    { numRuns: 10 },
  );
  // Different seeds give different signs (the rotation is random, not fixed); same seed, same.
  const s1 = new HadamardRotation(64, 1).signs;
  const s2 = new HadamardRotation(64, 2).signs;
  assert.notDeepEqual(s1, s2);
  assert.deepEqual(new HadamardRotation(64, 1).signs, s1);
});

test("rotation needs a power-of-two head size", () => {
  assert.throws(() => new HadamardRotation(12, 0), /power of two/);
});

test("a rotated f32 cache gives the same attention as an unrotated one (scores invariant)", async () => {
  const shape = smallShape();
  const plain = await makeCache("f32", shape);
  const rotated = await makeCache({ preset: "int4-hadamard", codec: "f32" }, shape);
  const r = rng(5);
  const d = shape.headDim;
  for (let t = 0; t < 12; t++) {
    const k = Float32Array.from({ length: shape.nKvHeads * d }, () => r(3));
    const v = Float32Array.from({ length: shape.nKvHeads * d }, () => r(1));
    const q = Float32Array.from({ length: shape.nHeads * d }, () => r(3));
    const o1 = new Float32Array(q.length);
    const o2 = new Float32Array(q.length);
    for (const [c, o] of [
      [plain, o1],
      [rotated, o2],
    ] as const) {
      c.append(0, k, v, Int32Array.of(t));
      c.attend(0, q, Int32Array.of(t), o);
    }
    for (let i = 0; i < q.length; i++)
      assert.ok(Math.abs(o1[i]! - o2[i]!) < 1e-5, `t=${t} [${i}] ${o1[i]} vs ${o2[i]}`);
  }
});

test("on keys with an outlier channel, rotation lowers int4 attention error", async () => {
  const shape = smallShape({ headDim: 32, nLayers: 1 });
  const d = shape.headDim;
  const exact = await makeCache("f32", shape);
  const plain = await makeCache({ codec: { type: "int4", group: 32 } }, shape);
  const rotated = await makeCache({ preset: "int4-hadamard" }, shape);
  const r = rng(9);
  const err = [0, 0];
  for (let t = 0; t < 64; t++) {
    const k = Float32Array.from({ length: shape.nKvHeads * d }, (_, i) => (i % d === 5 ? 40 + r(2) : r(1)));
    const v = Float32Array.from({ length: shape.nKvHeads * d }, () => r(1));
    const q = Float32Array.from({ length: shape.nHeads * d }, () => r(1));
    const outs = [exact, plain, rotated].map((c) => {
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
  assert.ok(err[1]! < err[0]!, `rotated error ${err[1]} should be below plain ${err[0]}`);
});
