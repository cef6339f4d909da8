import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { appendRun, completed, latestPerSpec, readRuns } from "../../src/experiment/run-store.ts";
import type { RunRecord } from "../../src/experiment/types.ts";

function rec(specHash: string, status: "ok" | "error", name = specHash): RunRecord {
  return { specHash, status, name } as unknown as RunRecord;
}

test("appends one line per record and reads them back", async () => {
  const file = join(await mkdtemp(join(tmpdir(), "kvlab-store-")), "sub", "runs.jsonl");
  await appendRun(file, rec("a", "ok"));
  await appendRun(file, rec("b", "error"));
  const text = await readFile(file, "utf8");
  assert.equal(text.split("\n").length, 3); // two lines + trailing newline
  const { records, badLines } = await readRuns(file);
  assert.deepEqual(
    records.map((r) => r.specHash),
    ["a", "b"],
  );
  assert.equal(badLines, 0);
});

test("a torn last line (crash mid-write) is skipped and the next append starts a fresh line", async () => {
  const file = join(await mkdtemp(join(tmpdir(), "kvlab-store-")), "runs.jsonl");
  await appendRun(file, rec("a", "ok"));
  await appendFile(file, '{"specHash":"b","sta');
  await appendRun(file, rec("c", "ok"));
  const { records, badLines } = await readRuns(file);
  assert.deepEqual(
    records.map((r) => r.specHash),
    ["a", "c"],
  );
  assert.equal(badLines, 1);
});

test("completed keeps ok runs only; latestPerSpec prefers ok over later errors", () => {
  const rs = [rec("a", "error"), rec("a", "ok", "a-ok"), rec("b", "error"), rec("a", "error")];
  assert.deepEqual([...completed(rs).keys()], ["a"]);
  const latest = latestPerSpec(rs);
  assert.deepEqual(
    latest.map((r) => r.name),
    ["a-ok", "b"],
  );
});

test("reading a missing store gives no records", async () => {
  assert.deepEqual(await readRuns(join(tmpdir(), "does-not-exist", "runs.jsonl")), {
    records: [],
    badLines: 0,
  });
});
