/** wasm matmul, rmsnorm, rope and swiglu equal the reference within named tolerances, odd sizes included. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import { refMatmul, refRmsnorm, refRope, refSwiglu } from "../../src/kernels/ref.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { firstMismatch, randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

const U = 2 ** -24; // f32 unit roundoff
/** f32 sums in 4 SIMD lanes: about dIn/4 + a few roundings of sum |x_i w_i| (ref sums in f64). */
const matmulTol = (dIn: number, absSum: number) => (dIn / 4 + 8) * 2 * U * absSum + 1e-30;
/** rmsnorm: the sum of squares in f32 lanes, then sqrt, divide and two multiplies. */
const rmsnormTol = (dim: number, ref: number) => (dim / 8 + 8) * 2 * U * Math.abs(ref) + 1e-30;
/** rope runs in f64 like the reference: only cos/sin implementations may differ by an ulp of f64. */
const ropeTol = (a: number, b: number) => 2 * U * (Math.abs(a) + Math.abs(b)) + 1e-30;
/** swiglu uses f32 exp: a few f32 ulps of the result. */
const swigluTol = (ref: number) => 8 * U * Math.abs(ref) + 1e-30;

let exec: WasmExecutor;
before(async () => {
  if (!wasmSkip) exec = await wasmExecutor();
});
after(() => exec?.dispose());

function arena(src: Float32Array, inArena: boolean): Float32Array {
  if (!inArena) return src;
  const a = exec.allocF32(src.length);
  a.set(src);
  return a;
}

function checkMatmul(
  n: number,
  dIn: number,
  dOut: number,
  seed: number,
  withBias: boolean,
  inArena: boolean,
) {
  const r = rng(seed);
  const x = randn(r, n * dIn);
  const w = randn(r, dOut * dIn, 0.1);
  const bias = withBias ? randn(r, dOut) : undefined;
  const ref = new Float32Array(n * dOut);
  refMatmul(ref, x, w, n, dIn, dOut, bias);
  const out = arena(new Float32Array(n * dOut).fill(Number.NaN), inArena);
  exec.matmul(out, arena(x, inArena), arena(w, inArena), n, dIn, dOut, bias && arena(bias, inArena));
  const bad = firstMismatch(ref, out, (k) => {
    const t = Math.floor(k / dOut);
    const o = k % dOut;
    let s = Math.abs(bias?.[o] ?? 0);
    for (let i = 0; i < dIn; i++) s += Math.abs(x[t * dIn + i]! * w[o * dIn + i]!);
    return matmulTol(dIn, s);
  });
  assert.equal(
    bad,
    -1,
    `matmul n=${n} dIn=${dIn} dOut=${dOut} seed=${seed}: [${bad}] ref ${ref[bad]} wasm ${out[bad]}`,
  );
}

test("matmul: random shapes (odd sizes, bias or not) equal the reference", { skip: wasmSkip }, () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 11 }),
      fc.integer({ min: 1, max: 90 }),
      fc.integer({ min: 1, max: 70 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.boolean(),
      fc.boolean(),
      checkMatmul,
    ),
    { numRuns: 120 },
  );
});

test("matmul: model-sized shapes", { skip: wasmSkip }, () => {
  checkMatmul(13, 576, 96, 1, true, true);
  checkMatmul(5, 64, 1536, 2, false, false);
  checkMatmul(64, 288, 64, 3, false, true);
});

test("rmsnorm: random shapes equal the reference", { skip: wasmSkip }, () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.constantFrom(1e-5, 1e-6, 0.1),
      fc.boolean(),
      (n, dim, seed, eps, inArena) => {
        const r = rng(seed);
        const x = randn(r, n * dim, 10 ** (r() * 4 - 2));
        const w = randn(r, dim);
        const ref = new Float32Array(n * dim);
        refRmsnorm(ref, x, w, n, dim, eps);
        const out = arena(new Float32Array(n * dim), inArena);
        exec.rmsnorm(out, arena(x, inArena), arena(w, inArena), n, dim, eps);
        const bad = firstMismatch(ref, out, (i) => rmsnormTol(dim, ref[i]!));
        assert.equal(
          bad,
          -1,
          `rmsnorm n=${n} dim=${dim} seed=${seed}: [${bad}] ref ${ref[bad]} wasm ${out[bad]}`,
        );
      },
    ),
    { numRuns: 100 },
  );
});

test("rope: random shapes and positions equal the reference", { skip: wasmSkip }, () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 40 }).map((h) => 2 * h),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.boolean(),
      (n, nHeads, headDim, seed, inArena) => {
        const r = rng(seed);
        const x = randn(r, n * nHeads * headDim);
        const positions = new Int32Array(n).map(() => Math.floor(r() * 5000));
        const invFreq = new Float32Array(headDim / 2).map((_, i) => 10000 ** ((-2 * i) / headDim));
        const ref = x.slice();
        refRope(ref, positions, n, nHeads, headDim, invFreq);
        const got = arena(x.slice(), inArena);
        exec.rope(got, positions, n, nHeads, headDim, invFreq);
        const half = headDim / 2;
        const bad = firstMismatch(ref, got, (i) => {
          const o = i - (i % headDim);
          const j = (i % headDim) % half;
          return ropeTol(x[o + j]!, x[o + j + half]!);
        });
        assert.equal(
          bad,
          -1,
          `rope n=${n} heads=${nHeads} d=${headDim} seed=${seed}: [${bad}] ref ${ref[bad]} wasm ${got[bad]}`,
        );
      },
    ),
    { numRuns: 100 },
  );
});

test("swiglu: random lengths and magnitudes equal the reference", { skip: wasmSkip }, () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 500 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.boolean(),
      (n, seed, inArena) => {
        const r = rng(seed);
        const gate = randn(r, n, 10 ** (r() * 3 - 1));
        const up = randn(r, n);
        const ref = new Float32Array(n);
        refSwiglu(ref, gate, up, n);
        const out = arena(new Float32Array(n), inArena);
        exec.swiglu(out, arena(gate, inArena), arena(up, inArena), n);
        const bad = firstMismatch(ref, out, (i) => swigluTol(ref[i]!));
        assert.equal(bad, -1, `swiglu n=${n} seed=${seed}: [${bad}] ref ${ref[bad]} wasm ${out[bad]}`);
      },
    ),
    { numRuns: 100 },
  );
});

test("model ops: short arrays are a ShapeError, not a silent out-of-bounds write", { skip: wasmSkip }, () => {
  assert.throws(
    () => exec.matmul(new Float32Array(3), new Float32Array(4), new Float32Array(4), 2, 2, 2),
    /out has 3 elements, the op needs 4/,
  );
});
