/**
 * wasm addInPlace and swapAxes01 (the forward's residual add and head-major <-> token-major
 * transposes) equal plain JS exactly, on 1 and 2 threads, arrays in and out of executor memory,
 * odd sizes and sizes large enough to be split over the pool.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

const execs: WasmExecutor[] = [];
before(async () => {
  if (!wasmSkip) execs.push(await wasmExecutor(1), await wasmExecutor(2));
});
after(() => {
  for (const e of execs) e.dispose();
});

function place(e: WasmExecutor, src: Float32Array, inArena: boolean): Float32Array {
  if (!inArena) return src.slice();
  const a = e.allocF32(src.length);
  a.set(src);
  return a;
}

test("addInPlace: x + y per element, f32", { skip: wasmSkip }, () => {
  for (const e of execs)
    for (const n of [1, 3, 4, 17, 576, 300_001])
      for (const inArena of [true, false]) {
        const r = rng(n);
        const x = randn(r, n);
        const y = randn(r, n);
        const want = new Float32Array(n);
        for (let i = 0; i < n; i++) want[i] = x[i]! + y[i]!;
        const got = place(e, x, inArena);
        e.addInPlace(got, place(e, y, inArena), n);
        assert.deepEqual(got, want, `threads=${e.threads} n=${n} inArena=${inArena}`);
      }
});

test("swapAxes01: out (b, a, d) = x (a, b, d), both directions", { skip: wasmSkip }, () => {
  for (const e of execs)
    for (const [a, b, d] of [
      [1, 1, 1],
      [1, 9, 64],
      [5, 3, 7],
      [512, 9, 64],
      [9, 512, 64],
    ] as const)
      for (const inArena of [true, false]) {
        const x = randn(rng(a * 1000 + b), a * b * d);
        const want = new Float32Array(a * b * d);
        for (let i = 0; i < a; i++)
          for (let j = 0; j < b; j++)
            for (let c = 0; c < d; c++) want[(j * a + i) * d + c] = x[(i * b + j) * d + c]!;
        const out = place(e, new Float32Array(a * b * d).fill(Number.NaN), inArena);
        e.swapAxes01(out, place(e, x, inArena), a, b, d);
        assert.deepEqual(out, want, `threads=${e.threads} a=${a} b=${b} d=${d} inArena=${inArena}`);
      }
});
