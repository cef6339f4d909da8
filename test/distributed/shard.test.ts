/**
 * Static sharding (issue 18): `kvlab run --shard K/N` as separate processes, through the Slurm
 * and Kubernetes recipes in tools/cluster/, merged by `kvlab export` / `kvlab merge`, equals the
 * unsharded run; rerunning a shard adds nothing; conflicting results are refused.
 */
import assert from "node:assert/strict";
import { cpSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { inShard, parseShard, shardOf } from "../../src/distributed/shard.ts";
import { ConfigError } from "../../src/errors.ts";
import {
  allRecordLines,
  CHILD_ENV,
  kvlab,
  REPO,
  runProcess,
  SMALL_CACHES,
  smallConfig,
  tableRows,
  tempDir,
} from "./helpers.ts";

test("parseShard takes K/N with 0 <= K < N and names --shard otherwise", () => {
  assert.deepEqual(parseShard("2/3"), { index: 2, count: 3 });
  assert.deepEqual(parseShard(" 0 / 1 "), { index: 0, count: 1 });
  for (const [bad, msg] of [
    ["3/2", /--shard: 3\/2: K must be between 0 and 1/],
    ["3/3", /K must be between 0 and 2 .*--array=0-2/],
    ["0/0", /N must be at least 1/],
    ["-1/2", /expected K\/N/],
    ["1", /expected K\/N/],
    ["a/b", /expected K\/N/],
    ["1.5/3", /expected K\/N/],
  ] as const)
    assert.throws(
      () => parseShard(bad),
      (e: unknown) => e instanceof ConfigError && msg.test(e.message),
      bad,
    );
});

test("every spec hash is in exactly one shard, and its shard depends only on the hash and N", () => {
  const hashes = Array.from({ length: 200 }, (_, i) =>
    (BigInt(i) * 0x9e3779b97f4a7c15n).toString(16).padStart(16, "0").slice(-16),
  );
  for (const n of [1, 2, 3, 7]) {
    const sizes = new Array<number>(n).fill(0);
    for (const h of hashes) {
      const owners = Array.from({ length: n }, (_, k) => k).filter((k) => inShard(h, { index: k, count: n }));
      assert.equal(owners.length, 1);
      assert.equal(owners[0], shardOf(h, n));
      sizes[owners[0]!]!++;
    }
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      hashes.length,
    );
  }
  // Fixed values: a change here would reshuffle every existing sharded sweep.
  assert.equal(shardOf("ffffffffffffffff", 3), Number(0xffffffffffffffffn % 3n));
  assert.equal(shardOf("0000000000000005", 3), 2);
});

test("3 shards as separate processes (Slurm and Kubernetes recipes) merge to the unsharded run; rerun adds nothing; conflicts are refused", async () => {
  const dir = tempDir("shard");
  const config = smallConfig(dir, "shardy", SMALL_CACHES);
  const whole = join(dir, "whole");
  const sharded = join(dir, "sharded");

  // The reference: one process, every run.
  const ref = await kvlab(["run", config, "--out", whole, "--no-report"]);
  assert.equal(ref.code, 0, ref.stderr);
  assert.equal((await kvlab(["export", whole, "--format", "json", "--no-plot"])).code, 0);

  // Shards 0 and 1 through the Slurm array script, shard 2 through the Indexed Job's command,
  // all three at once, as a scheduler would start them.
  const slurm = join(REPO, "tools", "cluster", "slurm-shards.sbatch");
  const job = parseYaml(readFileSync(join(REPO, "tools", "cluster", "k8s-indexed-job.yaml"), "utf8"));
  assert.equal(job.spec.completionMode, "Indexed");
  const container = job.spec.template.spec.containers[0];
  const env = Object.fromEntries(
    (container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]),
  );
  assert.equal(Number(env.KVLAB_SHARDS), job.spec.completions, "KVLAB_SHARDS must equal spec.completions");
  assert.equal(container.command[0], "sh");
  const runs = await Promise.all([
    ...[0, 1].map((k) =>
      runProcess("bash", [slurm, config, sharded], {
        env: {
          ...CHILD_ENV,
          SLURM_ARRAY_TASK_ID: String(k),
          SLURM_ARRAY_TASK_COUNT: "3",
          SLURM_SUBMIT_DIR: REPO,
        },
      }),
    ),
    runProcess(container.command[0], container.command.slice(1), {
      env: {
        ...CHILD_ENV,
        ...env,
        KVLAB_CONFIG: config,
        KVLAB_OUT: sharded,
        KVLAB_SHARDS: "3",
        JOB_COMPLETION_INDEX: "2",
      },
    }),
  ]);
  for (const r of runs) assert.equal(r.code, 0, r.stdout + r.stderr);
  // Each shard wrote only its own file; together they hold every run exactly once.
  const lines = allRecordLines(sharded);
  const expected = allRecordLines(whole)
    .map((r) => r.specHash)
    .sort();
  assert.deepEqual(lines.map((r) => r.specHash).sort(), expected);
  for (const r of lines) assert.equal(r.file, `runs.${shardOf(r.specHash, 3)}-of-3.jsonl`);

  const exp = await kvlab(["export", sharded, "--format", "json", "--no-plot"]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.deepEqual(tableRows(sharded), tableRows(whole));

  // Rerunning a shard finds its runs done and appends nothing.
  const sizes = () =>
    ["0", "1", "2"].map((k) => {
      try {
        return statSync(join(sharded, `runs.${k}-of-3.jsonl`)).size;
      } catch {
        return 0;
      }
    });
  const before = sizes();
  const again = await kvlab(["run", config, "--out", sharded, "--shard", "1/3"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /0 run\(s\) to do/);
  assert.deepEqual(sizes(), before);

  // kvlab merge: the unsharded folder and the shard files hold the same results: kept once each.
  const merged = join(dir, "merged");
  const m = await kvlab(["merge", whole, sharded, "--out", merged, "--no-report"]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(
    m.stdout,
    new RegExp(`${expected.length} run\\(s\\), ${expected.length} duplicate\\(s\\) dropped, 0 conflict`),
  );
  assert.equal(allRecordLines(merged).length, expected.length);
  // --out must be a new folder.
  const into = await kvlab(["merge", sharded, "--out", merged]);
  assert.equal(into.code, 1);
  assert.match(into.stderr, /^error: --out: .*already holds runs\.jsonl/);

  // A conflict: the same spec with a different result in a second file of the folder.
  const tampered = join(dir, "tampered");
  cpSync(sharded, tampered, { recursive: true });
  const shard0 = join(tampered, "runs.0-of-3.jsonl");
  const first = JSON.parse(readFileSync(shard0, "utf8").split("\n")[0]!);
  first.metrics.ppl += 1;
  first.finishedAt = new Date(Date.parse(first.finishedAt) + 1000).toISOString();
  writeFileSync(join(tampered, "runs.jsonl"), `${JSON.stringify(first)}\n`);
  const bad = await kvlab(["export", tampered, "--no-plot"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: .*1 run\(s\) have different results in different run files/);
  assert.match(bad.stderr, new RegExp(`spec ${first.specHash}`));
  assert.match(bad.stderr, /runs\.0-of-3\.jsonl/);
  const refused = await kvlab(["merge", tampered, "--out", join(dir, "m2"), "--no-report"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /1 conflict\(s\), nothing written/);
  const latest = await kvlab(["merge", tampered, "--out", join(dir, "m3"), "--no-report", "--take-latest"]);
  assert.equal(latest.code, 0, latest.stderr);
  assert.match(latest.stderr, /warning: kept the latest/);
  const kept = readFileSync(join(dir, "m3", "runs.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .find((r) => r.specHash === first.specHash);
  assert.equal(kept.metrics.ppl, first.metrics.ppl);
});
