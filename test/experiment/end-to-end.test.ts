/**
 * End to end on a real (synthetic, few-KB) model: config file -> kvlab runner with the real
 * model runtime and perplexity protocol -> runs.jsonl -> tables and plot.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { evaluatePerplexity } from "../../src/eval/perplexity.ts";
import type { Progress } from "../../src/experiment/progress.ts";
import { runExperiment } from "../../src/experiment/runner.ts";
import { realDeps } from "../../src/experiment/runtime.ts";
import { loadConfig } from "../../src/experiment/schema.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";
import { exportResults } from "../../src/report/export.ts";
import { TABLE_FORMATS } from "../../src/report/formats.ts";

const quiet: Progress = { start() {}, runStart() {}, tokens() {}, runEnd() {}, note() {}, stop() {} };

test("kvlab run on a tiny synthetic model: metrics, KL, resume and reports", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-e2e-"));
  synthModel({ shape: "tiny", out: join(dir, "model"), seed: 3 });
  const text = "the quick brown fox jumps over the lazy dog. ".repeat(40);
  await writeFile(join(dir, "text.txt"), text);
  await writeFile(
    join(dir, "exp.yaml"),
    [
      "name: e2e",
      "model: model",
      "text: text.txt",
      "protocol: { type: chunked, ctx: 64, chunks: 2, chunkSize: 8 }",
      "executor: ref",
      "diagnostics: { attentionMass: true }",
      "caches:",
      "  - f16",
      "  - { name: int4, codec: { type: int4, group: 8 } }",
      "  - { name: window-16, policy: { type: window, budget: 16 } }",
    ].join("\n"),
  );
  const config = loadConfig(join(dir, "exp.yaml"));
  const outDir = join(dir, "results");
  const res = await runExperiment(config, realDeps, { outDir, progress: quiet });
  assert.deepEqual(
    res.ran.map((r) => [r.name, r.status, r.error]),
    [
      ["f32", "ok", undefined],
      ["f16", "ok", undefined],
      ["int4", "ok", undefined],
      ["window-16", "ok", undefined],
    ],
  );
  const [base, , int4, win] = res.records.map((r) => r.metrics!);
  // Scored positions: 2 segments x (64 - 1 - 32).
  assert.equal(base!.tokens, 2 * 31);
  // The baseline's NLL equals a direct evaluation with an f32 cache.
  const model = await loadModel(join(dir, "model"), { executor: "ref" });
  const direct = await evaluatePerplexity(
    model,
    model.tokenizer.encode(text, { addBos: true }),
    { kind: "chunked", nCtx: 64, chunkSize: 8, nChunks: 2 },
    (shape) => createCache("f32", shape, { executor: model.executor }),
  );
  model.dispose();
  assert.ok(Math.abs(base!.nll - direct.nll) < 1e-9);
  assert.ok(Math.abs(base!.klMean!) < 1e-6);
  assert.equal(base!.sameTop1, 1);
  assert.ok(int4!.klMean! > 0);
  assert.ok(win!.klMean! > 0);
  // Memory: the window keeps fewer tokens than the full f32 cache.
  assert.ok(win!.peakKvBytes < base!.peakKvBytes);
  // Attention mass kept: all of it with a full cache, less once the window evicts.
  assert.ok(Math.abs(base!.attentionMassKept!.mean - 1) < 1e-6);
  assert.ok(win!.attentionMassKept!.mean < 1 - 1e-6);
  // int4 asymmetric, groups of 8: 4 bits + an f16 scale and an f16 zero-point per 8 elements.
  assert.equal(int4!.bitsPerElement, 4 + 32 / 8);
  assert.equal(int4!.peakKvBytes, base!.peakKvBytes / 4);
  assert.equal(base!.compressionVsF16, 0.5);

  const again = await runExperiment(config, realDeps, { outDir, progress: quiet });
  assert.equal(again.ran.length, 0);

  await exportResults(outDir, TABLE_FORMATS, { records: again.records });
  const files = await readdir(outDir);
  for (const f of [
    "runs.jsonl",
    "table.md",
    "table.csv",
    "table.tex",
    "table.json",
    "ppl-vs-memory.svg",
    "ppl-vs-memory.png",
  ])
    assert.ok(files.includes(f), f);
  assert.match(await readFile(join(outDir, "table.md"), "utf8"), /\| window-16 \|/);
});
