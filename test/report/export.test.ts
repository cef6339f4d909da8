import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { appendRun } from "../../src/experiment/run-store.ts";
import type { RunRecord } from "../../src/experiment/types.ts";
import { exportResults, loadRecords } from "../../src/report/export.ts";
import { toCsv, toMarkdown, toTex } from "../../src/report/formats.ts";
import { toRows } from "../../src/report/rows.ts";
import { record } from "./fixtures.ts";

const records = (): RunRecord[] => [
  record("f32", 128, 10, { baseline: true }),
  record('int4 "a",b', 16, 11),
  record("h2o_50%+int4", 8, 14),
];

test("markdown marks the baseline and shows dPPL; csv quotes; tex escapes", () => {
  const rows = toRows(records());
  const md = toMarkdown(rows, { experiment: "demo" });
  assert.match(md, /\| \*\*f32\*\* \(baseline\) \|/);
  assert.match(md, /\| \+1\.0000 \|/);
  const csv = toCsv(rows).split("\r\n");
  assert.equal(csv[0]!.split(",")[0], "backend");
  assert.ok(csv[2]!.startsWith('"int4 ""a"",b",false,ok,'));
  assert.equal(csv.length, 5); // header, 3 rows, trailing empty
  const tex = toTex(rows, { experiment: "demo" });
  assert.match(tex, /h2o\\_50\\%\+int4/);
  assert.match(tex, /f32\$\^\\dagger\$/);
});

test("markdown lists each record warning once, naming the backends that carry it", () => {
  const recs = records();
  const note = "keys: int4 group 32 is wider than head_dim 8; built one 8-wide group per row";
  recs[1]!.metrics!.warnings = [note];
  recs[2]!.metrics!.warnings = [note];
  const md = toMarkdown(toRows(recs), { experiment: "demo" });
  const lines = md.split("\n");
  assert.ok(lines.includes("Warnings:"));
  assert.equal(lines.filter((l) => l.startsWith("- ")).length, 1);
  assert.ok(lines.includes(`- ${note} (int4 "a",b, h2o_50%+int4)`), md);
  assert.ok(!toMarkdown(toRows(records()), { experiment: "demo" }).includes("Warnings:"));
});

test("loadRecords warns when one backend name has records of two specs (a changed config)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-export-"));
  const recs = records();
  const respecified = { ...recs[1]!, specHash: "f".repeat(16) };
  for (const r of [...recs, respecified]) await appendRun(join(dir, "runs.jsonl"), r);
  const warnings: string[] = [];
  const loaded = await loadRecords(dir, undefined, (m) => warnings.push(m));
  assert.equal(loaded.length, 4, "both specs' records are kept");
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /backend "int4 "a",b" has records of 2 different specs/);
  const quiet: string[] = [];
  const dir2 = await mkdtemp(join(tmpdir(), "kvlab-export-"));
  for (const r of records()) await appendRun(join(dir2, "runs.jsonl"), r);
  await loadRecords(dir2, undefined, (m) => quiet.push(m));
  assert.deepEqual(quiet, []);
});

test("exportResults writes every table format and the plot from runs.jsonl", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-export-"));
  for (const r of records()) await appendRun(join(dir, "runs.jsonl"), r);
  await exportResults(dir, ["md", "csv", "tex", "json"]);
  const files = (await readdir(dir)).sort();
  assert.deepEqual(files, [
    "ppl-vs-memory.png",
    "ppl-vs-memory.svg",
    "runs.jsonl",
    "table.csv",
    "table.json",
    "table.md",
    "table.tex",
  ]);
  const json = JSON.parse(await readFile(join(dir, "table.json"), "utf8"));
  assert.equal(json.rows.length, 3);
  assert.equal(json.rows[0].baseline, true);
  const svg = await readFile(join(dir, "ppl-vs-memory.svg"), "utf8");
  assert.match(svg, /^<svg/);
  assert.match(svg, /h2o_50%\+int4/); // one label per run
  const png = await readFile(join(dir, "ppl-vs-memory.png"));
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
});

test("exporting a folder without runs.jsonl is a user error", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-export-"));
  await assert.rejects(exportResults(dir, ["md"]), /runs\.jsonl not found/);
});
