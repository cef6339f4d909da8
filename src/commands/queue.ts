/** `kvlab queue push|status|clear`: the Redis work queue (BullMQ) that `kvlab worker` processes take runs from. */
import { Queue } from "bullmq";
import type { Command } from "commander";
import { pushConfig } from "../distributed/push.ts";
import {
  connectRedis,
  DEFAULT_QUEUE,
  DEFAULT_REDIS_TIMEOUT_S,
  parseTimeout,
  redactUrl,
} from "../distributed/redis.ts";
import { ConfigError } from "../errors.ts";

interface RedisOpts {
  redis: string;
  queue: string;
  redisTimeout?: string;
}

function redisOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--redis <url>", "Redis server, e.g. redis://127.0.0.1:6379")
    .option("--queue <name>", "queue name (one sweep per queue, or share one)", DEFAULT_QUEUE)
    .option(
      "--redis-timeout <seconds>",
      `give up on an unreachable Redis after this long (default ${DEFAULT_REDIS_TIMEOUT_S})`,
    );
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ConfigError(flag, `expected an integer >= 1, got ${JSON.stringify(value)}`);
  return n;
}

export function register(program: Command): void {
  const queue = program
    .command("queue")
    .description("a Redis work queue of runs for `kvlab worker` processes on any number of machines");

  redisOptions(
    queue
      .command("push")
      .description("validate configs and add one job per run not stored yet (and not queued already)")
      .argument("<config...>", "experiment files, e.g. experiments/quickstart.yaml"),
  )
    .option(
      "--out <dir>",
      "results folder every worker can write (default results/<name>, relative to each worker's working directory)",
    )
    .option(
      "--store <where>",
      "dir: records go to the results folder; redis: records stay in Redis (no shared disk)",
      "dir",
    )
    .option(
      "--attempts <n>",
      "tries per job before it ends as failed (a killed worker does not use one up)",
      "2",
    )
    .action(async (files: string[], opts: RedisOpts & { out?: string; store: string; attempts: string }) => {
      if (opts.store !== "dir" && opts.store !== "redis")
        throw new ConfigError("--store", `expected dir or redis, got ${JSON.stringify(opts.store)}`);
      if (opts.out !== undefined && (files.length > 1 || opts.store === "redis"))
        throw new ConfigError("--out", "give --out with one config and --store dir");
      const attempts = positiveInt(opts.attempts, "--attempts");
      const redis = await connectRedis(opts.redis, parseTimeout(opts.redisTimeout));
      try {
        for (const file of files) {
          const s = await pushConfig(file, redis, {
            queue: opts.queue,
            attempts,
            store:
              opts.store === "redis"
                ? { type: "redis" }
                : { type: "dir", ...(opts.out ? { dir: opts.out } : {}) },
          });
          console.log(
            `${s.experiment}: ${s.added + s.readded} job(s) pushed to queue ${opts.queue} at ${redactUrl(opts.redis)} (${s.readded} of them re-added after failing), ${s.alreadyQueued} already queued, ${s.alreadyStored} of ${s.total} already stored in ${s.where}`,
          );
        }
      } finally {
        await redis.quit();
      }
    });

  redisOptions(
    queue
      .command("status")
      .description("jobs done / running / waiting / failed, with each failure's message"),
  )
    .option("--json", "one JSON object")
    .action(async (opts: RedisOpts & { json?: boolean }) => {
      const redis = await connectRedis(opts.redis, parseTimeout(opts.redisTimeout));
      const q = new Queue(opts.queue, { connection: redis });
      try {
        const c = await q.getJobCounts("completed", "active", "waiting", "prioritized", "delayed", "failed");
        const counts = {
          done: c.completed ?? 0,
          running: c.active ?? 0,
          waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
          failed: c.failed ?? 0,
        };
        const active = (await q.getJobs(["active"], 0, 99)).map((j) => ({
          id: j.id,
          name: j.name,
          progress: typeof j.progress === "number" ? j.progress : null,
          attempt: j.attemptsMade + 1,
        }));
        const failed = (await q.getJobs(["failed"], 0, 99)).map((j) => ({
          id: j.id,
          name: j.name,
          attempts: j.attemptsMade,
          reason: j.failedReason,
        }));
        if (opts.json) {
          console.log(
            JSON.stringify({ queue: opts.queue, ...counts, activeJobs: active, failedJobs: failed }, null, 2),
          );
          return;
        }
        console.log(
          `queue ${opts.queue} at ${redactUrl(opts.redis)}: ${counts.done} done, ${counts.running} running, ${counts.waiting} waiting, ${counts.failed} failed`,
        );
        for (const j of active)
          console.log(
            `  running ${j.id} (${j.name})${j.progress !== null ? ` ${j.progress}%` : ""}, attempt ${j.attempt}`,
          );
        for (const j of failed)
          console.log(`  failed  ${j.id} (${j.name}) after ${j.attempts} attempt(s): ${j.reason}`);
      } finally {
        await q.close();
        await redis.quit();
      }
    });

  redisOptions(
    queue.command("clear").description("delete the queue and all its jobs (stored records are kept)"),
  ).action(async (opts: RedisOpts) => {
    const redis = await connectRedis(opts.redis, parseTimeout(opts.redisTimeout));
    const q = new Queue(opts.queue, { connection: redis });
    try {
      await q.obliterate({ force: true });
      console.log(`queue ${opts.queue} at ${redactUrl(opts.redis)}: cleared`);
    } finally {
      await q.close();
      await redis.quit();
    }
  });
}
