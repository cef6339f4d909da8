/**
 * The whole forward pass on the GPU (weights, activations and cache on the device) against the
 * CPU forward on the `ref` executor: a synthetic Qwen2-style model (GQA, q/k/v biases) through
 * chunked prefill and decoding, and, with ../shared present, stories260K's llama.cpp-protocol
 * perplexity.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { evaluatePerplexity } from "../../src/eval/perplexity.ts";
import { createWebGpuExecutor } from "../../src/gpu/executor.ts";
import { toGpuModel } from "../../src/gpu/forward.ts";
import { GpuKVCache } from "../../src/gpu/kv-cache.ts";
import { createRefExecutor } from "../../src/kernels/ref.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";
import { sharedPath, skipUnlessShared } from "../shared.ts";
import { gpuTestEnv } from "./gpu-helper.ts";

const env = await gpuTestEnv();

/** Logits: f32 forward with f32 summation order differences across ~10 matmuls; logits are O(1-10). */
const LOGIT_TOL = 1e-3;
/** The acceptance bound of the issue: perplexity within 0.05% of the CPU runtime's. */
const PPL_REL_TOL = 5e-4;

for (const cacheSpec of [
  "f32",
  "int4",
  { codec: "int8", policy: { type: "knorm", budget: 8, recent: 2 } },
  { codec: "int8", policy: { type: "h2o", budget: 8, recent: 2 } },
]) {
  test(`synthetic qwen2 model: GPU forward logits = CPU forward (${JSON.stringify(cacheSpec)} cache)`, {
    skip: env.skip,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "kvlab-gpu-fwd-"));
    try {
      synthModel({ shape: "tiny-qwen2", out: dir, seed: 3, dtype: "f32" });
      const cpu = await loadModel(dir, { executor: createRefExecutor() });
      // int4 run: weights split into row blocks of <= 1000 bytes, as a tensor over the binding limit is.
      const gpu = await toGpuModel(
        cpu,
        await createWebGpuExecutor(),
        cacheSpec === "int4" ? { maxBlockBytes: 1000 } : {},
      );
      const shape = cpu.kvShape(64);
      const cpuCache = await createCache(cacheSpec, shape, { executor: cpu.executor });
      const gpuCache = await createCache(cacheSpec, shape, { executor: gpu.executor });
      assert.ok(gpuCache instanceof GpuKVCache);
      const vocab = cpu.config.vocabSize;
      let pos = 0;
      for (const n of [9, 1, 1, 4]) {
        const tokens = Array.from({ length: n }, (_, i) => (pos * 7 + i * 13 + 5) % vocab);
        const positions = Int32Array.from({ length: n }, (_, i) => pos + i);
        pos += n;
        const want = (await cpu.forward(tokens, positions, cpuCache)).slice();
        const got = await gpu.forward(tokens, positions, gpuCache);
        assert.equal(got.length, want.length);
        for (let i = 0; i < want.length; i++)
          assert.ok(
            Math.abs(got[i]! - want[i]!) <= LOGIT_TOL * (1 + Math.abs(want[i]!)),
            `position ${pos}: logit ${i} gpu ${got[i]} cpu ${want[i]}`,
          );
      }
      assert.deepEqual(gpuCache.memory(), cpuCache.memory());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

const MODEL = "models/stories260K/stories260K.f32.gguf";
const TEXT = "data/wikitext-2-raw/wiki.test.raw";
const sharedSkip = env.skip || skipUnlessShared(MODEL) || skipUnlessShared(TEXT);

test("stories260K llama.cpp protocol (ctx 64, 3 chunks, f32 cache): GPU forward PPL = CPU PPL within 0.05%", {
  skip: sharedSkip,
}, async () => {
  const { readFileSync } = await import("node:fs");
  const cpu = await loadModel(sharedPath(MODEL)!, { executor: createRefExecutor() });
  const gpu = await toGpuModel(cpu, await createWebGpuExecutor());
  // The protocol needs only the first 3 * 64 tokens: tokenize a prefix of the text.
  const text = readFileSync(sharedPath(TEXT)!).subarray(0, 4000).toString("utf8");
  const tokens = cpu.tokenizer.encode(text, { addBos: true });
  const protocol = { kind: "llamacpp" as const, nCtx: 64, nChunks: 3 };
  const want = await evaluatePerplexity(cpu, tokens, protocol, (s) =>
    createCache("f32", s, { executor: cpu.executor }),
  );
  const got = await evaluatePerplexity(gpu, tokens, protocol, (s) =>
    createCache("f32", s, { executor: gpu.executor }),
  );
  assert.ok(
    Math.abs(got.ppl - want.ppl) <= PPL_REL_TOL * want.ppl,
    `GPU PPL ${got.ppl} vs CPU PPL ${want.ppl}`,
  );
});
