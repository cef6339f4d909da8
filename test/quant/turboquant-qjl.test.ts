/**
 * TurboQuant_prod (src/quant/turboquant-qjl.ts; arXiv:2504.19874 Algorithm 2 with QJL,
 * arXiv:2406.03482): layout and bits from the definition, the round-trip bound, and the reason
 * it exists: inner products through it are unbiased over random rows where the MSE code alone
 * shrinks them (checked on a fixed query against many rotated Gaussian keys).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { f16ToF32 } from "../../src/quant/half.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows } from "../../src/quant/types.ts";
import { mulberry32 } from "../../src/rng.ts";

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

test("layout: (b-1)-bit codes, d sign bits, two f16 norms (turbo3-qjl at d=64: 3.5 bits)", () => {
  for (const [name, b] of [
    ["turbo3-qjl", 3],
    ["turbo4-qjl", 4],
  ] as const)
    for (const d of [1, 7, 64, 65, 128]) {
      const L = makeCodec(name).layout(d);
      assert.equal(L.payloadBytes, Math.ceil((d * (b - 1)) / 8) + Math.ceil(d / 8), `${name} d=${d}`);
      assert.equal(L.scalesPerRow, 2);
      assert.equal(L.zerosPerRow, 0);
    }
  const L = makeCodec("turbo3-qjl").layout(64);
  assert.equal(((L.payloadBytes + 2 * L.scalesPerRow) * 8) / 64, 3.5);
});

test("round trip within errorBound; the residual norm is the MSE code's residual", () => {
  const d = 64;
  const n = 20;
  const rand = mulberry32(5);
  const x = Float32Array.from({ length: n * d }, () => gaussian(rand));
  for (const [name, mseName] of [
    ["turbo3-qjl", "turbo2"],
    ["turbo4-qjl", "turbo3"],
  ] as const) {
    const c = makeCodec(name);
    const rows = allocRows(c.layout(d), n);
    c.encode(x, n, d, rows, 0);
    const dec = new Float32Array(n * d);
    c.decode(rows, 0, n, d, dec);
    const m = makeCodec(mseName);
    const mr = allocRows(m.layout(d), n);
    m.encode(x, n, d, mr, 0);
    const md = new Float32Array(n * d);
    m.decode(mr, 0, n, d, md);
    for (let r = 0; r < n; r++) {
      let g = 0;
      for (let i = 0; i < d; i++) g += (x[r * d + i]! - md[r * d + i]!) ** 2;
      const gamma = f16ToF32(rows.scales[r * 2 + 1]!);
      assert.ok(Math.abs(gamma - Math.sqrt(g)) <= Math.sqrt(g) * 2 ** -10, `${name} row ${r}: γ ${gamma}`);
      for (let i = 0; i < d; i++) {
        const err = Math.abs(dec[r * d + i]! - x[r * d + i]!);
        assert.ok(err <= c.errorBound(x[r * d + i]!, rows, r, i, d), `${name} [${r},${i}] error ${err}`);
      }
    }
  }
});

test("scores are unbiased through QJL, shrunk through the MSE code alone", () => {
  const d = 64;
  const n = 3000;
  const rand = mulberry32(9);
  // Keys and the query as a rotated cache sees them: Gaussian rows; q correlated with every key
  // (k = 0.6 q + noise) so that <q, k> is large and a multiplicative bias shows.
  const q = Float32Array.from({ length: d }, () => gaussian(rand));
  const k = new Float32Array(n * d);
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) k[r * d + i] = 0.6 * q[i]! + gaussian(rand);
  const meanRatio = (name: string) => {
    const c = makeCodec(name as "turbo2");
    const rows = allocRows(c.layout(d), n);
    c.encode(k, n, d, rows, 0);
    const dec = new Float32Array(n * d);
    c.decode(rows, 0, n, d, dec);
    let got = 0;
    let want = 0;
    for (let r = 0; r < n; r++)
      for (let i = 0; i < d; i++) {
        got += q[i]! * dec[r * d + i]!;
        want += q[i]! * k[r * d + i]!;
      }
    return got / want;
  };
  // The 2-bit MSE code keeps (1 - D_mse) ≈ 0.88 of an inner product on average (paper section
  // 3.2: the bias of Q_mse is 2/π at 1 bit and shrinks with b); QJL removes it.
  const mse = meanRatio("turbo2");
  const prod = meanRatio("turbo3-qjl");
  assert.ok(mse < 0.95, `MSE code should shrink scores: ratio ${mse}`);
  assert.ok(Math.abs(prod - 1) < 0.02, `QJL scores should be unbiased: ratio ${prod}`);
});
