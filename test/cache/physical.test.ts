/**
 * Physical bytes (issue 16 item 6): stats().physical states what the standard cache holds as
 * allocated, next to memory()'s logical bytes. Expected store sizes are computed here from the
 * row formats (capacity x (K row + V row + 4-byte position)), not from the cache's layouts.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { StandardKVCache } from "../../src/cache/kv-cache.ts";
import type { CacheSpecInput } from "../../src/cache/types.ts";
import { availableExecutors, disposeTestExecutors } from "../helpers/executors.ts";
import { makeCache, rng, smallShape } from "./policies/drive.ts";

after(disposeTestExecutors);

async function fed(spec: CacheSpecInput, attentionMass = false, steps = 40) {
  const shape = smallShape({ headDim: 64, nLayers: 2, maxTokens: 512 });
  const cache = await makeCache(spec, shape, attentionMass);
  const r = rng(3);
  const d = shape.headDim;
  for (let t = 0; t < steps; t++) {
    for (let l = 0; l < shape.nLayers; l++) {
      const k = Float32Array.from({ length: shape.nKvHeads * d }, () => r(2));
      const v = Float32Array.from({ length: shape.nKvHeads * d }, () => r(1));
      const q = Float32Array.from({ length: shape.nHeads * d }, () => r(2));
      cache.append(l, k, v, Int32Array.of(t));
      cache.attend(l, q, Int32Array.of(t), new Float32Array(q.length));
    }
  }
  return { cache, shape };
}

test("stores are counted at their allocated capacity, from the row formats", async () => {
  // int4 asymmetric g32 at head_dim 64: 32 code bytes + 2 f16 scales + 2 f16 zeros = 40 bytes a
  // row; f16: 128 bytes a row. The store starts at min(maxTokens, 256) = 256 slots per head.
  const perSlot = { int4: 40 + 40 + 4, f16: 128 + 128 + 4 };
  for (const type of ["int4", "f16"] as const) {
    const { cache, shape } = await fed(type);
    const p = cache.stats().physical!;
    assert.equal(p.stores, shape.nLayers * shape.nKvHeads * 256 * perSlot[type], `${type} stores`);
    assert.equal(p.residual, 0);
    assert.equal(p.diagnostics, 0);
    assert.ok(p.total >= cache.memory().total, `${type}: physical ${p.total} below logical`);
    assert.equal(p.total, p.stores + p.residual + p.scratch + p.diagnostics + p.policyState);
  }
});

test("scratch, residual buffers and diagnostic shadow copies are counted where a path holds them", async () => {
  const plain = (await fed("int4")).cache.stats().physical!;
  const rotated = (await fed({ codec: { type: "int4", rotation: "hadamard" } })).cache.stats().physical!;
  // Rotation keeps staging rows for keys and values and rotated query rows.
  assert.ok(rotated.scratch > plain.scratch, `rotation scratch ${rotated.scratch} vs ${plain.scratch}`);
  const kivi = (await fed("kivi2")).cache;
  const kp = kivi.stats().physical!;
  assert.ok(kp.residual > 0, "KIVI's f32 windows and channel codes");
  assert.ok(kp.scratch > 0, "KIVI attends over decoded values");
  assert.ok(kp.total >= kivi.memory().total);
  const mass = (await fed("int4", true)).cache.stats().physical!;
  // The meter keeps an f32 shadow of every key: >= 40 tokens x 64 x 4 bytes per (layer, head).
  assert.ok(mass.diagnostics >= 2 * 2 * 40 * 64 * 4, `diagnostics ${mass.diagnostics}`);
});

test("peakPhysicalBytes keeps the peak, restarts on reset, and is at least the current total", async () => {
  const { cache } = await fed({ codec: "f16", policy: { type: "window", budget: 16 } });
  const s = cache.stats();
  assert.ok(s.peakPhysicalBytes! >= s.physical!.total);
  cache.reset();
  const k = new Float32Array(2 * 64);
  cache.append(0, k, k, Int32Array.of(0));
  const after = cache.stats();
  assert.equal(after.peakPhysicalBytes, after.physical!.total);
});

/**
 * Scratch of the token-axis path, written out from the shape and the spec: query positions
 * (i32 per query row), rotated query rows only when keys are rotated (f32), key/value staging
 * rows only for a rotated side (f32, the largest append), and with query q8 the q8_0 rows
 * (f32 dequantized + i8 codes + one f32 scale per 32). Fails when qRot is held without a
 * rotation, or the q8 query rows go uncounted.
 */
test("scratch bytes equal what the shape and spec need: rotation, query q8 (ref and wasm)", async () => {
  const d = 64;
  const group = 2; // nHeads 4 / nKvHeads 2
  const shape = smallShape({ headDim: d, nLayers: 1, maxTokens: 64 });
  const prefill = 3; // then one token a step: buffers keep their largest size
  const rows = group * prefill; // query rows of one KV head at the largest attend
  const q8Bytes = rows * d * 4 + rows * d + rows * (d / 32) * 4;
  const cases: [CacheSpecInput, number][] = [
    ["int4", rows * 4],
    [{ codec: "int4", query: "q8" }, rows * 4 + q8Bytes],
    [{ codec: { type: "int4", rotation: "hadamard" } }, rows * 4 + rows * d * 4 + 2 * prefill * d * 4],
    [
      { codec: { type: "int4", rotation: "hadamard" }, query: "q8" },
      rows * 4 + rows * d * 4 + 2 * prefill * d * 4 + q8Bytes,
    ],
  ];
  const checked = new Set<string>();
  for (const exec of await availableExecutors())
    for (const [spec, expected] of cases) {
      const cache = await createCache(spec, shape, { executor: exec });
      if (!(cache instanceof StandardKVCache)) continue; // an executor's own cache counts its own
      checked.add(exec.name);
      const r = rng(5);
      for (let t = 0; t < 8; ) {
        const n = t === 0 ? prefill : 1;
        const pos = Int32Array.from({ length: n }, (_, i) => t + i);
        const k = Float32Array.from({ length: shape.nKvHeads * n * d }, () => r(2));
        const q = Float32Array.from({ length: shape.nHeads * n * d }, () => r(2));
        cache.append(0, k, k, pos);
        cache.attend(0, q, pos, new Float32Array(q.length));
        t += n;
      }
      const label = `${exec.name} ${JSON.stringify(spec)}`;
      assert.equal(cache.stats().physical!.scratch, expected, label);
      cache.dispose();
    }
  assert.ok(checked.has("ref"), `checked on ${[...checked]}`);
});

/**
 * Everything a cache allocates in executor memory is freed by dispose(): the wasm arena's bytes
 * in use return to where they were, after growth past the initial 256 slots, query rows of
 * changing counts (q8 rows regrown), evictions, channel-axis keys and value windows. Fails when
 * a regrown buffer or an empty array (f16's scales, channel keys' token rows) keeps its block.
 */
test("dispose frees every block a cache allocated, through growth (wasm arena)", async () => {
  const wasm = (await availableExecutors()).find((e) => e.name === "wasm");
  if (!wasm) return;
  const inUse = () => (wasm as unknown as { bytesInUse(): number }).bytesInUse();
  const shape = smallShape({ headDim: 64, nLayers: 1, maxTokens: 320 });
  // The executor's own grow-only op scratch (rope's cos/sin) is held until the executor goes:
  // take it at this head size first, so that only the cache's blocks are measured.
  wasm.rope(new Float32Array(64), Int32Array.of(1), 1, 1, 64, shape.rope!.invFreq);
  const specs: CacheSpecInput[] = [
    "f16",
    "kivi2",
    "kivi2-prerope",
    { codec: "int4", query: "q8" },
    { codec: { type: "int4", rotation: "hadamard" }, query: "q8" },
    { codec: "f16", policy: { type: "h2o", budget: 40 } },
  ];
  for (const spec of specs) {
    const before = inUse();
    const cache = await createCache(spec, shape, { executor: wasm });
    const r = rng(9);
    const d = shape.headDim;
    let t = 0;
    for (let c = 0; t < 300; c++) {
      const n = [1, 2, 5, 1, 9][c % 5]!;
      const pos = Int32Array.from({ length: n }, (_, i) => t + i);
      const k = Float32Array.from({ length: shape.nKvHeads * n * d }, () => r(2));
      const q = Float32Array.from({ length: shape.nHeads * n * d }, () => r(2));
      cache.append(0, k, k, pos);
      cache.attend(0, q, pos, new Float32Array(q.length));
      t += n;
    }
    cache.dispose();
    assert.equal(inUse() - before, 0, `${JSON.stringify(spec)}: bytes left in the arena after dispose`);
  }
});
