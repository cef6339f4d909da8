/**
 * Combining run files by spec hash: the shards of a sweep (runs.K-of-N.jsonl), queue workers'
 * files (runs.worker-*.jsonl), a Redis snapshot (runs.redis.jsonl) and plain runs.jsonl folders.
 *
 * Rules (experiments/README.md, "Run-store layout and merge rules"):
 * - Within one file the latest ok record of a spec wins (a `--force` rerun replaces its
 *   earlier line), else its latest error, as a single folder always did.
 * - Across files, an ok record beats errors (the run was retried and succeeded elsewhere).
 * - Ok records of one spec from several files must agree on the results: status and every
 *   metric except the timing ones (tokensPerSecond, peakRssBytes). Identical results are one
 *   run seen twice (a shard rerun, a queue job redelivered): kept once. Different results are
 *   a conflict: refused, unless `takeLatest` keeps the latest finished one.
 * - Identical results from different code (kvlab version or git commit) are kept once and
 *   flagged, so a report is never silently built from mixed code.
 */
import { canonicalJson } from "../experiment/hash.ts";
import { latestPerSpec, listRunFiles, readRuns } from "../experiment/run-store.ts";
import type { RunRecord } from "../experiment/types.ts";

export interface RunFile {
  file: string;
  records: RunRecord[];
}

export interface Candidate {
  file: string;
  record: RunRecord;
}

export interface Conflict {
  specHash: string;
  name: string;
  /** results: ok records that disagree; code: equal results from different kvlab versions or commits. */
  kind: "results" | "code";
  candidates: Candidate[];
  /** The record kept (the latest finished), when the merge went on. */
  kept?: Candidate;
}

export interface MergeResult {
  /** One record per spec hash, in order of first appearance. */
  records: RunRecord[];
  /** Disagreeing results; the merge keeps the latest only when `takeLatest`. */
  conflicts: Conflict[];
  /** Equal results from different code versions (kept, flagged). */
  codeVersions: Conflict[];
  /** Records of an already-kept spec with identical results, dropped. */
  duplicates: number;
}

/** Read every run file of every folder (an empty folder, or one with no run files, contributes nothing). */
export async function readRunFiles(dirs: string[]): Promise<{ files: RunFile[]; badLines: number }> {
  const files: RunFile[] = [];
  let badLines = 0;
  for (const dir of dirs)
    for (const file of await listRunFiles(dir)) {
      const r = await readRuns(file);
      files.push({ file, records: r.records });
      badLines += r.badLines;
    }
  return { files, badLines };
}

/** What must agree between two records of one spec: status, error and every non-timing metric. */
export function resultKey(r: RunRecord): string {
  const { tokensPerSecond: _t, peakRssBytes: _m, ...metrics } = r.metrics ?? ({} as Record<string, unknown>);
  return canonicalJson({ status: r.status, error: r.error ?? null, metrics: r.metrics ? metrics : null });
}

function codeKey(r: RunRecord): string {
  return `${r.kvlabVersion} ${r.gitCommit ?? "(no git)"}`;
}

function latest(cands: Candidate[]): Candidate {
  let best = cands[0]!;
  for (const c of cands) if (c.record.finishedAt > best.record.finishedAt) best = c;
  return best;
}

export function mergeRunFiles(files: RunFile[], options: { takeLatest?: boolean } = {}): MergeResult {
  const bySpec = new Map<string, Candidate[]>();
  for (const f of files)
    for (const record of latestPerSpec(f.records)) {
      const list = bySpec.get(record.specHash);
      if (list) list.push({ file: f.file, record });
      else bySpec.set(record.specHash, [{ file: f.file, record }]);
    }
  const out: MergeResult = { records: [], conflicts: [], codeVersions: [], duplicates: 0 };
  for (const [specHash, all] of bySpec) {
    const ok = all.filter((c) => c.record.status === "ok");
    const cands = ok.length ? ok : all;
    const kept = latest(cands);
    const name = kept.record.name;
    if (new Set(cands.map((c) => resultKey(c.record))).size > 1) {
      out.conflicts.push({ specHash, name, kind: "results", candidates: cands, kept });
      if (!options.takeLatest) continue;
    } else if (new Set(cands.map((c) => codeKey(c.record))).size > 1)
      out.codeVersions.push({ specHash, name, kind: "code", candidates: cands, kept });
    out.duplicates += cands.length - 1;
    out.records.push(kept.record);
  }
  return out;
}

/** One line per candidate, for error messages and warnings. */
export function describeConflict(c: Conflict): string {
  const lines = c.candidates.map((x) => {
    const m = x.record.metrics;
    const what =
      x.record.status === "error"
        ? `error ${JSON.stringify(x.record.error)}`
        : m?.task
          ? `accuracy ${m.task.accuracy}`
          : `ppl ${m?.ppl}${m?.klMean !== undefined ? ` kld ${m.klMean}` : ""}`;
    return `    ${x.file}: ${what}, kvlab ${x.record.kvlabVersion} commit ${x.record.gitCommit ?? "(none)"}, finished ${x.record.finishedAt}`;
  });
  const head =
    c.kind === "results"
      ? `${c.name} (spec ${c.specHash}): different results for the same spec`
      : `${c.name} (spec ${c.specHash}): equal results from different code versions`;
  return [head, ...lines].join("\n");
}
