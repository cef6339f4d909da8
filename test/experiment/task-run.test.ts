/**
 * `type: task` experiments end to end on the shipped model: config -> runner with the real
 * runtime -> runs.jsonl (accuracy per cell, the f32 run as reference) -> resume -> tables.
 * And the paired ΔPPL interval of perplexity runs.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import type { Progress } from "../../src/experiment/progress.ts";
import { runExperiment } from "../../src/experiment/runner.ts";
import { realDeps } from "../../src/experiment/runtime.ts";
import { loadConfig, validateConfig } from "../../src/experiment/schema.ts";
import { loadModel } from "../../src/model/load.ts";
import { formatTable } from "../../src/report/formats.ts";
import { toRows } from "../../src/report/rows.ts";
import { evaluateTask } from "../../src/tasks/evaluate.ts";
import { generateSamples } from "../../src/tasks/generate.ts";

const quiet: Progress = { start() {}, runStart() {}, tokens() {}, runEnd() {}, note() {}, stop() {} };
const MODEL = join(REPO_ROOT, "models/sotu-llama");

test("task experiment: runs, matches a direct evaluation, resumes, and tabulates accuracy", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-task-"));
  await writeFile(
    join(dir, "exp.yaml"),
    [
      "name: task-e2e",
      `model: ${MODEL}`,
      "protocol: { type: task, task: passkey, lengths: [160, 256], depths: [0, 1], samples: 2, query: agnostic, prefillChunk: 64 }",
      "caches:",
      "  - { name: window-32, policy: { type: window, budget: 32 } }",
    ].join("\n"),
  );
  const config = loadConfig(join(dir, "exp.yaml"));
  const outDir = join(dir, "results");
  const res = await runExperiment(config, realDeps, { outDir, progress: quiet });
  assert.deepEqual(
    res.ran.map((r) => [r.name, r.status, r.error]),
    [
      ["f32", "ok", undefined],
      ["window-32", "ok", undefined],
    ],
  );
  const [full, win] = res.records.map((r) => r.metrics!);
  assert.equal(full!.task!.total, 8);
  assert.equal(full!.task!.cells.length, 4);
  assert.equal(full!.klMean, undefined);
  // The window holds 32 tokens per KV head; the f32 cache the whole prompt.
  assert.ok(win!.peakKvBytes < full!.peakKvBytes / 3);
  // Same numbers as the library call with the same seed and protocol.
  const model = await loadModel(MODEL, { executor: config.executor });
  const samples = generateSamples(model.tokenizer, {
    task: "passkey",
    lengths: [160, 256],
    depths: [0, 1],
    samples: 2,
    seed: 0,
  });
  const direct = await evaluateTask(
    model,
    samples,
    (shape) =>
      createCache({ codec: "f32", policy: { type: "window", budget: 32 } }, shape, {
        executor: model.executor,
      }),
    { protocol: "agnostic", prefillChunk: 64 },
  );
  model.dispose();
  assert.deepEqual(
    win!.task!.samples.map((s) => s.output),
    direct.samples.map((s) => s.output),
  );
  assert.equal(win!.task!.accuracy, direct.accuracy);
  // Resume: nothing reruns.
  const again = await runExperiment(config, realDeps, { outDir, progress: quiet });
  assert.equal(again.ran.length, 0);
  assert.equal(again.skipped, 2);
  // Records survive the JSON round trip (NaN PPL -> null) and tabulate as accuracy.
  const lines = (await readFile(join(outDir, "runs.jsonl"), "utf8")).trim().split("\n");
  const recs = lines.map((l) => JSON.parse(l));
  const rows = toRows(recs);
  assert.equal(rows[0]!.ppl, null);
  assert.equal(rows[0]!.total, 8);
  const md = formatTable("md", rows, { experiment: "task-e2e" });
  assert.match(md, /accuracy/);
  assert.match(md, /\(\d\/8\)/);
  assert.doesNotMatch(md, /PPL/);
});

test("task protocol config errors name their field", () => {
  const base = { name: "t", model: MODEL, caches: ["f16"] };
  assert.throws(
    () => validateConfig({ ...base, protocol: { type: "task", task: "passkey", lengths: [8] } }, REPO_ROOT),
    /protocol\.lengths\[0\]/,
  );
  assert.throws(
    () => validateConfig({ ...base, protocol: { type: "task", task: "tldr", lengths: [256] } }, REPO_ROOT),
    /protocol\.task/,
  );
  assert.throws(
    () => validateConfig({ ...base, protocol: { type: "task", task: "needle", lengths: [256] } }, REPO_ROOT),
    /haystack/,
  );
  assert.throws(
    () => validateConfig({ ...base, protocol: { type: "llamacpp", ctx: 64 } }, REPO_ROOT),
    /text/,
  );
  const ok = validateConfig(
    { ...base, text: "builtin:sotu", protocol: { type: "task", task: "needle", lengths: [256] } },
    REPO_ROOT,
  );
  assert.ok(ok.textPath.endsWith("heldout.txt"));
  assert.equal(ok.protocol.type === "task" && ok.protocol.query, "agnostic");
});

test("perplexity runs carry a paired ΔPPL interval that covers the point difference", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-dnll-"));
  await writeFile(
    join(dir, "exp.yaml"),
    [
      "name: dnll",
      `model: ${MODEL}`,
      "text: builtin:sotu",
      "protocol: { type: chunked, ctx: 128, chunks: 12, chunkSize: 16 }",
      "caches: [{ name: w4, policy: { type: window, budget: 4 } }, f16]",
    ].join("\n"),
  );
  const config = loadConfig(join(dir, "exp.yaml"));
  const outDir = join(dir, "results");
  const res = await runExperiment(config, realDeps, { outDir, progress: quiet });
  const [base, w4, f16] = res.records.map((r) => r.metrics!);
  for (const m of [w4!, f16!]) {
    const d = m.ppl - base!.ppl;
    assert.ok(m.dPplInterval![0] <= d && d <= m.dPplInterval![1], `${d} outside ${m.dPplInterval}`);
    assert.equal(m.dNll!.blocks, Math.floor(base!.tokens / 32));
  }
  // A 4-token window damages the model: its interval excludes 0; f16's is far narrower.
  assert.ok(w4!.dPplInterval![0] > 0, `w4 interval ${w4!.dPplInterval}`);
  assert.ok(
    f16!.dPplInterval![1] - f16!.dPplInterval![0] < 0.1 * (w4!.dPplInterval![1] - w4!.dPplInterval![0]),
  );
  // Resume after the baseline files are gone from memory: a new int4 run still gets an interval.
  await writeFile(
    join(dir, "exp.yaml"),
    (await readFile(join(dir, "exp.yaml"), "utf8")).replace("f16]", "f16, int4]"),
  );
  const more = await runExperiment(loadConfig(join(dir, "exp.yaml")), realDeps, { outDir, progress: quiet });
  assert.equal(more.ran.length, 1);
  assert.ok(more.ran[0]!.metrics!.dPplInterval);
});
