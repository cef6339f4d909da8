/**
 * results/<experiment>/runs.jsonl: one JSON line per finished run (ok or errored).
 *
 * Appends are atomic in practice: each record is one Buffer written by one appendFile (O_APPEND,
 * a single write), so a crash leaves at most one truncated last line, which the reader skips
 * and the next append starts on a fresh line. Nothing is ever rewritten in place, so earlier
 * results cannot be lost.
 */
import { appendFile, mkdir, open, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { RunRecord } from "./types.ts";

export interface LoadedRuns {
  records: RunRecord[];
  /** Lines that did not parse (a crash mid-write); reported, never fatal. */
  badLines: number;
}

export async function readRuns(file: string): Promise<LoadedRuns> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { records: [], badLines: 0 };
    throw err;
  }
  const records: RunRecord[] = [];
  let badLines = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as RunRecord;
      if (typeof r.specHash === "string" && (r.status === "ok" || r.status === "error")) records.push(r);
      else badLines++;
    } catch {
      badLines++;
    }
  }
  return { records, badLines };
}

/** Whether a non-empty file's last byte is not a newline (a torn last line). */
async function endsTorn(file: string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(file, "r");
    const { size } = await fh.stat();
    if (size === 0) return false;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    return b[0] !== 0x0a;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  } finally {
    await fh?.close();
  }
}

export async function appendRun(file: string, record: RunRecord): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const prefix = (await endsTorn(file)) ? "\n" : "";
  await appendFile(file, Buffer.from(`${prefix}${JSON.stringify(record)}\n`, "utf8"));
}

/** The latest successful record per spec hash. */
export function completed(records: RunRecord[]): Map<string, RunRecord> {
  const out = new Map<string, RunRecord>();
  for (const r of records) if (r.status === "ok") out.set(r.specHash, r);
  return out;
}

/**
 * The records a report shows: per spec hash the latest ok record, or the latest error when a
 * run never succeeded. Order of first appearance.
 */
export function latestPerSpec(records: RunRecord[]): RunRecord[] {
  const out = new Map<string, RunRecord>();
  for (const r of records) {
    const prev = out.get(r.specHash);
    if (!prev || r.status === "ok" || prev.status === "error") out.set(r.specHash, r);
  }
  return [...out.values()];
}
