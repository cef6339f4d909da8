/**
 * The GPU forward's family kernels (src/gpu/kernels/forward.ts) against float64 formulas written
 * here from their definitions: LayerNorm with bias (PyTorch nn.LayerNorm, biased variance),
 * GELU's tanh approximation (HF gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))),
 * GeGLU, scaling and soft-capping (cap * tanh(x / cap)), including inputs large enough that a
 * naive tanh overflows.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Kernel } from "../../src/gpu/kernel.ts";
import * as fwd from "../../src/gpu/kernels/forward.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

/** Run one dispatch over buffers made from `inputs` (a number: an empty buffer of that many floats). */
async function run(
  make: () => Kernel,
  params: ArrayBuffer,
  inputs: (Float32Array | number)[],
  groups: [number, number],
  outIndex: number,
): Promise<Float32Array> {
  const ops = env.ops!;
  const rt = ops.rt;
  const k = ops.kernel(make, make.name);
  const bufs = inputs.map((a, i) => {
    const bytes = 4 * Math.max(4, typeof a === "number" ? a : a.length);
    const b = rt.buffer(bytes, `arg ${i}`);
    if (typeof a !== "number") rt.upload(b, a);
    return b;
  });
  rt.run([{ kernel: k, params, buffers: bufs, groups }]);
  const len = inputs[outIndex]!;
  const [o] = await rt.read([
    { buf: bufs[outIndex]!, bytes: 4 * (typeof len === "number" ? len : len.length) },
  ]);
  for (const b of bufs) b.destroy();
  return new Float32Array(o!);
}

const randn = (n: number, seed: number, scale = 1) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
};
const geluNew = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

test("layernorm kernel = float64 LayerNorm with weight and bias (rows with a large mean)", {
  skip: env.skip,
}, async () => {
  const n = 3;
  const dim = 200;
  const x = randn(n * dim, 1, 2);
  for (let i = 0; i < dim; i++) x[dim + i] = x[dim + i]! + 30; // row 1: mean 30, where a one-pass variance loses digits
  const w = randn(dim, 2);
  const b = randn(dim, 3);
  const eps = 1e-5;
  const got = await run(fwd.layernormKernel, fwd.layernormParams(n, dim, eps), [x, w, b, n * dim], [n, 1], 3);
  let worst = 0;
  for (let r = 0; r < n; r++) {
    const row = Array.from(x.subarray(r * dim, (r + 1) * dim));
    const mean = row.reduce((a, v) => a + v, 0) / dim;
    const vr = row.reduce((a, v) => a + (v - mean) ** 2, 0) / dim;
    for (let i = 0; i < dim; i++) {
      const want = ((row[i]! - mean) / Math.sqrt(vr + eps)) * w[i]! + b[i]!;
      worst = Math.max(worst, Math.abs(got[r * dim + i]! - want));
    }
  }
  assert.ok(worst < 1e-5, `max |gpu - f64| ${worst}`);
});

test("elementwise GELU / GeGLU / SCALE / SOFTCAP = float64 formulas, finite for large inputs", {
  skip: env.skip,
}, async () => {
  const n = 300;
  const g = randn(n, 4, 6);
  g[0] = 80; // x^3 ~ 5e5 inside tanh: a tanh built from exp(2x) would overflow to NaN
  g[1] = -80;
  g[2] = 1e-4;
  const u = randn(n, 5);
  const close = (got: Float32Array, want: (i: number) => number, what: string, tol: number) => {
    for (let i = 0; i < n; i++) {
      const e = want(i);
      assert.ok(Number.isFinite(got[i]!), `${what}[${i}] = ${got[i]}`);
      assert.ok(Math.abs(got[i]! - e) <= tol * (1 + Math.abs(e)), `${what}[${i}]: gpu ${got[i]} f64 ${e}`);
    }
  };
  const gelu = await run(
    fwd.elementwiseKernel,
    fwd.elementwiseParams(n, fwd.GELU),
    [g, u, n],
    fwd.grid(n),
    2,
  );
  close(gelu, (i) => geluNew(g[i]!), "gelu", 1e-6);
  const geglu = await run(
    fwd.elementwiseKernel,
    fwd.elementwiseParams(n, fwd.GEGLU),
    [g, u, n],
    fwd.grid(n),
    2,
  );
  close(geglu, (i) => geluNew(g[i]!) * u[i]!, "geglu", 1e-6);
  const scaled = await run(
    fwd.elementwiseKernel,
    fwd.elementwiseParams(n, fwd.SCALE, 0.375),
    [u, u, g],
    fwd.grid(n),
    2,
  );
  close(scaled, (i) => g[i]! * 0.375, "scale", 1e-7);
  const capped = await run(
    fwd.elementwiseKernel,
    fwd.elementwiseParams(n, fwd.SOFTCAP, 5),
    [u, u, g],
    fwd.grid(n),
    2,
  );
  close(capped, (i) => 5 * Math.tanh(g[i]! / 5), "softcap", 1e-6);
  // The cap binds: |out| < cap for every input, and 80 maps to ~cap.
  assert.ok(capped.every((v) => Math.abs(v) <= 5));
  assert.ok(Math.abs(capped[0]! - 5) < 1e-5);
});
