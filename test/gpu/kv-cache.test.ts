/**
 * The GPU-resident cache (executor webgpu) against the standard cache on the `ref` executor:
 * same inputs through chunked prefill and token-by-token decoding, GQA, several codecs and
 * policies; attention output within ATTN_TOL, memory() identical, evictions identical.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import type { CacheSpecInput, KVCache, KVShape } from "../../src/cache/types.ts";
import { GpuKVCache } from "../../src/gpu/kv-cache.ts";
import { createRefExecutor } from "../../src/kernels/ref.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

/**
 * Named tolerance for attention outputs. The GPU accumulates scores and the weighted sum in f32
 * with an online softmax; `ref` uses f64 and a two-pass softmax. Inputs are O(1), so the
 * difference is a few f32 ulps times the number of slots; 1e-4 absolute leaves headroom while
 * still failing on any real error (a wrong code, slot or mask moves outputs by >= 1e-2).
 */
const ATTN_TOL = 1e-4;

async function exec() {
  // A WebGpuExecutor built on the test's device, so createCache routes to the GPU cache.
  const { createWebGpuExecutor } = await import("../../src/gpu/executor.ts");
  return createWebGpuExecutor();
}

async function compare(spec: CacheSpecInput, shape: KVShape, chunks: number[], seed: number, cacheSeed = 0) {
  const gpuExec = await exec();
  const gpu = await createCache(spec, shape, { executor: gpuExec, seed: cacheSeed });
  assert.ok(gpu instanceof GpuKVCache, "executor webgpu must give the GPU-resident cache");
  const ref = await createCache(spec, shape, { executor: createRefExecutor(), seed: cacheSeed });
  const r = rng(seed);
  const { nLayers, nHeads, nKvHeads, headDim: d } = shape;
  let pos = 0;
  for (const n of chunks) {
    const positions = Int32Array.from({ length: n }, (_, i) => pos + i);
    pos += n;
    for (let l = 0; l < nLayers; l++) {
      const k = new Float32Array(nKvHeads * n * d).map(() => r() * 2 - 1);
      const v = new Float32Array(nKvHeads * n * d).map(() => r() * 2 - 1);
      const q = new Float32Array(nHeads * n * d).map(() => (r() * 2 - 1) * 2);
      const outG = new Float32Array(q.length);
      const outR = new Float32Array(q.length);
      await gpu.append(l, k, v, positions);
      await ref.append(l, k, v, positions);
      await gpu.attend(l, q, positions, outG);
      await ref.attend(l, q, positions, outR);
      for (let i = 0; i < outR.length; i++)
        assert.ok(
          Math.abs(outG[i]! - outR[i]!) <= ATTN_TOL,
          `layer ${l} at position ${pos}: element ${i} gpu ${outG[i]} ref ${outR[i]}`,
        );
      assert.deepEqual(gpu.memory(), ref.memory(), `memory after layer ${l} at position ${pos}`);
    }
  }
  const sg = gpu.stats();
  const sr = ref.stats();
  assert.equal(sg.evicted, sr.evicted);
  assert.equal(sg.appended, sr.appended);
  assert.equal(sg.nonFinite, sr.nonFinite);
  assert.equal(sg.peakBytes, sr.peakBytes);
  return { gpu: gpu as GpuKVCache, ref: ref as KVCache };
}

const SHAPE: KVShape = { nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, maxTokens: 64 };

for (const codec of ["f32", "f16", "bf16", "fp8-e4m3", "int8", "int4", "int2"]) {
  test(`${codec}: GPU cache attention = ref within ATTN_TOL (GQA, prefill then decode)`, {
    skip: env.skip,
  }, async () => {
    await compare(codec, SHAPE, [7, 1, 1, 3], codec.length * 7);
  });
}

// Rotation on the device (kernels/hadamard.ts, bit-identical to hadamard.ts): the same codes as
// ref's rotated rows, so outputs agree within ATTN_TOL; headDim 24 = blocks of 16 and 8 (odd log2).
for (const codec of ["f32", "f16", "int8", "int4", "int2"])
  for (const sides of [["keys"], ["values"], ["keys", "values"]]) {
    test(`${codec} rotated (${sides.join("+")}): GPU cache attention = ref within ATTN_TOL`, {
      skip: env.skip,
    }, async () => {
      const side = (s: string) => ({ type: codec, rotation: sides.includes(s) ? "hadamard" : "none" });
      await compare(
        { codec: { keys: side("keys"), values: side("values") } } as CacheSpecInput,
        { ...SHAPE, headDim: 24 },
        [7, 1, 1, 3],
        codec.length * 5 + sides.length,
        sides.length * 977,
      );
    });
  }

// TurboQuant on the GPU cache (wgsl/turbo.ts), with its default rotation of keys and values.
for (const codec of ["turbo2", "turbo2.5", "turbo3", "turbo3.5", "turbo4"]) {
  test(`${codec} (rotated keys and values): GPU cache attention = ref within ATTN_TOL`, {
    skip: env.skip,
  }, async () => {
    await compare(codec, { ...SHAPE, headDim: 24 }, [7, 1, 1, 3], codec.length * 3, 4242);
  });
}

test("int4 sym g8 at headDim 40 (last group short), 1 KV head, 3 query heads", {
  skip: env.skip,
}, async () => {
  await compare(
    { codec: { type: "int4", symmetric: true, group: 8 } },
    { nLayers: 1, nHeads: 3, nKvHeads: 1, headDim: 40, maxTokens: 300 },
    [70, 1, 1, 5], // > 64 slots: several attention tiles, and capacity growth past 256 is not needed
    3,
  );
});

test("capacity grows past the initial 256 slots without losing rows", { skip: env.skip }, async () => {
  await compare(
    "int8",
    { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 8, maxTokens: 1024 },
    [200, 100, 1],
    5,
  );
});

for (const policy of [
  { type: "window", budget: 6 },
  { type: "h2o", budget: 6, recent: 2 },
  { type: "tova", budget: 5 },
  { type: "knorm", budget: 6, recent: 2 },
]) {
  test(`policy ${policy.type}: same evictions and outputs as the CPU cache (probabilities read back)`, {
    skip: env.skip,
  }, async () => {
    const { gpu } = await compare({ codec: "int8", policy }, SHAPE, [8, 1, 1, 1, 4, 1], 11);
    const bus = gpu.bus();
    if (policy.type === "h2o" || policy.type === "tova")
      assert.ok(bus.probsDownloaded > 0, "probabilities must be read back");
    else assert.equal(bus.probsDownloaded, 0, `${policy.type} needs no probabilities`);
  });
}

test("bus traffic per decode step is what the cache documents", { skip: env.skip }, async () => {
  const shape: KVShape = { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 16, maxTokens: 64 };
  const gpuExec = await exec();
  const cache = (await createCache("int4", shape, { executor: gpuExec })) as GpuKVCache;
  const d = shape.headDim;
  const k = new Float32Array(shape.nKvHeads * d).fill(0.5);
  const q = new Float32Array(shape.nHeads * d).fill(0.25);
  await cache.append(0, k, k, Int32Array.of(0));
  const before = cache.bus();
  await cache.append(0, k, k, Int32Array.of(1));
  await cache.attend(0, q, Int32Array.of(1), new Float32Array(q.length));
  const after = cache.bus();
  const group = shape.nHeads / shape.nKvHeads;
  // up: K and V rows + 1 position, q + the group's query positions; down: 8 bytes of encode
  // statistics after the append, then out + 8 bytes of statistics after the attend.
  assert.equal(
    after.uploaded - before.uploaded,
    2 * shape.nKvHeads * d * 4 + 4 + shape.nHeads * d * 4 + group * 4,
  );
  assert.equal(after.downloaded - before.downloaded, shape.nHeads * d * 4 + 8 + 8);
});

// The split (flash-decoding) path: force 64 slots per workgroup so small caches split too.
for (const spec of [
  "int4",
  "f16",
  { codec: "int8", policy: { type: "h2o", budget: 100, recent: 20 } },
] as CacheSpecInput[]) {
  test(`split attention over slot ranges (${JSON.stringify(spec)}) = ref within ATTN_TOL`, {
    skip: env.skip,
  }, async () => {
    const saved = GpuKVCache.splitSlots;
    GpuKVCache.splitSlots = 64;
    try {
      const { gpu } = await compare(
        spec,
        { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 16, maxTokens: 256 },
        [90, 1, 40, 1, 1],
        21,
      );
      if (typeof spec !== "string") assert.ok(gpu.bus().probsDownloaded > 0);
    } finally {
      GpuKVCache.splitSlots = saved;
    }
  });
}

// Gemma 2's attention soft-cap (src/cache/softcap.ts) in the GPU kernels, single-pass and split,
// with probabilities (h2o): a cap of 0.5 binds on these scores, so a kernel ignoring it fails.
for (const [codec, split] of [
  ["f32", false],
  ["int8", false],
  ["int4", true],
] as const) {
  test(`${codec}: soft-capped attention (cap 0.5${split ? ", split kernel" : ""}) on the GPU cache = ref within ATTN_TOL`, {
    skip: env.skip,
  }, async () => {
    const capped = { ...SHAPE, softcap: 0.5 } as KVShape;
    const before = GpuKVCache.splitSlots;
    if (split) GpuKVCache.splitSlots = 4;
    try {
      await compare(codec, capped, [9, 1, 1, 3], 41);
      await compare({ codec, policy: { type: "h2o", budget: 8, recent: 2 } }, capped, [9, 1, 1, 3], 43);
    } finally {
      GpuKVCache.splitSlots = before;
    }
    // The cap changes the outputs (the comparison above is not vacuous).
    const r = rng(5);
    const d = SHAPE.headDim;
    const k = new Float32Array(SHAPE.nKvHeads * 8 * d).map(() => r() * 2 - 1);
    const q = new Float32Array(SHAPE.nHeads * 8 * d).map(() => (r() * 2 - 1) * 2);
    const pos = Int32Array.from({ length: 8 }, (_, i) => i);
    const outs: Float32Array[] = [];
    for (const shape of [capped, SHAPE]) {
      const c = await createCache(codec, shape, { executor: createRefExecutor() });
      await c.append(0, k, k, pos);
      const out = new Float32Array(q.length);
      await c.attend(0, q, pos, out);
      outs.push(out);
    }
    assert.ok(
      outs[0]!.some((x, i) => Math.abs(x - outs[1]![i]!) > 1e-2),
      "the cap must change attention here",
    );
  });
}
