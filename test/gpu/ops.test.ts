/**
 * Forward ops and the standalone attend op on the GPU against the `ref` executor, on small
 * odd shapes. Tolerances are named and relative to the magnitudes involved: the GPU sums in f32
 * (ref: f64 accumulators in attend, f32 elsewhere via JS doubles), and WGSL's exp is accurate
 * to a few ulps.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { refAttend, refMatmul, refRmsnorm, refRope, refSwiglu } from "../../src/kernels/ref.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows } from "../../src/quant/types.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

/** |gpu - ref| <= OP_TOL * (1 + |ref|): f32 summation over <= a few hundred terms of O(1) values. */
const OP_TOL = 2e-5;
/** Attention: as in kv-cache.test.ts. */
const ATTN_TOL = 1e-4;

function close(got: Float32Array, want: Float32Array, tol: number, what: string) {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++)
    assert.ok(
      Math.abs(got[i]! - want[i]!) <= tol * (1 + Math.abs(want[i]!)),
      `${what}[${i}]: gpu ${got[i]} ref ${want[i]}`,
    );
}

const rand = (r: () => number, n: number, s = 1) => new Float32Array(n).map(() => (r() * 2 - 1) * s);

test("matmul with and without bias, odd sizes", { skip: env.skip }, async () => {
  const r = rng(1);
  for (const [n, dIn, dOut, bias] of [
    [3, 37, 29, true],
    [1, 64, 130, false],
    [5, 8, 3, true],
  ] as const) {
    const x = rand(r, n * dIn);
    const w = rand(r, dOut * dIn);
    const b = bias ? rand(r, dOut) : undefined;
    const want = new Float32Array(n * dOut);
    const got = new Float32Array(n * dOut);
    refMatmul(want, x, w, n, dIn, dOut, b);
    await env.ops!.matmul(got, x, w, n, dIn, dOut, b);
    close(got, want, OP_TOL, `matmul ${n}x${dIn}x${dOut}`);
  }
});

test("rmsnorm", { skip: env.skip }, async () => {
  const r = rng(2);
  const n = 3;
  const dim = 77;
  const x = rand(r, n * dim, 3);
  const w = rand(r, dim);
  const want = new Float32Array(n * dim);
  const got = new Float32Array(n * dim);
  refRmsnorm(want, x, w, n, dim, 1e-5);
  await env.ops!.rmsnorm(got, x, w, n, dim, 1e-5);
  close(got, want, OP_TOL, "rmsnorm");
});

test("rope rotate-half at large positions (host cos/sin table)", { skip: env.skip }, async () => {
  const r = rng(3);
  const n = 4;
  const nHeads = 3;
  const headDim = 16;
  const pos = Int32Array.of(0, 7, 511, 4000);
  const inv = new Float32Array(headDim / 2).map((_, i) => 1 / 10000 ** ((2 * i) / headDim));
  const want = rand(r, n * nHeads * headDim);
  const got = want.slice();
  refRope(want, pos, n, nHeads, headDim, inv);
  await env.ops!.rope(got, pos, n, nHeads, headDim, inv);
  close(got, want, OP_TOL, "rope");
});

test("swiglu and softmax", { skip: env.skip }, async () => {
  const r = rng(4);
  const n = 200;
  const g = rand(r, n, 6);
  const u = rand(r, n);
  const want = new Float32Array(n);
  const got = new Float32Array(n);
  refSwiglu(want, g, u, n);
  await env.ops!.swiglu(got, g, u, n);
  close(got, want, OP_TOL, "swiglu");
  const rows = 3;
  const dim = 101;
  const x = rand(r, rows * dim, 10);
  const sm = x.slice();
  await env.ops!.softmax(sm, rows, dim);
  for (let t = 0; t < rows; t++) {
    let mx = -Infinity;
    for (let i = 0; i < dim; i++) mx = Math.max(mx, x[t * dim + i]!);
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += Math.exp(x[t * dim + i]! - mx);
    const want = new Float32Array(dim).map((_, i) => Math.exp(x[t * dim + i]! - mx) / sum);
    close(sm.subarray(t * dim, (t + 1) * dim), want, OP_TOL, `softmax row ${t}`);
  }
});

for (const [kName, vName] of [
  ["int4", "int8"],
  ["f16", "int2"],
] as const) {
  test(`attend op (K ${kName}, V ${vName}) with probabilities, causal mask, a row seeing nothing`, {
    skip: env.skip,
  }, async () => {
    const r = rng(5);
    const d = 32;
    const nSlots = 90; // two tiles
    const nRows = 4;
    const kCodec = makeCodec(kName);
    const vCodec = makeCodec(vName);
    const k = allocRows(kCodec.layout(d), nSlots);
    const v = allocRows(vCodec.layout(d), nSlots);
    kCodec.encode(rand(r, nSlots * d), nSlots, d, k, 0);
    vCodec.encode(rand(r, nSlots * d), nSlots, d, v, 0);
    // Slots in shuffled position order (slot order carries no meaning).
    const slotPos = Int32Array.from({ length: nSlots }, (_, j) => (j * 37) % nSlots);
    const base = {
      kCodec,
      vCodec,
      headDim: d,
      q: rand(r, nRows * d, 2),
      qPos: Int32Array.of(89, 45, 0, -1),
      nRows,
      k,
      v,
      slotPos,
      nSlots,
      scale: 1 / Math.sqrt(d),
    };
    const want = { out: new Float32Array(nRows * d), probs: new Float32Array(nRows * nSlots) };
    const got = { out: new Float32Array(nRows * d), probs: new Float32Array(nRows * nSlots) };
    refAttend({ ...base, ...want });
    await env.ops!.attend({ ...base, ...got });
    close(got.out, want.out, ATTN_TOL, "out");
    close(got.probs, want.probs, ATTN_TOL, "probs");
    for (let i = 3 * d; i < 4 * d; i++)
      assert.equal(got.out[i], 0, "a row with no visible slot outputs zeros");
  });
}
