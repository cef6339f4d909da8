/**
 * The three files of stories260K (HF directory, llama2.c .bin + tok512.bin, GGUF) must load to
 * the same model: identical token ids and the same llama.cpp-protocol perplexity (1e-4).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { evaluatePerplexity } from "../../src/eval/perplexity.ts";
import type { LanguageModel, LlamaModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { sharedPath, skipUnlessShared } from "../shared.ts";

const FILES = {
  hf: "models/stories260K/hf",
  llama2c: "models/stories260K/stories260K.bin",
  gguf: "models/stories260K/stories260K.f32.gguf",
};
const skip =
  skipUnlessShared(FILES.hf) ||
  skipUnlessShared(FILES.llama2c) ||
  skipUnlessShared(FILES.gguf) ||
  skipUnlessShared("reference/stories260K-wikitext2.json");

describe("stories260K in three formats", { skip }, () => {
  const models: Record<string, LanguageModel> = {};
  let text = "";
  let firstIds: number[] = [];

  before(async () => {
    for (const [k, rel] of Object.entries(FILES)) models[k] = await loadModel(sharedPath(rel)!);
    // A 200k-character prefix keeps this fast; the whole file is checked in test/eval/stories260k.
    text = readFileSync(sharedPath("data/wikitext-2-raw/wiki.test.raw")!).toString("utf8").slice(0, 200_000);
    firstIds = JSON.parse(readFileSync(sharedPath("reference/stories260K-wikitext2.json")!, "utf8"))
      .tokenization.first_64_ids;
  });
  after(() => {
    for (const m of Object.values(models)) m.dispose();
  });

  test("same config", () => {
    const base = models.hf!.config;
    for (const k of ["llama2c", "gguf"]) {
      const c = models[k]!.config;
      for (const f of ["dim", "hiddenDim", "nLayers", "nHeads", "nKvHeads", "headDim", "vocabSize"] as const)
        assert.equal(c[f], base[f], `${k}.${f}`);
      assert.equal(c.tiedEmbeddings, true, `${k} tied`);
      assert.equal(models[k]!.tokenizer.addsBos, true, `${k} adds BOS`);
    }
  });

  test("identical token ids (and llama.cpp's first 64)", () => {
    const ids = Object.fromEntries(
      Object.entries(models).map(([k, m]) => [k, m.tokenizer.encode(text, { addBos: true })]),
    );
    assert.deepEqual(ids.hf!.slice(0, 64), firstIds);
    assert.deepEqual(ids.llama2c, ids.hf);
    assert.deepEqual(ids.gguf, ids.hf);
  });

  test("a released tokenizer rebuilds (each format from its own source) and encodes and decodes the same", () => {
    const sample = text.slice(0, 20_000);
    for (const [k, m] of Object.entries(models)) {
      const before = m.tokenizer.encode(sample, { addBos: true });
      assert.ok(m.tokenizer.release, `${k}: release`);
      m.tokenizer.release();
      const after = m.tokenizer.encode(sample, { addBos: true });
      assert.deepEqual(after, before, `${k}: ids after release`);
      assert.deepEqual(after.slice(0, 64), firstIds, `${k}: llama.cpp's first 64 ids`);
      m.tokenizer.release();
      assert.equal(
        m.tokenizer.decode(after.slice(1, 200)),
        m.tokenizer.decode(before.slice(1, 200)),
        `${k}: decode`,
      );
      assert.equal(m.tokenizer.vocabSize, m.config.vocabSize, `${k}: vocab size kept`);
    }
  });

  test("identical weights after the q/k permutation", () => {
    // llama2.c and GGUF store q/k interleaved; after loading they must equal HF's rotate-half rows.
    const ref = (models.hf as LlamaModel).weights;
    for (const k of ["llama2c", "gguf"]) {
      const w = (models[k] as LlamaModel).weights;
      for (let l = 0; l < ref.layers.length; l++) {
        assert.deepEqual(w.layers[l]!.wq, ref.layers[l]!.wq, `${k} layer ${l} wq`);
        assert.deepEqual(w.layers[l]!.wk, ref.layers[l]!.wk, `${k} layer ${l} wk`);
      }
    }
  });

  test("same llama.cpp-protocol PPL within 1e-4 (ctx 128, 20 chunks)", async () => {
    const ppl: Record<string, number> = {};
    for (const [k, m] of Object.entries(models)) {
      const ids = m.tokenizer.encode(text, { addBos: true });
      const r = await evaluatePerplexity(m, ids, { kind: "llamacpp", nCtx: 128, nChunks: 20 }, (s) =>
        createCache("f32", s, { executor: m.executor }),
      );
      ppl[k] = r.ppl;
    }
    for (const k of ["llama2c", "gguf"])
      assert.ok(Math.abs(ppl[k]! - ppl.hf!) / ppl.hf! < 1e-4, `${k} ${ppl[k]} vs hf ${ppl.hf}`);
  });
});
