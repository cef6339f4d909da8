import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { appendRun } from "../../src/experiment/run-store.ts";
import type { RunRecord, TaskMetrics } from "../../src/experiment/types.ts";
import { exportResults } from "../../src/report/export.ts";
import { accuracyPlotSpec, heatmapSpec, renderSvg, svgToPng } from "../../src/report/plot.ts";
import type { TableRow } from "../../src/report/rows.ts";
import { accuracyOf, type TaskCell } from "../../src/tasks/metrics.ts";
import { record } from "./fixtures.ts";

const LENGTHS = [128, 256];
const DEPTHS = [0, 0.5, 1];
const N = 4;

/** Cells with `correct(length, depth)` of N right answers each. */
function cells(kib: number, correct: (length: number, depth: number) => number): TaskCell[] {
  return LENGTHS.flatMap((length) =>
    DEPTHS.map((depth) => ({
      length,
      depth,
      ...accuracyOf(correct(length, depth), N),
      meanAnswerProb: 0.5,
      medianAnswerRank: 1,
      kvBytes: (kib * 1024 * length) / 256,
    })),
  );
}

/** Three backends whose every cell has a distinct "k/n" pattern the SVG must show. */
const BACKENDS: [string, number, (l: number, d: number) => number, boolean][] = [
  ["f32", 64, () => 4, true],
  ["int4", 16, (l) => (l === 256 ? 3 : 4), false],
  ["window_25%", 16, (l, d) => (d === 1 ? 4 : l === 128 ? 1 : 0), false],
];

function row(backend: string, kib: number, cs: TaskCell[], baseline: boolean): TableRow {
  const correct = cs.reduce((a, c) => a + c.correct, 0);
  const total = cs.reduce((a, c) => a + c.total, 0);
  const acc = accuracyOf(correct, total);
  return {
    backend,
    baseline,
    status: "ok",
    bitsPerElement: 8,
    peakKvBytes: kib * 1024,
    compressionVsF16: 32 / kib,
    ppl: null,
    dPpl: null,
    dPplLo: null,
    dPplHi: null,
    dNllZ: null,
    nll: null,
    klMean: null,
    klP99: null,
    sameTop1: null,
    tokens: null,
    tokensPerSecond: 100,
    fallbacks: 0,
    attentionMassKept: null,
    accuracy: acc.accuracy,
    accuracyLo: acc.interval[0],
    accuracyHi: acc.interval[1],
    correct,
    total,
    meanAnswerProb: 0.5,
    taskCells: cs,
    warnings: [],
    specHash: backend,
  };
}

const rows = (): TableRow[] => BACKENDS.map(([b, kib, f, base]) => row(b, kib, cells(kib, f), base));

/** Every "k/n" text of every backend's cells. */
const cellTexts = () => [
  ...new Set(BACKENDS.flatMap(([, kib, f]) => cells(kib, f).map((c) => `${c.correct}/${c.total}`))),
];

const isPng = (png: Buffer) =>
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test("accuracy vs memory: one labelled point per backend, renders to SVG and PNG", async () => {
  const svg = await renderSvg(accuracyPlotSpec(rows(), "demo: accuracy vs KV cache memory"));
  assert.match(svg, /^<svg/);
  for (const [b] of BACKENDS) assert.ok(svg.includes(`>${b}<`), `label ${b}`);
  assert.match(svg, /accuracy/);
  assert.match(svg, /100%/); // the y axis is in percent
  isPng(svgToPng(svg));
});

test("accuracy vs memory: the upper-left Pareto front and the Wilson bars are in the spec", () => {
  const spec = accuracyPlotSpec(rows(), "t") as unknown as {
    data: { values: { backend: string; front: boolean; y: number; lo: number; hi: number }[] };
  };
  const pts = spec.data.values;
  const by = (b: string) => pts.find((p) => p.backend === b)!;
  // f32 (most memory, 100%) and int4 (least memory, best accuracy there) are on the front;
  // window_25% has as little memory as int4 but lower accuracy.
  assert.equal(by("f32").front, true);
  assert.equal(by("int4").front, true);
  assert.equal(by("window_25%").front, false);
  for (const p of pts) assert.ok(p.lo <= p.y && p.y <= p.hi && p.lo >= 0 && p.hi <= 100, p.backend);
});

test("depth x length heatmap: one panel per backend with each cell's correct/total", async () => {
  const svg = await renderSvg(heatmapSpec(rows(), "demo: accuracy by depth and length"));
  assert.match(svg, /^<svg/);
  for (const [b] of BACKENDS) assert.ok(svg.includes(b), `panel ${b}`);
  for (const t of cellTexts()) assert.ok(svg.includes(`>${t}<`), `cell text ${t}`);
  // Lengths on y, depths (as percent) on x.
  for (const l of LENGTHS) assert.ok(svg.includes(`>${l}<`), `length ${l}`);
  for (const d of ["0%", "50%", "100%"]) assert.ok(svg.includes(`>${d}<`), `depth ${d}`);
  isPng(svgToPng(svg));
});

test("depth x length heatmap: one fixed 0..1 colour scale, cells of an empty cell grey", () => {
  const rs = rows();
  rs[1]!.taskCells![0] = { ...rs[1]!.taskCells![0]!, ...accuracyOf(0, 0) };
  const spec = heatmapSpec(rs, "t") as unknown as {
    data: { values: { backend: string; accuracy: number | null; text: string }[] };
    resolve: { scale: { color: string } };
    spec: { layer: { encoding: { color?: { scale?: { domain: number[] } } } }[] };
  };
  assert.equal(spec.resolve.scale.color, "shared");
  const domains = spec.spec.layer.map((l) => l.encoding.color?.scale?.domain).filter(Boolean);
  assert.deepEqual(domains, [[0, 1]]);
  const empty = spec.data.values.find((v) => v.backend === "int4" && v.text === "0/0");
  assert.equal(empty?.accuracy, null);
});

/** A task run record: the report fixture's record with metrics.task (TaskMetrics) and no PPL. */
function taskRecord(name: string, kib: number, cs: TaskCell[], baseline: boolean): RunRecord {
  const r = record(name, kib, Number.NaN, { baseline });
  const correct = cs.reduce((a, c) => a + c.correct, 0);
  const total = cs.reduce((a, c) => a + c.total, 0);
  const task: TaskMetrics = {
    task: "passkey",
    ...accuracyOf(correct, total),
    byDepth: {},
    byLength: {},
    cells: cs,
    kvBytes: kib * 1024,
    kvBytesByLength: {},
    meanAnswerProb: 0.5,
    medianAnswerRank: 1,
    query: "agnostic",
    prefillChunk: 64,
    samples: [],
  };
  return {
    ...r,
    spec: {
      ...r.spec,
      protocol: {
        type: "task",
        task: "passkey",
        lengths: LENGTHS,
        depths: DEPTHS,
        samples: N,
        query: "agnostic",
        prefillChunk: 64,
      },
    },
    metrics: {
      ...r.metrics!,
      ppl: Number.NaN,
      nll: Number.NaN,
      klMean: null,
      klP99: null,
      sameTop1: null,
      task,
    },
  } as unknown as RunRecord;
}

test("exportResults on task runs writes the accuracy and depth x length plots, not the ppl plot", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-task-export-"));
  for (const [b, kib, f, base] of BACKENDS)
    await appendRun(join(dir, "runs.jsonl"), taskRecord(b, kib, cells(kib, f), base));
  const { files } = await exportResults(dir, ["md"]);
  const names = (await readdir(dir)).sort();
  assert.deepEqual(names, [
    "accuracy-vs-memory.png",
    "accuracy-vs-memory.svg",
    "depth-length.png",
    "depth-length.svg",
    "runs.jsonl",
    "table.md",
  ]);
  assert.equal(files.length, 5);
  const heat = await readFile(join(dir, "depth-length.svg"), "utf8");
  for (const [b] of BACKENDS) assert.ok(heat.includes(b), b);
  for (const t of cellTexts()) assert.ok(heat.includes(`>${t}<`), t);
  const acc = await readFile(join(dir, "accuracy-vs-memory.svg"), "utf8");
  for (const [b] of BACKENDS) assert.ok(acc.includes(`>${b}<`), b);
  isPng(await readFile(join(dir, "accuracy-vs-memory.png")));
  isPng(await readFile(join(dir, "depth-length.png")));
});
