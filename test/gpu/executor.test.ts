/**
 * The registry's webgpu executor: synchronous ops run `ref` and are counted as fallbacks (never
 * silent); createCache routes to the GPU-resident cache where the spec allows and to the
 * standard cache otherwise (KIVI channel keys, ggml block types), which still works.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { StandardKVCache } from "../../src/cache/kv-cache.ts";
import { createWebGpuExecutor } from "../../src/gpu/executor.ts";
import { GpuKVCache } from "../../src/gpu/kv-cache.ts";
import { createRefExecutor } from "../../src/kernels/ref.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

test("sync ops equal ref and are counted as fallbacks", { skip: env.skip }, async () => {
  const exec = await createWebGpuExecutor();
  const ref = createRefExecutor();
  const r = rng(9);
  const x = new Float32Array(3 * 5).map(() => r());
  const w = new Float32Array(4 * 5).map(() => r());
  const a = new Float32Array(12);
  const b = new Float32Array(12);
  exec.matmul(a, x, w, 3, 5, 4);
  ref.matmul(b, x, w, 3, 5, 4);
  assert.deepEqual(a, b);
  exec.swiglu(a, a, b, 12);
  assert.equal(exec.fallbacks.get("matmul"), 1);
  assert.equal(exec.fallbacks.get("swiglu"), 1);
});

test("createCache: GPU cache for token-axis codecs, standard cache for the storage variants it lacks", {
  skip: env.skip,
}, async () => {
  const exec = await createWebGpuExecutor();
  const shape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 32, maxTokens: 64 };
  assert.ok(
    (await createCache({ codec: { type: "int4", symmetric: true } }, shape, { executor: exec })) instanceof
      GpuKVCache,
  );
  assert.ok(
    (await createCache({ codec: "int8", policy: { type: "h2o", budget: 8 } }, shape, {
      executor: exec,
    })) instanceof GpuKVCache,
  );
  assert.ok(
    (await createCache("int4-hadamard", shape, { executor: exec })) instanceof GpuKVCache,
    "rotated keys are the GPU cache's (kernels/hadamard.ts)",
  );
  assert.ok(
    (await createCache("q4_0", shape, { executor: exec })) instanceof GpuKVCache,
    "ggml block types are the GPU cache's (wgsl/ggml.ts)",
  );
  for (const preset of ["kivi2", "turbo3-qjl"]) {
    const cache = await createCache(preset, shape, { executor: exec });
    assert.ok(cache instanceof StandardKVCache, `${preset} goes to the standard cache`);
    const d = shape.headDim;
    const k = new Float32Array(d).map((_, i) => Math.sin(i));
    await cache.append(0, k, k, Int32Array.of(0));
    const out = new Float32Array(2 * d);
    await cache.attend(0, new Float32Array(2 * d).fill(0.1), Int32Array.of(0), out);
    assert.ok(out.every(Number.isFinite));
  }
});
