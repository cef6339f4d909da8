/** `kvlab export <results-dir>`: tables (md, csv, tex, json) and the ppl-vs-memory plot from runs.jsonl. */
import { basename, resolve } from "node:path";
import type { Command } from "commander";
import { snapshotRedisRecords } from "../distributed/record-store.ts";
import { connectRedis, DEFAULT_QUEUE, parseTimeout, redactUrl } from "../distributed/redis.ts";
import { ConfigError, KvlabError } from "../errors.ts";
import { exportResults } from "../report/export.ts";
import { TABLE_FORMATS, type TableFormat } from "../report/formats.ts";

function parseFormats(value: string): TableFormat[] {
  const out: TableFormat[] = [];
  for (const f of value.split(",").map((s) => s.trim())) {
    if (!(TABLE_FORMATS as string[]).includes(f))
      throw new ConfigError(
        "--format",
        `unknown format "${f}"; use ${TABLE_FORMATS.join(", ")} (comma-separated)`,
      );
    out.push(f as TableFormat);
  }
  return out;
}

export function register(program: Command): void {
  program
    .command("export")
    .description("write table.{md,csv,tex,json} and ppl-vs-memory.{svg,png} from a results folder")
    .argument("<results-dir>", "folder holding runs.jsonl, e.g. results/quickstart")
    .option("--format <formats>", `comma-separated: ${TABLE_FORMATS.join(",")}`, TABLE_FORMATS.join(","))
    .option("--no-plot", "skip the SVG/PNG plot")
    .option(
      "--redis <url>",
      "first copy the experiment's records kept in Redis (`kvlab queue push --store redis`) into <dir>/runs.redis.jsonl",
    )
    .option("--queue <name>", "with --redis: the queue name", DEFAULT_QUEUE)
    .option("--experiment <name>", "with --redis: the experiment (default: the folder's name)")
    .option("--redis-timeout <seconds>", "with --redis: give up on an unreachable Redis after this long")
    .action(
      async (
        dir: string,
        opts: {
          format: string;
          plot: boolean;
          redis?: string;
          queue: string;
          experiment?: string;
          redisTimeout?: string;
        },
      ) => {
        const formats = parseFormats(opts.format);
        if (opts.redis !== undefined) {
          const experiment = opts.experiment ?? basename(resolve(dir));
          const redis = await connectRedis(opts.redis, parseTimeout(opts.redisTimeout));
          try {
            const n = await snapshotRedisRecords(redis, opts.queue, experiment, dir);
            if (n === 0)
              throw new KvlabError(
                `no records of experiment ${experiment} in queue ${opts.queue} at ${redactUrl(opts.redis)}; name it with --experiment (and --queue)`,
              );
            console.log(`copied ${n} record(s) of ${experiment} from Redis into ${dir}/runs.redis.jsonl`);
          } finally {
            await redis.quit();
          }
        }
        const { files } = await exportResults(dir, formats, { plot: opts.plot });
        console.log(`wrote ${files.join(", ")}`);
      },
    );
}
