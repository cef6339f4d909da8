/**
 * Merge rules of run files (src/distributed/merge.ts) and the runner's shard options, on the
 * fake runtime (no model): ok beats error across files, the latest line wins within a file,
 * equal results are one run, different results conflict, different code versions are flagged.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { mergeRunFiles, readRunFiles, resultKey } from "../../src/distributed/merge.ts";
import { inShard, shardTag } from "../../src/distributed/shard.ts";
import type { Progress } from "../../src/experiment/progress.ts";
import { runExperiment } from "../../src/experiment/runner.ts";
import { validateConfig } from "../../src/experiment/schema.ts";
import type { RunRecord } from "../../src/experiment/types.ts";
import { loadRecords } from "../../src/report/export.ts";
import { fakeDeps, rawConfig } from "../experiment/fake-runtime.ts";

const quiet: Progress = { start() {}, runStart() {}, tokens() {}, runEnd() {}, note() {}, stop() {} };

function rec(specHash: string, over: Partial<RunRecord> = {}, ppl = 10): RunRecord {
  return {
    experiment: "x",
    name: `run-${specHash}`,
    baseline: false,
    status: "ok",
    specHash,
    spec: {} as RunRecord["spec"],
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:00:01.000Z",
    wallSeconds: 1,
    kvlabVersion: "0.1.0",
    gitCommit: "abc",
    machine: {} as RunRecord["machine"],
    metrics: {
      ppl,
      nll: Math.log(ppl),
      tokensPerSecond: Math.random(),
      peakRssBytes: 1,
    } as RunRecord["metrics"],
    ...over,
  };
}

test("merge rules: duplicates kept once, ok beats error, latest line per file, conflicts and code versions", () => {
  const t = (s: number) => `2026-01-01T00:00:0${s}.000Z`;
  const m = mergeRunFiles([
    {
      file: "a",
      records: [
        rec("h1"),
        rec("h2", { status: "error", error: "boom", metrics: undefined, finishedAt: t(1) }),
        rec("h3", {}, 20),
        rec("h3", { finishedAt: t(5) }, 21), // a --force rerun in the same file: this line wins
        rec("h4", { finishedAt: t(2) }, 30),
        rec("h5"),
      ],
    },
    {
      file: "b",
      records: [
        rec("h1", { finishedAt: t(9) }), // same result, timings differ: a duplicate
        rec("h2", { finishedAt: t(3) }), // ok after an error elsewhere
        rec("h3", { finishedAt: t(6) }, 21),
        rec("h4", { finishedAt: t(4) }, 31), // different result: conflict
        rec("h5", { gitCommit: "def" }), // same result, other commit: flagged
      ],
    },
  ]);
  assert.deepEqual(
    m.records.map((r) => r.specHash),
    ["h1", "h2", "h3", "h5"],
  );
  assert.equal(m.records.find((r) => r.specHash === "h2")!.status, "ok");
  assert.deepEqual(
    m.conflicts.map((c) => [c.specHash, c.kind, c.candidates.map((x) => x.file)]),
    [["h4", "results", ["a", "b"]]],
  );
  assert.deepEqual(
    m.codeVersions.map((c) => c.specHash),
    ["h5"],
  );
  assert.equal(m.duplicates, 3); // h1, h3, h5
  const taken = mergeRunFiles(
    [
      { file: "a", records: [rec("h4", { finishedAt: t(2) }, 30)] },
      { file: "b", records: [rec("h4", { finishedAt: t(4) }, 31)] },
    ],
    { takeLatest: true },
  );
  assert.equal(taken.records[0]!.metrics!.ppl, 31);
  assert.equal(taken.conflicts.length, 1);
  // Timing metrics are not part of a result.
  assert.equal(resultKey(rec("h", {}, 5)), resultKey(rec("h", { wallSeconds: 9 }, 5)));
  assert.notEqual(resultKey(rec("h", {}, 5)), resultKey(rec("h", {}, 6)));
});

test("runner shards on the fake runtime: each shard its own files, together equal to the unsharded run", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-shard-fake-"));
  const config = validateConfig(rawConfig({ caches: ["f16", "int8", "int4", "int2", "bf16"] }), dir);
  const whole = await runExperiment(config, fakeDeps(), { outDir: join(dir, "whole"), progress: quiet });
  const out = join(dir, "sharded");
  const calls: string[] = [];
  for (let k = 0; k < 3; k++) {
    const shard = { index: k, count: 3 };
    const s = await runExperiment(config, fakeDeps({ calls }), {
      outDir: out,
      progress: quiet,
      tag: shardTag(shard),
      select: (h) => inShard(h, shard),
    });
    assert.ok(s.ran.every((r) => inShard(r.specHash, shard)));
  }
  // Every backend evaluated once, plus the baseline's distributions by each shard that needs KL and lacks the f32 run.
  const names = (await readdir(out)).sort();
  assert.ok(
    names.every((n) => /^(runs|baseline|baseline-nll)\.\d-of-3\.(jsonl|kvlb|f64)$/.test(n)),
    names.join(),
  );
  const merged = await loadRecords(out);
  const key = (rs: RunRecord[]) =>
    rs.map((r) => [r.specHash, resultKey(r)] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  assert.deepEqual(key(merged), key(whole.records));
  assert.equal(calls.filter((c) => c !== "f32").length, 5);
  // An unsharded rerun in the shard folder finds everything done.
  const again = await runExperiment(config, fakeDeps(), { outDir: out, progress: quiet });
  assert.equal(again.ran.length, 0);
  assert.equal(again.skipped, 6);
  const { files } = await readRunFiles([out]);
  assert.equal(files.length, (await readdir(out)).filter((n) => n.endsWith(".jsonl")).length);
  await writeFile(join(out, "runs.notes.txt"), "not a run file");
  assert.equal((await readRunFiles([out])).files.length, files.length);
});
