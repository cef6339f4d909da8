/**
 * The Redis work queue (issue 18) with a real redis-server and real BullMQ: three `kvlab worker`
 * processes, one SIGKILLed mid-job; deterministic failures and a malformed payload; records kept
 * in Redis and exported; an unreachable Redis. Skipped, with the reason printed, when
 * redis-server is not installed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, copyFileSync } from "node:fs";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Queue } from "bullmq";
import {
  allRecordLines,
  BIN,
  CHILD_ENV,
  kvlab,
  REPO,
  type Result,
  SMALL_CACHES,
  skipUnlessRedis,
  smallConfig,
  startRedis,
  tableRows,
  tempDir,
} from "./helpers.ts";

const skip = skipUnlessRedis();
/** Short locks so a killed worker's job is retried within seconds (the default is 30 s). */
const LOCK = ["--lock-seconds", "5"];

interface Spawned {
  pid: number;
  out: () => string;
  done: Promise<Result>;
  kill: (sig: NodeJS.Signals) => void;
  onLine: (f: (line: string) => void) => void;
}

function spawnKvlab(args: string[]): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: CHILD_ENV });
  let stdout = "";
  let stderr = "";
  let partial = "";
  const listeners: ((line: string) => void)[] = [];
  child.stdout.on("data", (d) => {
    stdout += d;
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const l of lines) for (const f of listeners) f(l);
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  return {
    pid: child.pid!,
    out: () => stdout + stderr,
    done: new Promise((resolve) =>
      child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
    ),
    kill: (sig) => child.kill(sig),
    onLine: (f) => listeners.push(f),
  };
}

function queueAt(url: string): Queue {
  const u = new URL(url);
  return new Queue("kvlab", {
    connection: { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null },
  });
}

test("three workers, one SIGKILLed mid-job: the sweep completes, every run stored exactly once, table equals the single-process one", {
  skip,
}, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const dir = tempDir("queue");
  const config = smallConfig(dir, "queued", SMALL_CACHES);
  const whole = join(dir, "whole");
  const shared = join(dir, "shared");

  const ref = await kvlab(["run", config, "--out", whole, "--no-report"]);
  assert.equal(ref.code, 0, ref.stderr);
  assert.equal((await kvlab(["export", whole, "--format", "json", "--no-plot"])).code, 0);
  const expected = allRecordLines(whole)
    .map((r) => r.specHash)
    .sort();

  const push = await kvlab(["queue", "push", config, "--redis", redis.url, "--out", shared]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stdout, new RegExp(`queued: ${expected.length} job\\(s\\) pushed`));
  const again = await kvlab(["queue", "push", config, "--redis", redis.url, "--out", shared]);
  assert.match(again.stdout, new RegExp(`0 job\\(s\\) pushed .*${expected.length} already queued`));

  const workers = [0, 1, 2].map(() => spawnKvlab(["worker", "--redis", redis.url, "--until-empty", ...LOCK]));
  // Kill the first worker that starts a job, right after it says so (the job is then mid-run:
  // its compute thread is still loading the model).
  let victim: Spawned | undefined;
  const killed = await new Promise<{ w: Spawned; job: string }>((resolve) => {
    for (const w of workers)
      w.onLine((line) => {
        const m = /: started \(attempt \d+\/\d+, job (\S+)\)$/.exec(line);
        if (m && !victim) {
          victim = w;
          w.kill("SIGKILL");
          resolve({ w, job: m[1]! });
        }
      });
  });
  const results = await Promise.all(workers.map((w) => w.done));
  const survivors = workers.filter((w) => w !== killed.w);
  assert.equal((await killed.w.done).signal, "SIGKILL");
  for (const w of survivors) {
    const r = await w.done;
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
  const log = survivors.map((w) => w.out()).join("");

  // Every run exactly once, all ok, and nothing from the killed worker's half-done job.
  const lines = allRecordLines(shared);
  assert.deepEqual(lines.map((r) => r.specHash).sort(), expected, results.map((r) => r.stdout).join("\n"));
  assert.ok(lines.every((r) => r.status === "ok"));
  // The killed worker's job was completed by another worker.
  const q = queueAt(redis.url);
  t.after(() => q.close());
  const job = await q.getJob(killed.job);
  assert.ok(job?.finishedOn, `job ${killed.job} finished`);
  assert.notEqual(job!.returnvalue.worker, `${hostname()}:${killed.w.pid}`);
  assert.match(log, new RegExp(`job ${killed.job.replace(".", "\\.")}\\)`));
  console.log(
    `killed worker ${killed.w.pid} during job ${killed.job}; finished by ${job!.returnvalue.worker}${job!.returnvalue.alreadyStored ? " (already stored)" : ""}, stalled ${job!.stalledCounter} time(s)`,
  );

  const exp = await kvlab(["export", shared, "--format", "json", "--no-plot"]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.deepEqual(tableRows(shared), tableRows(whole));

  const status = await kvlab(["queue", "status", "--redis", redis.url]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`: ${expected.length} done, 0 running, 0 waiting, 0 failed`));
  // Pushing the finished sweep again adds nothing.
  const third = await kvlab(["queue", "push", config, "--redis", redis.url, "--out", shared]);
  assert.match(
    third.stdout,
    new RegExp(`0 job\\(s\\) pushed .*${expected.length} of ${expected.length} already stored`),
  );
});

test("a deterministic failure ends failed after its retries with its message, a malformed payload is refused, the rest completes; records kept in Redis export to tables", {
  skip,
}, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const dir = tempDir("queue-fail");
  const good = smallConfig(dir, "good", [
    "int8",
    "{ name: window-32, policy: { type: window, budget: 32 } }",
  ]);
  copyFileSync(join(REPO, "data", "sotu", "heldout.txt"), join(dir, "b.txt"));
  const bad = smallConfig(dir, "bad", ["int4"], "b.txt");
  for (const c of [good, bad]) {
    const r = await kvlab(["queue", "push", c, "--redis", redis.url, "--store", "redis"]);
    assert.equal(r.code, 0, r.stderr);
  }
  // After the push the text changes: on the worker these runs no longer have the pushed spec hash.
  appendFileSync(join(dir, "b.txt"), "\nOne more sentence that changes the text's hash.\n");
  const q = queueAt(redis.url);
  t.after(() => q.close());
  await q.add("junk", { hello: "not a kvlab job" }, { jobId: "junk-1", attempts: 3 });

  const w = await kvlab(["worker", "--redis", redis.url, "--until-empty", ...LOCK]);
  assert.equal(w.code, 0, w.stdout + w.stderr);
  assert.match(w.stdout, /job junk-1: FAILED: malformed job payload/);

  const status = await kvlab(["queue", "status", "--redis", redis.url, "--json"]);
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as {
    done: number;
    running: number;
    waiting: number;
    failed: number;
    failedJobs: { id: string; name: string; attempts: number; reason: string }[];
  };
  assert.deepEqual([s.done, s.running, s.waiting, s.failed], [3, 0, 0, 3], status.stdout); // good: 3 ok; bad: 2; junk
  const byId = new Map(s.failedJobs.map((j) => [j.id, j]));
  assert.equal(byId.get("junk-1")?.attempts, 1, "a malformed payload is not retried");
  for (const j of s.failedJobs.filter((x) => x.id.startsWith("bad."))) {
    assert.equal(j.attempts, 2, `${j.id} tried twice (push's default --attempts 2)`);
    assert.match(j.reason, /is not a run of .*bad\.yaml on this worker: its model or text files differ/);
  }
  assert.equal(s.failedJobs.filter((x) => x.id.startsWith("bad.")).length, 2);
  const human = await kvlab(["queue", "status", "--redis", redis.url]);
  assert.match(human.stdout, /: 3 done, 0 running, 0 waiting, 3 failed\n/);
  assert.match(human.stdout, /failed {2}junk-1 \(junk\) after 1 attempt\(s\): malformed job payload/);

  // The good sweep's records are in Redis (no shared folder): kvlab export copies them into a
  // folder and writes the same tables as a local run.
  const out = join(dir, "good");
  const exp = await kvlab(["export", out, "--redis", redis.url, "--format", "json", "--no-plot"]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.match(exp.stdout, /copied 3 record\(s\) of good from Redis into .*runs\.redis\.jsonl/);
  const local = join(dir, "good-local");
  assert.equal((await kvlab(["run", good, "--out", local, "--no-report"])).code, 0);
  assert.equal((await kvlab(["export", local, "--format", "json", "--no-plot"])).code, 0);
  assert.deepEqual(tableRows(out), tableRows(local));
  // Pushing again finds every good run stored in Redis; with the text as it was, the failed
  // jobs are queued again.
  copyFileSync(join(REPO, "data", "sotu", "heldout.txt"), join(dir, "b.txt"));
  const again = await kvlab(["queue", "push", good, bad, "--redis", redis.url, "--store", "redis"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(
    again.stdout,
    /good: 0 job\(s\) pushed .*3 of 3 already stored in redis hash kvlab:kvlab:records:good/,
  );
  assert.match(
    again.stdout,
    /bad: 2 job\(s\) pushed to queue kvlab at .* \(2 of them re-added after failing\)/,
  );
  const after = await kvlab(["queue", "status", "--redis", redis.url]);
  assert.match(after.stdout, /: 3 done, 0 running, 2 waiting, 1 failed\n/);
});

test("an unreachable or silent Redis is one error line and exit 1; a bad URL names --redis", async () => {
  const closed = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  const refused = await kvlab(["worker", "--redis", `redis://127.0.0.1:${closed}`]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    new RegExp(
      `^error: cannot reach Redis at redis://127\\.0\\.0\\.1:${closed} \\(--redis\\): connect ECONNREFUSED[^\\n]*\\n$`,
    ),
  );
  // A server that accepts the connection and never answers: the timeout ends it.
  const silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
  try {
    const port = (silent.address() as { port: number }).port;
    const r = await kvlab([
      "queue",
      "status",
      "--redis",
      `redis://127.0.0.1:${port}`,
      "--redis-timeout",
      "1",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cannot reach Redis at .*: no answer within 1s; .*--redis-timeout\n$/);
  } finally {
    silent.close();
  }
  const url = await kvlab(["queue", "push", "x.yaml", "--redis", "http://127.0.0.1:6379"]);
  assert.equal(url.code, 1);
  assert.match(url.stderr, /^error: --redis: .*expected a redis:\/\/ or rediss:\/\/ URL/);
  const conc = await kvlab(["worker", "--redis", "redis://127.0.0.1:1", "--concurrency", "0"]);
  assert.match(conc.stderr, /^error: --concurrency: expected an integer >= 1/);
});
