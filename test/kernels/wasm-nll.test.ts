/**
 * The wasm NLL op (log-softmax at the target, f64 with a SIMD exp) against the TS reference
 * nllOf, and the pooled row-split ops (nll, rmsnorm, swiglu) on 2 threads against 1 thread.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { nllOf } from "../../src/eval/perplexity.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

let one: WasmExecutor;
let two: WasmExecutor;
before(async () => {
  if (wasmSkip) return;
  one = await wasmExecutor(1);
  two = await wasmExecutor(2);
});
after(() => {
  one?.dispose();
  two?.dispose();
});

function inExec(e: WasmExecutor, src: Float32Array): Float32Array {
  const a = e.allocF32(src.length);
  a.set(src);
  return a;
}

test("nll: equals nllOf to 1e-12 (odd vocab sizes, wide logit ranges, -inf and huge gaps)", {
  skip: wasmSkip,
}, () => {
  for (const [nRows, vocab, scale] of [
    [1, 1, 1],
    [3, 7, 1],
    [5, 513, 30],
    [17, 4099, 4],
    [4, 32000, 800], // most terms underflow next to the max
  ] as const) {
    const r = rng(nRows * 7919 + vocab);
    const logits = randn(r, nRows * vocab, scale);
    if (vocab > 2) logits[1] = Number.NEGATIVE_INFINITY; // a masked logit contributes exp(-inf) = 0
    const targets = Int32Array.from({ length: nRows }, () => Math.floor(r() * vocab));
    if (vocab > 2) targets[0] = 1 % vocab === 1 ? 2 : 0;
    for (const e of [one, two]) {
      const out = new Float64Array(nRows).fill(Number.NaN);
      e.nll(out, inExec(e, logits), targets, nRows, vocab);
      for (let i = 0; i < nRows; i++) {
        const want = nllOf(logits.subarray(i * vocab, (i + 1) * vocab), targets[i]!);
        assert.ok(
          Math.abs(out[i]! - want) <= 1e-12 * Math.max(1, Math.abs(want)),
          `threads=${e.threads} ${nRows}x${vocab} row ${i}: ${out[i]} vs nllOf ${want}`,
        );
      }
    }
  }
});

test("nll: arrays outside the executor's memory are copied in; bad targets are a ShapeError", {
  skip: wasmSkip,
}, () => {
  const logits = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  const out = new Float64Array(2);
  one.nll(out, logits, Int32Array.from([3, 0]), 2, 4);
  assert.ok(Math.abs(out[0]! - nllOf(logits.subarray(0, 4), 3)) < 1e-12);
  assert.ok(Math.abs(out[1]! - nllOf(logits.subarray(4, 8), 0)) < 1e-12);
  assert.throws(() => one.nll(out, logits, Int32Array.from([4, 0]), 2, 4), { name: "ShapeError" });
});

test("threads: 2-thread rmsnorm, swiglu and nll equal 1 thread bit for bit", { skip: wasmSkip }, () => {
  const r = rng(42);
  const n = 300;
  const dim = 576;
  const x = randn(r, n * dim);
  const w = randn(r, dim);
  const res = [one, two].map((e) => {
    const out = e.allocF32(n * dim).fill(Number.NaN);
    e.rmsnorm(out, inExec(e, x), inExec(e, w), n, dim, 1e-5);
    return out;
  });
  assert.deepEqual(res[1], res[0]);
  const len = 3 * 65536 + 13; // not a multiple of the tile or of 4
  const g = randn(r, len, 3);
  const u = randn(r, len);
  const sw = [one, two].map((e) => {
    const out = e.allocF32(len).fill(Number.NaN);
    e.swiglu(out, inExec(e, g), inExec(e, u), len);
    return out;
  });
  assert.deepEqual(sw[1], sw[0]);
  const vocab = 4097;
  const rows = 33;
  const logits = randn(r, rows * vocab, 5);
  const targets = Int32Array.from({ length: rows }, (_, i) => (i * 131) % vocab);
  const nl = [one, two].map((e) => {
    const out = new Float64Array(rows);
    e.nll(out, inExec(e, logits), targets, rows, vocab);
    return out;
  });
  assert.deepEqual(nl[1], nl[0]);
  assert.ok(two.poolStats()!.parallel + two.poolStats()!.sequential >= 3, "the pool ran the 2-thread ops");
});
