/**
 * Write an experiment's reports from its runs.jsonl: table.{md,csv,tex,json} and
 * ppl-vs-memory.{svg,png} (task tables: accuracy-vs-memory.{svg,png} and depth-length.{svg,png}),
 * into the results folder itself.
 */
import { rename, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type * as vl from "vega-lite";
import { describeConflict, mergeRunFiles, readRunFiles } from "../distributed/merge.ts";
import { KvlabError } from "../errors.ts";
import { RUNS_FILE } from "../experiment/run-store.ts";
import type { RunRecord } from "../experiment/types.ts";
import { formatTable, type TableContext, type TableFormat } from "./formats.ts";
import { toRows } from "./rows.ts";

export const PLOT_BASENAME = "ppl-vs-memory";
/** Task tables: accuracy vs memory, and the depth x length heatmap per backend. */
export const ACCURACY_PLOT_BASENAME = "accuracy-vs-memory";
export const HEATMAP_BASENAME = "depth-length";

/** Write to a hidden temporary name beside the target, then rename: readers never see half a file. */
async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = join(file, "..", `.partial-${basename(file)}-${process.pid}`);
  await writeFile(tmp, data);
  await rename(tmp, file);
}

function caption(records: RunRecord[]): string | undefined {
  const r = records.find((x) => x.status === "ok") ?? records[0];
  if (!r) return undefined;
  const p = r.spec.protocol;
  const proto =
    p.type === "llamacpp"
      ? `llama.cpp perplexity protocol, ctx ${p.ctx}${p.chunks ? `, ${p.chunks} chunks` : ""}`
      : p.type === "chunked"
        ? `chunked prefill, ctx ${p.ctx}, chunk ${p.chunkSize}${p.chunks ? `, ${p.chunks} segments` : ""}${p.maxTokens ? `, ${p.maxTokens} tokens` : ""}`
        : `task ${p.task}${p.control ? " (control: fact left out)" : ""}, query-${p.query}, prefill chunk ${p.prefillChunk}, lengths ${p.lengths.join("/")}, depths ${p.depths.join("/")}, ${p.samples} samples per cell, greedy decoding`;
  const tokens = r.metrics && p.type !== "task" ? `, ${r.metrics.tokens} scored tokens` : "";
  const text = r.spec.text.ref ? `, ${p.type === "task" ? "haystack" : "text"} ${r.spec.text.ref}` : "";
  return `Model ${r.spec.model.ref}${text}, ${proto}${tokens}, executor ${r.spec.executor}.`;
}

export interface ExportResult {
  files: string[];
}

/**
 * The records a report shows: every run file in the folder (runs.jsonl, and runs.*.jsonl from
 * shards, queue workers or a Redis snapshot) combined by spec hash (src/distributed/merge.ts).
 * Different results for one spec in two files are refused, naming them; equal results from
 * different code versions are reported through `warn` and kept.
 */
export async function loadRecords(
  dir: string,
  experiment?: string,
  warn: (message: string) => void = (m) => console.error(m),
): Promise<RunRecord[]> {
  const { files } = await readRunFiles([dir]);
  if (files.length === 0)
    throw new KvlabError(`${join(dir, RUNS_FILE)} not found: pass a results folder written by \`kvlab run\``);
  const merged = mergeRunFiles(
    files.map((f) => ({
      file: f.file,
      records: experiment ? f.records.filter((r) => r.experiment === experiment) : f.records,
    })),
  );
  if (merged.conflicts.length)
    throw new KvlabError(
      `${dir}: ${merged.conflicts.length} run(s) have different results in different run files:\n${merged.conflicts.map(describeConflict).join("\n")}\nkeep one: delete the stale file, or \`kvlab merge ${dir} --out <new-folder> --take-latest\``,
    );
  for (const c of merged.codeVersions) warn(`warning: ${describeConflict(c)}`);
  // A backend whose spec changed (a new option, a config edit) keeps its old records under the
  // old spec hash; both are shown, since only the config knows which one is current.
  const hashesByName = new Map<string, Set<string>>();
  for (const r of merged.records)
    hashesByName.set(r.name, (hashesByName.get(r.name) ?? new Set()).add(r.specHash));
  for (const [name, hashes] of hashesByName)
    if (hashes.size > 1)
      warn(
        `warning: ${dir}: backend "${name}" has records of ${hashes.size} different specs (${[...hashes].join(", ")}), all shown; \`kvlab run <config>\` writes the table of the config's current specs`,
      );
  return merged.records;
}

/**
 * Export tables (the formats asked for) and, when `plot`, the SVG and PNG plots.
 * `keep` limits rows to the given spec hashes (the runs of the current config).
 */
export async function exportResults(
  dir: string,
  formats: TableFormat[],
  options: { plot?: boolean; records?: RunRecord[] } = {},
): Promise<ExportResult> {
  const records = options.records ?? (await loadRecords(dir));
  if (records.length === 0) throw new KvlabError(`${join(dir, RUNS_FILE)} has no runs to export`);
  const rows = toRows(records);
  const experiment = records[0]!.experiment;
  const captionText = caption(records);
  const ctx: TableContext = { experiment, ...(captionText ? { caption: captionText } : {}) };
  const files: string[] = [];
  for (const f of formats) {
    const file = join(dir, `table.${f}`);
    await writeAtomic(file, formatTable(f, rows, ctx));
    files.push(file);
  }
  if (options.plot ?? true) {
    // Imported here, not at the top: vega, vega-lite and resvg are ~49 MiB of every
    // command's resident memory (kvlab ppl included) and only exporting needs them.
    const { accuracyPlotSpec, heatmapSpec, plotSpec, renderSvg, svgToPng } = await import("./plot.ts");
    // A task table (accuracy, no PPL): accuracy vs memory and where each policy loses the fact.
    const isTask =
      rows.some((r) => r.accuracy !== null) || records.some((r) => r.spec.protocol.type === "task");
    const plots: [string, vl.TopLevelSpec][] = isTask
      ? [
          [ACCURACY_PLOT_BASENAME, accuracyPlotSpec(rows, `${experiment}: accuracy vs KV cache memory`)],
          [HEATMAP_BASENAME, heatmapSpec(rows, `${experiment}: accuracy by fact depth and prompt length`)],
        ]
      : [[PLOT_BASENAME, plotSpec(rows, `${experiment}: quality vs KV cache memory`)]];
    for (const [name, spec] of plots) {
      const svg = await renderSvg(spec);
      const svgFile = join(dir, `${name}.svg`);
      const pngFile = join(dir, `${name}.png`);
      await writeAtomic(svgFile, svg);
      await writeAtomic(pngFile, svgToPng(svg));
      files.push(svgFile, pngFile);
    }
  }
  return { files };
}
