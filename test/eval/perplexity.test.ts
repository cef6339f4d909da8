/** Perplexity protocols on a synthetic tiny model: chunked = llamacpp, hooks, memory, errors. */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { ConfigError } from "../../src/errors.ts";
import { evaluatePerplexity, nllOf } from "../../src/eval/perplexity.ts";
import type { LanguageModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";

describe("perplexity protocols", () => {
  let dir = "";
  let m: LanguageModel;
  let tokens: number[];
  const f32 =
    (codec = "f32") =>
    (s: Parameters<typeof createCache>[1]) =>
      createCache(codec, s, { executor: m.executor });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "kvlab-ppl-"));
    synthModel({ shape: "tiny", out: join(dir, "tiny"), seed: 3, dtype: "f32" });
    m = await loadModel(join(dir, "tiny"), { executor: "ref" });
    // Random ids (not text): any sequence works for the protocol's invariants.
    let s = 12345;
    tokens = Array.from({ length: 200 }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return 3 + (s % (m.config.vocabSize - 3));
    });
    tokens[0] = 1;
  });
  after(() => {
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test("nllOf is -log softmax", () => {
    const l = Float32Array.from([1, 2, 3, 0.5]);
    const z = [1, 2, 3, 0.5].reduce((a, x) => a + Math.exp(x), 0);
    assert.ok(Math.abs(nllOf(l, 1) - -Math.log(Math.exp(2) / z)) < 1e-12);
  });

  test("scored count, hook order and hook NLLs agree with the result", async () => {
    const seen: number[] = [];
    let sum = 0;
    const r = await evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 32, nChunks: 5 }, f32(), {
      onScored(logits, target, i) {
        assert.equal(logits.length, m.config.vocabSize);
        seen.push(i);
        sum += nllOf(logits, target);
      },
    });
    assert.equal(r.tokens, 5 * (32 - 1 - 16));
    assert.deepEqual(
      seen,
      Array.from({ length: r.tokens }, (_, i) => i),
    );
    assert.ok(Math.abs(sum / r.tokens - r.nll) < 1e-12);
    assert.ok(Math.abs(Math.exp(r.nll) - r.ppl) < 1e-9 * r.ppl);
    assert.equal(r.segments, 5);
    assert.equal(r.memoryBySegment.length, 5);
  });

  test("chunked prefill with C = 1 (decoding) and C = 7 gives llamacpp's PPL", async () => {
    const base = await evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 32, nChunks: 6 }, f32());
    for (const chunkSize of [1, 7, 32]) {
      const r = await evaluatePerplexity(
        m,
        tokens,
        { kind: "chunked", nCtx: 32, nChunks: 6, chunkSize },
        f32(),
      );
      assert.equal(r.tokens, base.tokens);
      assert.ok(Math.abs(r.ppl - base.ppl) / base.ppl < 1e-6, `C=${chunkSize}: ${r.ppl} vs ${base.ppl}`);
    }
  });

  test("memory: an f32 cache holds nLayers x nKvHeads x nCtx x headDim x 2 floats; f16 half", async () => {
    const { nLayers, nKvHeads, headDim } = m.config;
    const r = await evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 32, nChunks: 2 }, f32());
    assert.equal(r.kvBytes, nLayers * nKvHeads * 32 * headDim * 2 * 4);
    assert.equal(r.bitsPerElement, 32);
    const h = await evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 32, nChunks: 2 }, f32("f16"));
    assert.equal(h.kvBytes, r.kvBytes / 2);
    assert.ok(h.peakKvBytes >= h.kvBytes);
  });

  test("a cache instance is reset per segment and reused", async () => {
    const cache = await createCache("f32", m.kvShape(32), { executor: m.executor });
    const a = await evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 32, nChunks: 3 }, cache);
    const b = await evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 32, nChunks: 3 }, f32());
    assert.equal(a.ppl, b.ppl);
    cache.dispose();
  });

  test("caches that store keys before RoPE get the model's frequencies from kvShape", async () => {
    const base = await evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 32, nChunks: 3 }, f32());
    // Budget above the segment length: nothing is evicted, cache positions equal absolute ones,
    // so un-rotating and re-rotating the keys must give the full cache's PPL (up to rounding).
    const spec = { codec: "f32", policy: { type: "sinks", sinks: 4, budget: 64, positions: "cache" } };
    const r = await evaluatePerplexity(
      m,
      tokens,
      { kind: "chunked", nCtx: 32, nChunks: 3, chunkSize: 4 },
      (s) => createCache(spec, s, { executor: m.executor }),
    );
    assert.ok(Math.abs(r.ppl - base.ppl) / base.ppl < 1e-4, `${r.ppl} vs ${base.ppl}`);
  });

  test("vocabs without add_bos keep each segment's first token (llama.cpp's add_bos = false)", async () => {
    const d = join(dir, "nobos");
    cpSync(join(dir, "tiny"), d, { recursive: true });
    const tc = JSON.parse(readFileSync(join(d, "tokenizer_config.json"), "utf8"));
    writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify({ ...tc, add_bos_token: false }));
    const nb = await loadModel(d, { executor: "ref" });
    try {
      assert.equal(m.tokenizer.addsBos, true);
      assert.equal(nb.tokenizer.addsBos, false);
      assert.notEqual(nb.tokenizer.encode("hi")[0], m.tokenizer.bosId);
      assert.equal(m.tokenizer.encode("hi")[0], m.tokenizer.bosId);
      const proto = { kind: "llamacpp", nCtx: 32, nChunks: 3 } as const;
      const withBos = tokens.map((t, i) => (i % 32 === 0 ? m.tokenizer.bosId! : t));
      const a = await evaluatePerplexity(nb, withBos, proto, (s) =>
        createCache("f32", s, { executor: nb.executor }),
      );
      const b = await evaluatePerplexity(m, tokens, proto, f32());
      const c = await evaluatePerplexity(nb, tokens, proto, (s) =>
        createCache("f32", s, { executor: nb.executor }),
      );
      assert.equal(a.ppl, b.ppl, "explicit BOS at segment starts == BOS replacement");
      assert.notEqual(c.ppl, b.ppl, "without add_bos the original first tokens are used");
    } finally {
      nb.dispose();
    }
  });

  test("more chunks than the text holds is a ConfigError", async () => {
    await assert.rejects(
      evaluatePerplexity(m, tokens, { kind: "llamacpp", nCtx: 64, nChunks: 4 }, f32()),
      (e: unknown) => e instanceof ConfigError && /need 256 tokens but the text has 200/.test(e.message),
    );
  });
});
