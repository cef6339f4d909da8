/**
 * Randomized Hadamard rotation: orthogonal (dot products and norms kept), invertible, seeded, any
 * head size; as a cache option on keys, values or both, invariant with f32 storage and helpful
 * to int4 on data with an outlier channel.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { CacheSpecInput, KVShape } from "../../src/cache/types.ts";
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

test("a head size that is not a power of two rotates in power-of-two blocks: orthogonal, invertible", () => {
  for (const n of [3, 5, 12, 65, 72, 96]) {
    const rot = new HadamardRotation(n, 7);
    // Rotating the identity gives R^T's rows; R R^T = I checks orthogonality column by column.
    const m = new Float32Array(n * n);
    for (let i = 0; i < n; i++) m[i * n + i] = 1;
    rot.apply(m, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let c = 0; c < n; c++) dot += m[i * n + c]! * m[j * n + c]!;
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-5, `n=${n} (${i},${j}) ${dot}`);
      }
    rot.invert(m, n);
    for (let i = 0; i < n * n; i++)
      assert.ok(Math.abs(m[i]! - (i % (n + 1) === 0 ? 1 : 0)) < 1e-5, `n=${n} inverse at ${i}`);
  }
  // 96 = 64 + 32: a channel of the first block spreads over 64 channels, not into the second.
  const y = new Float32Array(96);
  y[3] = 8;
  new HadamardRotation(96, 1).apply(y, 1);
  for (let i = 0; i < 96; i++)
    assert.ok(Math.abs(Math.abs(y[i]!) - (i < 64 ? 1 : 0)) < 1e-6, `[${i}] ${y[i]}`);
});

/** Outputs of caches fed the same stream: (cache index) -> (nHeads * headDim) per step, flattened. */
async function outputsOf(
  specs: CacheSpecInput[],
  shape: KVShape,
  data: (t: number) => StepInput,
  steps: number,
) {
  const caches = await Promise.all(specs.map((s) => makeCache(s, shape)));
  const outs: number[][] = specs.map(() => []);
  for (let t = 0; t < steps; t++) {
    const { k, v, q } = data(t);
    for (let c = 0; c < caches.length; c++) {
      const o = new Float32Array(q.length);
      caches[c]!.append(0, k, v, Int32Array.of(t));
      caches[c]!.attend(0, q, Int32Array.of(t), o);
      outs[c]!.push(...o);
    }
  }
  return outs;
}

interface StepInput {
  k: Float32Array;
  v: Float32Array;
  q: Float32Array;
}

test("rotation with f32 storage changes attention only at float rounding (keys, values, both)", async () => {
  for (const headDim of [8, 12, 64]) {
    const shape = smallShape({ headDim });
    const d = headDim;
    const r = rng(5 + headDim);
    const data = (): StepInput => ({
      k: Float32Array.from({ length: shape.nKvHeads * d }, () => r(3)),
      v: Float32Array.from({ length: shape.nKvHeads * d }, () => r(1)),
      q: Float32Array.from({ length: shape.nHeads * d }, () => r(3)),
    });
    const rot = { type: "f32", rotation: "hadamard" } as const;
    const [plain, ...rotated] = await outputsOf(
      [
        "f32",
        { codec: { keys: rot, values: "f32" } },
        { codec: { keys: "f32", values: rot } },
        { codec: rot },
      ],
      shape,
      data,
      12,
    );
    for (const [w, o] of rotated.entries())
      for (let i = 0; i < o.length; i++)
        // Values lie in [-1, 1]: each f32 rotation costs a few ulps of 1 per element.
        assert.ok(Math.abs(o[i]! - plain![i]!) < 2e-6, `d=${d} spec ${w} [${i}] ${o[i]} vs ${plain![i]}`);
  }
});

/** Squared attention error against f32 of int4 without and with rotation on `side`. */
async function int4Error(side: "keys" | "values", headDim: number) {
  const shape = smallShape({ headDim, nLayers: 1 });
  const d = headDim;
  const r = rng(9);
  // One outlier channel (5) on the side under test, as LLM keys and some values have.
  const row = (n: number, outlier: boolean) =>
    Float32Array.from({ length: n * d }, (_, i) => (outlier && i % d === 5 ? 40 + r(2) : r(1)));
  const data = (): StepInput => ({
    k: row(shape.nKvHeads, side === "keys"),
    v: row(shape.nKvHeads, side === "values"),
    q: row(shape.nHeads, false),
  });
  const int4 = { type: "int4", group: 32 } as const;
  const [exact, plain, rotated] = await outputsOf(
    [
      "f32",
      { codec: int4 },
      { codec: { keys: int4, values: int4, [side]: { ...int4, rotation: "hadamard" } } },
    ],
    shape,
    data,
    64,
  );
  const err = [0, 0];
  for (let i = 0; i < exact!.length; i++) {
    err[0]! += (plain![i]! - exact![i]!) ** 2;
    err[1]! += (rotated![i]! - exact![i]!) ** 2;
  }
  return err;
}

for (const side of ["keys", "values"] as const)
  test(`on ${side} with an outlier channel, rotation lowers int4 attention error`, async () => {
    for (const headDim of [32, 64]) {
      const [plain, rotated] = await int4Error(side, headDim);
      // An outlier of 40 next to entries in [-1, 1] puts them all in 1-2 of int4's 16 levels;
      // rotated, the group's range shrinks about sqrt(d) times: expect at least 4x less error.
      assert.ok(rotated! * 4 < plain!, `d=${headDim}: rotated error ${rotated} vs plain ${plain}`);
    }
  });
