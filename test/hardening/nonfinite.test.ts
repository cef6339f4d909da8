/**
 * Issue 12, item 5: non-finite weights and logits never become a result. Weights are refused at
 * load (test/hardening/model-fuzz.test.ts); here NaN/Inf is put into a loaded model's weights
 * so that it reaches the logits or the cache, and the perplexity protocols must throw a
 * DataError instead of returning PPL NaN (or a finite PPL from zeroed NaN attention rows).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { DataError } from "../../src/errors.ts";
import { evaluatePerplexity } from "../../src/eval/perplexity.ts";
import type { LlamaModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { wasmSkip } from "../kernels/wasm-helpers.ts";
import { writeHfDir } from "./model-files.ts";

const root = mkdtempSync(join(tmpdir(), "kvlab-nonfinite-"));
after(() => rmSync(root, { recursive: true, force: true }));
const dir = writeHfDir(join(root, "m"));
const tokens = Array.from({ length: 64 }, (_, i) => 3 + ((i * 37) % 290));

type Poison = [string, (m: LlamaModel) => void];
const POISONS: Poison[] = [
  ["one Inf in k_proj", (m) => void (m.weights.layers[0]!.wk[3] = Number.POSITIVE_INFINITY)],
  ["one NaN in the embedding", (m) => void m.weights.embed.fill(Number.NaN, 8 * 40, 8 * 41)],
  ["all-NaN attention norm", (m) => void m.weights.layers[1]!.attnNorm.fill(Number.NaN)],
  ["NaN in lm_head", (m) => void (m.weights.lmHead[8 * 7] = Number.NaN)],
  ["-Inf in the final norm", (m) => void (m.weights.finalNorm[0] = Number.NEGATIVE_INFINITY)],
];

for (const executor of ["ref", "wasm"]) {
  test(`${executor}: non-finite values reaching logits or the cache are a DataError, not a PPL`, {
    skip: executor === "wasm" && wasmSkip,
  }, async () => {
    for (const protocol of [
      { kind: "llamacpp" as const, nCtx: 16 },
      { kind: "chunked" as const, nCtx: 16, chunkSize: 1 },
    ]) {
      const clean = (await loadModel(dir, { executor })) as LlamaModel;
      const ok = await evaluatePerplexity(clean, tokens, protocol, (s) =>
        createCache("f16", s, { executor: clean.executor }),
      );
      assert.ok(Number.isFinite(ok.ppl));
      clean.dispose();
      for (const [what, poison] of POISONS) {
        const m = (await loadModel(dir, { executor })) as LlamaModel;
        poison(m);
        await assert.rejects(
          evaluatePerplexity(m, tokens, protocol, (s) => createCache("f16", s, { executor: m.executor })),
          (e: unknown) => e instanceof DataError && /segment \d+/.test(e.message),
          `${what} (${protocol.kind})`,
        );
        m.dispose();
      }
    }
  });
}
