/**
 * memory(): exact bytes by part for every codec configuration on every available executor,
 * computed here from the format rules (bits per code, one f16 scale per group, one f16
 * zero-point per group when asymmetric), and the accounting rule of issue 2:
 * f16 = 16.0 bits/element; int8 symmetric g32 = 8.5; int4 asymmetric g32 = 5.0;
 * int4 symmetric g32 = 4.5 (f16 scales and zero-points included).
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import type { CacheSpecInput, KVCache, KVShape } from "../../src/cache/types.ts";
import type { CodecOptions } from "../../src/quant/types.ts";
import { codecCases, expectedLayout } from "../helpers/codec-cases.ts";
import { availableExecutors, disposeTestExecutors } from "../helpers/executors.ts";

after(disposeTestExecutors);

const executors = await availableExecutors();

/** Append `tokens` tokens to every layer in chunks of up to 3, with zero-mean data. */
async function fill(cache: KVCache, shape: KVShape, tokens: number): Promise<void> {
  let pos = 0;
  while (pos < tokens) {
    const n = Math.min(3, tokens - pos);
    const k = new Float32Array(shape.nKvHeads * n * shape.headDim).map((_, i) => Math.sin(i + pos));
    const v = new Float32Array(k.length).map((_, i) => Math.cos(i * 0.7 + pos));
    const positions = Int32Array.from({ length: n }, (_, i) => pos + i);
    for (let l = 0; l < shape.nLayers; l++) await cache.append(l, k, v, positions);
    pos += n;
  }
}

/** Expected bytes of one stored token row (K or V) under a codec, by part. */
function rowParts(o: CodecOptions, headDim: number) {
  const L = expectedLayout(o, headDim);
  return { payload: L.payloadBytes, scales: 2 * L.scales, zeros: 2 * L.zeros };
}

for (const exec of executors) {
  describe(`memory() on ${exec.name}`, () => {
    test("exact bytes by part for every codec, odd and even head sizes, and after reset", async () => {
      for (const cc of codecCases())
        for (const headDim of [64, 33, 5]) {
          // Storage starts at min(maxTokens, 256) = 8 slots per head, enough for the 7 tokens appended.
          const shape: KVShape = { nLayers: 2, nHeads: 4, nKvHeads: 2, headDim, maxTokens: 8 };
          const cache = await createCache({ codec: cc.options }, shape, { executor: exec });
          try {
            const empty = cache.memory();
            assert.equal(empty.total, 0, `${cc.label}: empty cache holds bytes`);
            assert.equal(empty.bitsPerElement, 0);
            const tokens = 7;
            await fill(cache, shape, tokens);
            const slots = tokens * shape.nLayers * shape.nKvHeads;
            const r = rowParts(cc.options, headDim);
            const m = cache.memory();
            const what = `${cc.label} headDim ${headDim}`;
            assert.equal(m.payload, slots * 2 * r.payload, `${what}: payload`);
            assert.equal(m.scales, slots * 2 * r.scales, `${what}: scales`);
            assert.equal(m.zeros, slots * 2 * r.zeros, `${what}: zero-points`);
            assert.equal(m.residual, 0, `${what}: residual`);
            assert.equal(m.indices, 0, `${what}: full policy stores no positions`);
            assert.equal(m.policyState, 0, `${what}: policy state`);
            assert.equal(m.total, slots * 2 * (r.payload + r.scales + r.zeros), `${what}: total`);
            assert.equal(m.elements, slots * 2 * headDim, `${what}: elements`);
            assert.equal(m.tokenSlots, slots, `${what}: token slots`);
            assert.equal(m.bitsPerElement, (m.total * 8) / m.elements, `${what}: bits per element`);
            cache.reset();
            assert.equal(cache.memory().total, 0, `${what}: memory() after reset is not 0`);
            await fill(cache, shape, tokens);
            assert.deepEqual(cache.memory(), m, `${what}: refill after reset differs`);
          } finally {
            cache.dispose();
          }
        }
    });

    test("the accounting rule: f16 16.0, int8 sym g32 8.5, int4 asym g32 5.0, int4 sym g32 4.5", async () => {
      const rule: [CacheSpecInput, number][] = [
        ["f16", 16],
        ["f32", 32],
        ["bf16", 16],
        ["fp8-e4m3", 8],
        [{ codec: { type: "int8", group: 32, symmetric: true } }, 8.5],
        [{ codec: { type: "int4", group: 32, symmetric: false } }, 5.0],
        [{ codec: { type: "int4", group: 32, symmetric: true } }, 4.5],
        [{ codec: { type: "int2", group: 32, symmetric: false } }, 3.0],
        ["int8", 8.5], // default: symmetric g32 (llama.cpp q8_0)
        ["int4", 5.0], // default: asymmetric g32
        ["q8_0", 8.5],
        ["q4_0", 4.5],
        [{ codec: { keys: "f16", values: { type: "int4", group: 32, symmetric: true } } }, (16 + 4.5) / 2],
      ];
      for (const headDim of [64, 128])
        for (const [spec, bits] of rule) {
          const shape: KVShape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim, maxTokens: 8 };
          const cache = await createCache(spec, shape, { executor: exec });
          try {
            await fill(cache, shape, 5);
            assert.equal(
              cache.memory().bitsPerElement,
              bits,
              `${JSON.stringify(spec)} at headDim ${headDim}`,
            );
          } finally {
            cache.dispose();
          }
        }
    });
  });
}
