/** `kvlab run <config...>`: run experiments (resumable) one after another, then write each one's tables and plots. */
import { join } from "node:path";
import type { Command } from "commander";
import { inShard, parseShard, shardTag } from "../distributed/shard.ts";
import { ConfigError } from "../errors.ts";
import { defaultProgress } from "../experiment/progress.ts";
import { lockResults } from "../experiment/run-store.ts";
import { runExperiment } from "../experiment/runner.ts";
import { realDeps } from "../experiment/runtime.ts";
import { loadConfig } from "../experiment/schema.ts";
import { EXECUTORS } from "../kernels/registry.ts";
import { exportResults } from "../report/export.ts";
import { TABLE_FORMATS } from "../report/formats.ts";

export function register(program: Command): void {
  program
    .command("run")
    .description("run an experiment config (YAML/JSON); completed runs are skipped, so rerunning resumes")
    .argument("<config...>", "experiment files, e.g. experiments/quickstart.yaml (run in order)")
    .option("--force", "rerun runs that are already complete")
    .option("--out <dir>", "results folder (default results/<name>; only with one config)")
    .option("--no-report", "skip writing tables and plots at the end")
    .option("--executor <name>", "run on this executor instead of the configs' (ref | wasm | webgpu)")
    .option(
      "--shard <K/N>",
      "run only shard K of N (K from 0; by spec hash) into runs.K-of-N.jsonl; then `kvlab export` the folder",
    )
    .action(
      async (
        files: string[],
        opts: { force?: boolean; out?: string; report: boolean; shard?: string; executor?: string },
      ) => {
        const shard = opts.shard !== undefined ? parseShard(opts.shard) : undefined;
        const tag = shard ? shardTag(shard) : undefined;
        if (opts.out !== undefined && files.length > 1)
          throw new ConfigError(
            "--out",
            "give one config with --out (each config has its own results folder)",
          );
        // Every config is validated (schema, cache specs, paths) before anything runs or is written.
        if (opts.executor !== undefined && !Object.hasOwn(EXECUTORS, opts.executor))
          throw new ConfigError(
            "--executor",
            `unknown executor "${opts.executor}"; known: ${Object.keys(EXECUTORS).join(", ")}`,
          );
        // The executor is part of each run's identity: runs on another executor are new runs.
        const configs = files.map((f) => ({
          ...loadConfig(f),
          ...(opts.executor !== undefined ? { executor: opts.executor } : {}),
        }));
        let failed = false;
        for (const config of configs) {
          const t0 = performance.now();
          // The folder runExperiment writes to (its default), locked for this run: a second
          // `kvlab run` on it fails fast naming this one; stale .partial-* files are removed.
          const outDir = opts.out ?? join("results", config.name);
          const unlock = await lockResults(outDir, { tag });
          try {
            const summary = await runExperiment(config, realDeps, {
              outDir,
              force: opts.force ?? false,
              progress: defaultProgress(),
              // A shard appends to its own runs.K-of-N.jsonl and keeps its own baseline files.
              ...(shard ? { tag, select: (h: string) => inShard(h, shard) } : {}),
            }).catch((err: unknown) => {
              // Errors found after validation (e.g. a text too short for the protocol) still name the config.
              if (err instanceof ConfigError && !err.file && config.file)
                throw new ConfigError(err.path, err.detail, config.file);
              throw err;
            });
            const errors = summary.ran.filter((r) => r.status === "error");
            console.log(
              `${config.name}: ${summary.ran.length} run(s) in ${((performance.now() - t0) / 1000).toFixed(1)}s, ${summary.skipped} skipped, ${errors.length} errored -> ${summary.outDir}`,
            );
            if (shard)
              // The other shards are still writing: tables now would be partial and would race theirs.
              console.log(
                `shard ${opts.shard}: its runs are in ${join(summary.outDir, `runs.${tag}.jsonl`)}; when every shard is done: kvlab export ${summary.outDir}`,
              );
            else if (opts.report) {
              const { files: written } = await exportResults(summary.outDir, TABLE_FORMATS, {
                records: summary.records,
              });
              console.log(`wrote ${written.join(", ")}`);
            }
            if (errors.length) failed = true;
          } finally {
            await unlock();
          }
        }
        if (failed) process.exitCode = 2;
      },
    );
}
