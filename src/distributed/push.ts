/**
 * `kvlab queue push`: validate a config exactly as `kvlab run` does (the model is loaded to
 * check every backend against it and to hash it), then add one BullMQ job per run that the
 * store does not hold yet and the queue does not hold already.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { parse as parseYaml } from "yaml";
import { plan } from "../experiment/runner.ts";
import { realDeps } from "../experiment/runtime.ts";
import { loadConfig } from "../experiment/schema.ts";
import { JOB_PAYLOAD_VERSION, type JobPayload, jobId } from "./jobs.ts";
import { dirRecordStore, redisRecordStore } from "./record-store.ts";

export interface PushOptions {
  queue: string;
  /** dir: a results folder every worker sees (default results/<name>); redis: records kept in Redis. */
  store: { type: "dir"; dir?: string } | { type: "redis" };
  /** Tries per job before it ends as failed (a killed worker's retry does not count). */
  attempts: number;
}

export interface PushSummary {
  experiment: string;
  total: number;
  added: number;
  /** Failed or finished jobs whose run the store lacks: removed and added again. */
  readded: number;
  alreadyStored: number;
  alreadyQueued: number;
  where: string;
}

export async function pushConfig(file: string, redis: Redis, opts: PushOptions): Promise<PushSummary> {
  const config = loadConfig(file);
  const abs = resolve(file);
  const raw = parseYaml(readFileSync(abs, "utf8")) as Record<string, unknown>;
  const loaded = await realDeps.load(config);
  let runs: ReturnType<typeof plan>;
  try {
    runs = plan(config, loaded);
  } finally {
    await loaded.dispose?.();
  }
  const store =
    opts.store.type === "dir"
      ? { type: "dir" as const, dir: opts.store.dir ?? join("results", config.name) }
      : { type: "redis" as const };
  const recordStore =
    store.type === "dir" ? dirRecordStore(store.dir) : redisRecordStore(redis, opts.queue, config.name);
  const stored = await recordStore.okHashes();
  const queue = new Queue(opts.queue, { connection: redis });
  const out: PushSummary = {
    experiment: config.name,
    total: runs.length,
    added: 0,
    readded: 0,
    alreadyStored: 0,
    alreadyQueued: 0,
    where: store.type === "dir" ? store.dir : recordStore.where,
  };
  try {
    for (const r of runs) {
      if (stored.has(r.hash)) {
        out.alreadyStored++;
        continue;
      }
      const id = jobId(config.name, r.hash);
      const existing = await queue.getJob(id);
      if (existing) {
        const state = await existing.getState();
        if (state !== "completed" && state !== "failed" && state !== "unknown") {
          out.alreadyQueued++;
          continue;
        }
        await existing.remove(); // finished without a stored record (failed, or the store was moved): run again
        out.readded++;
      } else out.added++;
      const payload: JobPayload = {
        v: JOB_PAYLOAD_VERSION,
        experiment: config.name,
        name: r.name,
        specHash: r.hash,
        configFile: abs,
        configDir: dirname(abs),
        config: raw,
        store,
      };
      await queue.add(r.name, payload, {
        jobId: id,
        attempts: opts.attempts,
        backoff: { type: "fixed", delay: 1000 },
      });
    }
  } finally {
    await queue.close();
  }
  return out;
}
