/**
 * `kvlab worker`: pulls run jobs from a BullMQ queue on Redis, runs each on a compute thread and
 * stores its record (results folder or Redis, as the job says). BullMQ does the distribution:
 * a job is leased to one worker at a time with a lock the worker keeps renewing; a worker that
 * dies (kill -9, a lost machine) stops renewing, and another worker's stalled-job check puts
 * the job back in the queue after `lockMs`. A run that throws is retried up to the job's
 * attempts, then ends as failed with its message (its error record is stored on the last
 * attempt, as `kvlab run` records errors) and the other jobs go on.
 */
import { hostname } from "node:os";
import { type Job, Queue, UnrecoverableError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { RunRecord } from "../experiment/types.ts";
import { ComputePool } from "./compute-pool.ts";
import { checkPayload, type JobPayload } from "./jobs.ts";
import { dirRecordStore, type RecordStore, redisRecordStore } from "./record-store.ts";
import { connectRedis, DEFAULT_QUEUE, DEFAULT_REDIS_TIMEOUT_S, redactUrl } from "./redis.ts";

export interface WorkerOptions {
  redisUrl: string;
  queue?: string;
  /** Jobs run at once by this process, each on its own compute thread. */
  concurrency?: number;
  /** How long a job's lock lasts without renewal: a dead worker's job is retried elsewhere after about this long. */
  lockMs?: number;
  /** Exit once the queue has nothing waiting, delayed or running (instead of waiting for more jobs). */
  untilEmpty?: boolean;
  timeoutS?: number;
  log?: (line: string) => void;
}

export const DEFAULT_LOCK_MS = 30_000;

/** What a finished job returns to BullMQ (its returnvalue). */
export interface JobResult {
  specHash: string;
  name: string;
  status: "ok" | "error";
  /** True when the record was already stored (a redelivered job): nothing was run or written. */
  alreadyStored?: boolean;
  worker: string;
  wallSeconds?: number;
}

function summary(r: RunRecord): string {
  const m = r.metrics;
  if (!m) return "";
  if (m.task) return ` accuracy ${(100 * m.task.accuracy).toFixed(1)}%`;
  return ` ppl ${m.ppl.toFixed(3)}${m.klMean !== undefined ? ` kld ${m.klMean.toExponential(2)}` : ""}`;
}

export async function runWorker(opts: WorkerOptions): Promise<{ completed: number; failed: number }> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const queueName = opts.queue ?? DEFAULT_QUEUE;
  const concurrency = opts.concurrency ?? 1;
  const lockMs = opts.lockMs ?? DEFAULT_LOCK_MS;
  const me = `${hostname()}:${process.pid}`;
  const connection: Redis = await connectRedis(opts.redisUrl, opts.timeoutS ?? DEFAULT_REDIS_TIMEOUT_S);
  const pool = new ComputePool(concurrency);
  const stores = new Map<string, RecordStore>();
  const storeOf = (p: JobPayload): RecordStore => {
    const key = p.store.type === "dir" ? `dir:${p.store.dir}` : `redis:${p.experiment}`;
    let s = stores.get(key);
    if (!s) {
      s =
        p.store.type === "dir"
          ? dirRecordStore(p.store.dir)
          : redisRecordStore(connection, queueName, p.experiment);
      stores.set(key, s);
    }
    return s;
  };
  let inFlight = 0;
  let completedJobs = 0;
  let failedJobs = 0;

  const processor = async (job: Job): Promise<JobResult> => {
    const checked = checkPayload(job.data);
    if (!checked.ok) throw new UnrecoverableError(checked.reason); // no retries: it will never parse
    const p = checked.payload;
    const attempts = job.opts.attempts ?? 1;
    const attempt = job.attemptsMade + 1;
    const label = `${p.experiment}/${p.name} (${p.specHash})`;
    const store = storeOf(p);
    if (await store.okRecord(p.specHash)) {
      log(`[${me}] ${label}: already stored in ${store.where} by an earlier delivery; nothing to run`);
      return { specHash: p.specHash, name: p.name, status: "ok", alreadyStored: true, worker: me };
    }
    log(`[${me}] ${label}: started (attempt ${attempt}/${attempts}, job ${job.id})`);
    inFlight++;
    try {
      const record = await pool.run(p, (done, total) => {
        if (total > 0) job.updateProgress(Math.round((100 * done) / total)).catch(() => {});
      });
      if (record.status === "error") {
        if (attempt >= attempts) await store.put(record); // the sweep's table shows it, as `kvlab run` does
        throw new Error(record.error);
      }
      if (await store.okRecord(p.specHash))
        log(`[${me}] ${label}: another worker stored it meanwhile; this result is not written twice`);
      else await store.put(record);
      log(`[${me}] ${label}: ok${summary(record)} in ${record.wallSeconds.toFixed(1)}s -> ${store.where}`);
      return {
        specHash: p.specHash,
        name: p.name,
        status: "ok",
        worker: me,
        wallSeconds: record.wallSeconds,
      };
    } finally {
      inFlight--;
    }
  };

  const worker = new Worker(queueName, processor, {
    connection,
    concurrency,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: 2,
  });
  worker.on("completed", () => {
    completedJobs++;
  });
  worker.on("failed", (job, err) => {
    failedJobs++;
    if (!job) return;
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    log(`[${me}] job ${job.id}: ${final ? "FAILED" : "failed, will be retried"}: ${err.message}`);
  });
  worker.on("error", (err) => log(`[${me}] queue error: ${err.message}`));
  log(
    `[${me}] worker on queue ${queueName} at ${redactUrl(opts.redisUrl)}: ${concurrency} compute thread(s), a dead worker's job is retried after ~${Math.round(lockMs / 1000)}s`,
  );

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await worker.close();
      await pool.close();
      await connection.quit().catch(() => connection.disconnect());
    })();
    return stopping;
  };
  const onSignal = (sig: string) => {
    if (stopping) {
      log(
        `[${me}] ${sig} again: quitting now; running jobs go back to the queue after ~${Math.round(lockMs / 1000)}s`,
      );
      process.exit(130);
    }
    log(`[${me}] ${sig}: finishing ${inFlight} running job(s), then exiting (${sig} again to quit now)`);
    void stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    if (opts.untilEmpty) {
      const queue = new Queue(queueName, { connection });
      try {
        for (;;) {
          await new Promise((r) => setTimeout(r, 1000));
          if (stopping) break;
          if (inFlight > 0) continue;
          const c = await queue.getJobCounts("waiting", "active", "delayed", "prioritized");
          if (Object.values(c).every((n) => n === 0)) break;
        }
      } finally {
        await queue.close();
      }
      log(`[${me}] queue empty: exiting after ${completedJobs} completed, ${failedJobs} failed attempt(s)`);
      await stop();
    } else {
      await new Promise<void>((resolve) => worker.on("closed", () => resolve()));
      await stop();
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return { completed: completedJobs, failed: failedJobs };
}
