/**
 * Where queue workers put finished runs: a results folder every worker sees (each worker process
 * appends to its own runs.worker-<host>-<pid>.jsonl, so no two processes append to one file),
 * or Redis (machines with no shared disk). Both answer "is this run stored already?", which is
 * how a job delivered twice (its worker died after storing, before BullMQ heard of it) is
 * stored once.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import type { Redis } from "ioredis";
import { appendRun, completed, readRunDir, runsFile } from "../experiment/run-store.ts";
import type { RunRecord } from "../experiment/types.ts";
import { recordsKey } from "./redis.ts";

export interface RecordStore {
  /** Where records go, for messages. */
  readonly where: string;
  /** The stored ok record of a spec, if any. */
  okRecord(specHash: string): Promise<RunRecord | undefined>;
  /** Store a record; an error record never replaces a stored ok one. */
  put(record: RunRecord): Promise<void>;
  /** Spec hashes with an ok record. */
  okHashes(): Promise<Set<string>>;
}

/** The run-file tag of one worker process: runs.worker-<host>-<pid>.jsonl. */
export function workerTag(): string {
  return `worker-${hostname().replace(/[^A-Za-z0-9_-]/g, "_")}-${process.pid}`;
}

export function dirRecordStore(dir: string, tag = workerTag()): RecordStore {
  const file = runsFile(dir, tag);
  const ok = async () => completed((await readRunDir(dir)).records);
  return {
    where: file,
    okRecord: async (h) => (await ok()).get(h),
    okHashes: async () => new Set((await ok()).keys()),
    async put(r) {
      if (r.status === "error" && (await ok()).has(r.specHash)) return;
      await appendRun(file, r);
    },
  };
}

export function redisRecordStore(redis: Redis, queue: string, experiment: string): RecordStore {
  const key = recordsKey(queue, experiment);
  const get = async (h: string) => {
    const s = await redis.hget(key, h);
    return s ? (JSON.parse(s) as RunRecord) : undefined;
  };
  return {
    where: `redis hash ${key}`,
    async okRecord(h) {
      const r = await get(h);
      return r?.status === "ok" ? r : undefined;
    },
    async okHashes() {
      const all = await redis.hgetall(key);
      return new Set(
        Object.entries(all)
          .filter(([, v]) => (JSON.parse(v) as RunRecord).status === "ok")
          .map(([k]) => k),
      );
    },
    async put(r) {
      if (r.status === "error" && (await get(r.specHash))?.status === "ok") return;
      await redis.hset(key, r.specHash, JSON.stringify(r));
    },
  };
}

/** The Redis snapshot a folder gets from `kvlab export DIR --redis URL`: runs.redis.jsonl. */
export const REDIS_SNAPSHOT_TAG = "redis";

/**
 * Copy an experiment's Redis records into DIR/runs.redis.jsonl (replaced whole, atomically; it
 * is a snapshot, Redis stays the source). Returns how many records were written.
 */
export async function snapshotRedisRecords(
  redis: Redis,
  queue: string,
  experiment: string,
  dir: string,
): Promise<number> {
  const all = Object.values(await redis.hgetall(recordsKey(queue, experiment))).map(
    (v) => JSON.parse(v) as RunRecord,
  );
  if (all.length === 0) return 0;
  all.sort((a, b) => (a.finishedAt < b.finishedAt ? -1 : a.finishedAt > b.finishedAt ? 1 : 0));
  await mkdir(dir, { recursive: true });
  const file = runsFile(dir, REDIS_SNAPSHOT_TAG);
  const tmp = join(dir, `.partial-${basename(file)}-${process.pid}`);
  await writeFile(tmp, all.map((r) => `${JSON.stringify(r)}\n`).join(""));
  await rename(tmp, file);
  return all.length;
}
