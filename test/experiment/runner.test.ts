import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import type { Progress } from "../../src/experiment/progress.ts";
import { readRuns, runsFile } from "../../src/experiment/run-store.ts";
import { BASELINE_FILE, runExperiment } from "../../src/experiment/runner.ts";
import { validateConfig } from "../../src/experiment/schema.ts";
import { baseLogits, fakeDeps, rawConfig, runLogits, SCORED } from "./fake-runtime.ts";

const quiet: Progress = { start() {}, runStart() {}, tokens() {}, runEnd() {}, note() {}, stop() {} };
const tmp = () => mkdtemp(join(tmpdir(), "kvlab-run-"));

/** Independent KL(P||Q) from logits, written out here rather than imported. */
function klFromLogits(p: Float32Array, q: Float32Array): number {
  const lse = (x: Float32Array) => Math.log(x.reduce((s, v) => s + Math.exp(v), 0));
  const lp = Array.from(p, (v) => v - lse(p));
  const lq = Array.from(q, (v) => v - lse(q));
  return lp.reduce((s, v, i) => s + Math.exp(v) * (v - lq[i]!), 0);
}

test("runs every backend once, baseline first, with KL against the stored baseline", async () => {
  const outDir = join(await tmp(), "not", "yet", "there");
  const config = validateConfig(rawConfig(), "/");
  const calls: string[] = [];
  const res = await runExperiment(config, fakeDeps({ calls }), { outDir, progress: quiet });
  assert.equal(res.ran.length, 4);
  assert.equal(calls[0], config.caches[0]!.spec.name);
  assert.ok((await readdir(outDir)).includes(BASELINE_FILE));
  const [base, f16, , int4] = res.records;
  assert.ok(base!.baseline && base!.status === "ok");
  assert.ok(Math.abs(base!.metrics!.klMean!) < 1e-6);
  assert.equal(base!.metrics!.sameTop1, 1);
  // With topK = vocab the stored KL is exact: compare with an independent computation.
  const spec = config.caches[3]!.spec;
  let expected = 0;
  for (let i = 0; i < SCORED; i++) expected += klFromLogits(baseLogits(i), runLogits(spec, i));
  expected /= SCORED;
  assert.ok(Math.abs(int4!.metrics!.klMean! - expected) < 1e-5, `${int4!.metrics!.klMean} vs ${expected}`);
  assert.ok(int4!.metrics!.klMean! > f16!.metrics!.klMean!);
  // Record carries provenance and a spec hash.
  assert.match(int4!.specHash, /^[0-9a-f]{16}$/);
  assert.equal(int4!.spec.model.hash, "m".repeat(64));
  assert.equal(typeof int4!.kvlabVersion, "string");
  assert.ok(int4!.machine.cpus > 0);
  // f16 compression against f16 bytes at segmentTokens (2 layers * 2 heads * 8 dims * 32 tokens * 2 * 2 bytes).
  assert.equal(int4!.metrics!.f16Bytes, 2 * 2 * 8 * 32 * 2 * 2);
  // int4's group of 32 is wider than these 8-dim heads: the record says what was built.
  assert.equal(int4!.spec.cache.keys.group, 32);
  assert.ok(int4!.metrics!.warnings?.some((w) => /^keys: int4 group 32 is wider than head_dim 8/.test(w)));
  assert.equal(f16!.metrics!.warnings, undefined);
});

test("a second run skips complete runs; --force reruns them", async () => {
  const outDir = await tmp();
  const config = validateConfig(rawConfig(), "/");
  await runExperiment(config, fakeDeps(), { outDir, progress: quiet });
  const calls: string[] = [];
  const again = await runExperiment(config, fakeDeps({ calls }), { outDir, progress: quiet });
  assert.equal(again.ran.length, 0);
  assert.equal(again.skipped, 4);
  assert.deepEqual(calls, []);
  const forced = await runExperiment(config, fakeDeps({ calls }), { outDir, progress: quiet, force: true });
  assert.equal(forced.ran.length, 4);
  assert.equal((await readRuns(runsFile(outDir))).records.length, 8);
});

test("an errored run is recorded with its message and the sweep goes on; a rerun retries it", async () => {
  const outDir = await tmp();
  const config = validateConfig(rawConfig(), "/");
  const failing = config.caches[2]!.spec.name;
  const res = await runExperiment(config, fakeDeps({ failNames: [failing] }), { outDir, progress: quiet });
  assert.deepEqual(
    res.ran.map((r) => r.status),
    ["ok", "ok", "error", "ok"],
  );
  assert.match(res.ran[2]!.error!, /fake failure/);
  const calls: string[] = [];
  const retry = await runExperiment(config, fakeDeps({ calls }), { outDir, progress: quiet });
  assert.deepEqual(calls, [failing]);
  assert.equal(retry.records.find((r) => r.name === failing)!.status, "ok");
});

test("a missing baseline file (fresh clone) is recomputed without a new baseline record", async () => {
  const outDir = await tmp();
  const config = validateConfig(rawConfig(), "/");
  await runExperiment(validateConfig(rawConfig({ caches: ["f16"] }), "/"), fakeDeps(), {
    outDir,
    progress: quiet,
  });
  await rm(join(outDir, BASELINE_FILE));
  const res = await runExperiment(config, fakeDeps(), { outDir, progress: quiet });
  assert.equal(res.ran.length, 2); // int8, int4
  assert.ok(res.ran.every((r) => r.metrics!.klMean! > 0));
});

test("killed mid-sweep (SIGKILL), a rerun completes only the missing runs", async () => {
  const outDir = await tmp();
  const config = validateConfig(rawConfig(), "/");
  const killAt = config.caches[2]!.spec.name;
  const fixture = join(import.meta.dirname, "fixtures", "crash-runner.ts");
  await assert.rejects(
    promisify(execFile)(process.execPath, ["--import", "tsx", fixture, outDir, killAt]),
    (err: { signal?: string }) => err.signal === "SIGKILL",
  );
  const before = (await readRuns(runsFile(outDir))).records;
  assert.deepEqual(
    before.map((r) => r.name),
    config.caches.slice(0, 2).map((c) => c.spec.name),
  );
  const calls: string[] = [];
  const res = await runExperiment(config, fakeDeps({ calls }), { outDir, progress: quiet });
  assert.deepEqual(
    calls,
    config.caches.slice(2).map((c) => c.spec.name),
  );
  assert.equal(res.records.length, 4);
  assert.ok(res.records.every((r) => r.status === "ok"));
});
