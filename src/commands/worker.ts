/** `kvlab worker`: take runs from the Redis work queue (`kvlab queue push`), run them, store their records. */
import type { Command } from "commander";
import { DEFAULT_QUEUE, DEFAULT_REDIS_TIMEOUT_S, parseTimeout } from "../distributed/redis.ts";
import { DEFAULT_LOCK_MS, runWorker } from "../distributed/worker.ts";
import { ConfigError } from "../errors.ts";

export function register(program: Command): void {
  program
    .command("worker")
    .description("run jobs from a `kvlab queue push` queue until stopped (Ctrl-C finishes the running jobs)")
    .requiredOption("--redis <url>", "Redis server, e.g. redis://127.0.0.1:6379")
    .option("--queue <name>", "queue name", DEFAULT_QUEUE)
    .option("--concurrency <n>", "jobs at once in this process, each on its own thread", "1")
    .option(
      "--lock-seconds <s>",
      `a killed worker's job goes back to the queue after about this long (default ${DEFAULT_LOCK_MS / 1000})`,
    )
    .option("--until-empty", "exit when nothing is waiting or running, instead of waiting for more jobs")
    .option(
      "--redis-timeout <seconds>",
      `give up on an unreachable Redis after this long (default ${DEFAULT_REDIS_TIMEOUT_S})`,
    )
    .action(
      async (opts: {
        redis: string;
        queue: string;
        concurrency: string;
        lockSeconds?: string;
        untilEmpty?: boolean;
        redisTimeout?: string;
      }) => {
        const concurrency = Number(opts.concurrency);
        if (!Number.isSafeInteger(concurrency) || concurrency < 1)
          throw new ConfigError(
            "--concurrency",
            `expected an integer >= 1, got ${JSON.stringify(opts.concurrency)}`,
          );
        let lockMs = DEFAULT_LOCK_MS;
        if (opts.lockSeconds !== undefined) {
          const s = Number(opts.lockSeconds);
          if (!Number.isFinite(s) || s < 1)
            throw new ConfigError(
              "--lock-seconds",
              `expected seconds >= 1, got ${JSON.stringify(opts.lockSeconds)}`,
            );
          lockMs = Math.round(s * 1000);
        }
        await runWorker({
          redisUrl: opts.redis,
          queue: opts.queue,
          concurrency,
          lockMs,
          untilEmpty: opts.untilEmpty ?? false,
          timeoutS: parseTimeout(opts.redisTimeout),
        });
      },
    );
}
