/**
 * results/<experiment>/runs.jsonl: one JSON line per finished run (ok or errored).
 *
 * Appends are atomic in practice: each record is one Buffer written by one appendFile (O_APPEND,
 * a single write), so a crash leaves at most one truncated last line, which the reader skips
 * and the next append starts on a fresh line. Nothing is ever rewritten in place, so earlier
 * results cannot be lost.
 */
import { appendFile, mkdir, open, readdir, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError, UsageError } from "../errors.ts";
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

export const RUNS_FILE = "runs.jsonl";

/** The run file one process appends to: runs.jsonl, or runs.<tag>.jsonl (shards, queue workers). */
export function runsFile(outDir: string, tag?: string): string {
  return join(outDir, tag ? `runs.${tag}.jsonl` : RUNS_FILE);
}

/** A run store: what is recorded so far (for resume and the summary) and where a finished run goes. */
export interface RunStore {
  read(): Promise<LoadedRuns>;
  append(record: RunRecord): Promise<void>;
}

/** The default store: reads every run file of the folder (runs.jsonl, runs.*.jsonl), appends to this process's own. */
export function dirStore(outDir: string, tag?: string): RunStore {
  const file = runsFile(outDir, tag);
  return { read: () => readRunDir(outDir), append: (r) => appendRun(file, r) };
}

/** A run file: runs.jsonl, or runs.<tag>.jsonl written by one shard, queue worker or Redis export. */
export const RUN_FILE_PATTERN = /^runs(\.[A-Za-z0-9_-][A-Za-z0-9._-]*)?\.jsonl$/;

/** The run files of a results folder, runs.jsonl first, then the others by name; none if the folder is absent. */
export async function listRunFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names
    .filter((n) => RUN_FILE_PATTERN.test(n))
    .sort((a, b) => (a === "runs.jsonl" ? -1 : b === "runs.jsonl" ? 1 : a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n));
}

/** Every record of every run file in a folder (file by file, in listRunFiles order). */
export async function readRunDir(dir: string): Promise<LoadedRuns> {
  const out: LoadedRuns = { records: [], badLines: 0 };
  for (const file of await listRunFiles(dir)) {
    const { records, badLines } = await readRuns(file);
    for (const r of records) out.records.push(r);
    out.badLines += badLines;
  }
  return out;
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

/** The lock file of a results folder, held by the `kvlab run` writing into it. */
export const LOCK_FILE = ".lock";

interface LockHolder {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** Make the results folder, turning file-system refusals (ENAMETOOLONG, ENOTDIR, EACCES ...) into a ConfigError. */
async function makeDir(outDir: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(
      "name",
      `cannot create the results folder ${outDir} (${e.code ?? e.message})${e.code === "ENAMETOOLONG" ? ": the experiment name is too long for a folder name" : ""}`,
    );
  }
}

/**
 * Take the results folder for one `kvlab run`: an exclusive lock file (created with O_EXCL)
 * naming this process. Another live holder makes this fail fast with a UsageError naming it; a
 * lock left by a dead process on this host is taken over. Then stale `.partial-*` files (atomic
 * writes interrupted between write and rename) whose writer is gone are removed. Returns the
 * release function (removes the lock if it is still ours).
 */
export async function lockResults(
  outDir: string,
  options: { tag?: string } = {},
): Promise<() => Promise<void>> {
  await makeDir(outDir);
  // A shard locks only its own files (.lock.K-of-N): shards share the folder, never a run file.
  const lock = join(outDir, options.tag ? `${LOCK_FILE}.${options.tag}` : LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lock, "wx");
      await fh.writeFile(`${JSON.stringify(me)}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") throw inUse(outDir, await holderOf(lock), lock);
        throw err;
      }
      const holder = await holderOf(lock);
      if (holder && (holder.host !== me.host || alive(holder.pid))) throw inUse(outDir, holder, lock);
      // Dead holder (or an unreadable, torn lock file): take it over.
      await rm(lock, { force: true });
    }
  }
  await removeStalePartials(outDir, options.tag);
  return async () => {
    const holder = await holderOf(lock);
    if (holder?.pid === me.pid && holder.host === me.host) await rm(lock, { force: true });
  };
}

async function holderOf(lock: string): Promise<LockHolder | undefined> {
  try {
    const h = JSON.parse(await readFile(lock, "utf8")) as LockHolder;
    return typeof h?.pid === "number" ? h : undefined;
  } catch {
    return undefined;
  }
}

function inUse(outDir: string, h: LockHolder | undefined, lock: string): UsageError {
  return new UsageError(
    `${outDir} is in use by another kvlab run (${h ? `pid ${h.pid} on ${h.host}, since ${h.started}` : "holder unknown"}); wait for it to finish, or delete ${lock} if that process is gone`,
  );
}

/** Remove `.partial-<name>-<pid>` files whose writer is not running (any left by this host's dead processes). */
export async function removeStalePartials(outDir: string, tag?: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(outDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(".partial-")) continue;
    // A shard removes only its own files' partials: on a shared disk another host's live writer
    // has a pid that means nothing here.
    if (tag && !n.includes(`.${tag}.`)) continue;
    const pid = Number(/-(\d+)$/.exec(n)?.[1]);
    if (pid === process.pid || alive(pid)) continue;
    await rm(join(outDir, n), { force: true });
    removed.push(n);
  }
  return removed;
}
