/**
 * The executors' `hadamard` op: wasm (assembly/hadamard.ts) equals src/quant/hadamard.ts bit
 * for bit, forward and inverse, on power-of-two and split head sizes and rows from 1e-30 to 1e30;
 * and a rotated cache on wasm counts no fallback for it (the op is wasm's own).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { HadamardRotation } from "../../src/quant/hadamard.ts";
import { rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

let exec: WasmExecutor;
before(async () => {
  if (!wasmSkip) exec = await wasmExecutor();
});
after(() => exec?.dispose());

test("wasm hadamard op equals hadamard.ts bit for bit (forward and inverse)", { skip: wasmSkip }, () => {
  for (const n of [1, 2, 3, 7, 8, 24, 33, 64, 65, 96, 100, 128, 256]) {
    const rot = new HadamardRotation(n, n * 31);
    const r = rng(n);
    const nRows = 9;
    const x = new Float32Array(nRows * n);
    for (let row = 0; row < nRows; row++) {
      const scale = 10 ** (r() * 60 - 30);
      for (let i = 0; i < n; i++) x[row * n + i] = (r() * 2 - 1) * scale;
    }
    for (const inverse of [false, true]) {
      const want = x.slice();
      if (inverse) rot.invert(want, nRows);
      else rot.apply(want, nRows);
      const got = x.slice();
      exec.hadamard(got, nRows, n, rot.signs, inverse);
      assert.deepEqual(
        new Uint32Array(got.buffer),
        new Uint32Array(want.buffer),
        `n=${n} inverse=${inverse}`,
      );
    }
  }
  assert.equal(exec.fallbacks.get("hadamard") ?? 0, 0);
});

test("a TurboQuant cache (rotated keys and values) on wasm runs without any fallback", {
  skip: wasmSkip,
}, async () => {
  const shape = { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 64, maxTokens: 32 };
  for (const codec of ["turbo3", "turbo4-qjl"]) {
    const before = new Map(exec.fallbacks);
    const cache = await createCache(codec, shape, { executor: exec });
    const r = rng(7);
    const k = new Float32Array(2 * 8 * 64).map(() => r() * 2 - 1);
    await cache.append(
      0,
      k,
      k,
      Int32Array.from({ length: 8 }, (_, i) => i),
    );
    const out = new Float32Array(4 * 64);
    await cache.attend(0, new Float32Array(4 * 64).fill(0.1), Int32Array.of(8), out);
    cache.dispose();
    assert.deepEqual(Object.fromEntries(exec.fallbacks), Object.fromEntries(before), `${codec}: fallbacks`);
  }
});
