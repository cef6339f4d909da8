/**
 * A queue worker's compute thread: runs one job at a time through the ordinary runner
 * (runExperiment, selecting the job's one spec hash) and posts the record back. Runs block the
 * thread they run on for minutes; keeping them off the worker's main thread leaves it free to
 * renew BullMQ's job locks (a blocked main thread would let every long job look stalled) and to
 * store records. The loaded model of each config stays loaded for the next job, and the
 * baseline's distributions for KL are computed once per thread (or reused from the baseline job)
 * into a folder private to the thread.
 */
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parentPort, threadId, workerData } from "node:worker_threads";
import { canonicalJson } from "../experiment/hash.ts";
import type { Progress } from "../experiment/progress.ts";
import type { RunStore } from "../experiment/run-store.ts";
import { runExperiment } from "../experiment/runner.ts";
import { realDeps } from "../experiment/runtime.ts";
import { validateConfig } from "../experiment/schema.ts";
import type { LoadedExperiment, RunnerDeps, RunRecord } from "../experiment/types.ts";
import type { JobPayload } from "./jobs.ts";

export type ToThread = { id: number; payload: JobPayload };
export type FromThread =
  | { id: number; type: "progress"; done: number; total: number }
  | { id: number; type: "record"; record: RunRecord }
  | { id: number; type: "fail"; message: string };

const port = parentPort!;
const scratchRoot: string = (workerData as { scratch?: string }).scratch ?? join(tmpdir(), "kvlab-worker");
const loaded = new Map<string, Promise<LoadedExperiment>>();

/**
 * realDeps, keeping the last config's loaded model for the next job (jobs of one sweep arrive
 * together); a job of another config disposes it first, so a long-lived worker holds one model
 * per thread.
 */
function cachingDeps(key: string): RunnerDeps {
  return {
    async load(config) {
      for (const [k, old] of loaded)
        if (k !== key) {
          loaded.delete(k);
          await (await old.catch(() => undefined))?.dispose?.();
        }
      let p = loaded.get(key);
      if (!p) {
        p = realDeps.load(config);
        loaded.set(key, p);
        p.catch(() => loaded.delete(key));
      }
      const l = await p;
      return { ...l, dispose: undefined };
    },
  };
}

async function runJob(id: number, p: JobPayload): Promise<FromThread> {
  const config = validateConfig(p.config, p.configDir, p.configFile);
  const key = canonicalJson({ config: p.config, dir: p.configDir });
  const records: RunRecord[] = [];
  const store: RunStore = {
    read: async () => ({ records: [], badLines: 0 }),
    append: async (r) => {
      records.push(r);
    },
  };
  let last = 0;
  const progress: Progress = {
    start() {},
    runStart() {},
    tokens(done, total) {
      const now = performance.now();
      if (now - last < 1000) return;
      last = now;
      port.postMessage({ id, type: "progress", done, total } satisfies FromThread);
    },
    runEnd() {},
    note() {},
    stop() {},
  };
  const scratch = join(scratchRoot, `thread-${threadId}`, p.experiment);
  await mkdir(scratch, { recursive: true });
  await runExperiment(config, cachingDeps(key), {
    outDir: scratch,
    force: true,
    select: (h) => h === p.specHash,
    store,
    progress,
  });
  const record = records.find((r) => r.specHash === p.specHash);
  if (!record)
    return {
      id,
      type: "fail",
      message: `${p.name} (spec ${p.specHash}) is not a run of ${p.configFile} on this worker: its model or text files differ from those of the machine that pushed the job (use builtin: names or paths with the same files on every worker)`,
    };
  return { id, type: "record", record };
}

port.on("message", (msg: ToThread) => {
  runJob(msg.id, msg.payload).then(
    (reply) => port.postMessage(reply),
    (err: unknown) =>
      port.postMessage({
        id: msg.id,
        type: "fail",
        message: err instanceof Error ? err.message : String(err),
      } satisfies FromThread),
  );
});
port.postMessage({ id: -1, type: "progress", done: 0, total: 0 } satisfies FromThread); // ready
