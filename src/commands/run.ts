/** `kvlab run <config>`: run an experiment (resumable), then write its tables and plot. */
import type { Command } from "commander";
import { defaultProgress } from "../experiment/progress.ts";
import { runExperiment } from "../experiment/runner.ts";
import { realDeps } from "../experiment/runtime.ts";
import { loadConfig } from "../experiment/schema.ts";
import { exportResults } from "../report/export.ts";
import { TABLE_FORMATS } from "../report/formats.ts";

export function register(program: Command): void {
  program
    .command("run")
    .description("run an experiment config (YAML/JSON); completed runs are skipped, so rerunning resumes")
    .argument("<config>", "experiment file, e.g. experiments/quickstart.yaml")
    .option("--force", "rerun runs that are already complete")
    .option("--out <dir>", "results folder (default results/<name>)")
    .option("--no-report", "skip writing tables and the plot at the end")
    .action(async (file: string, opts: { force?: boolean; out?: string; report: boolean }) => {
      // Validation (schema, cache specs, paths) happens before anything is written.
      const config = loadConfig(file);
      const t0 = performance.now();
      const summary = await runExperiment(config, realDeps, {
        ...(opts.out !== undefined ? { outDir: opts.out } : {}),
        force: opts.force ?? false,
        progress: defaultProgress(),
      });
      const errors = summary.ran.filter((r) => r.status === "error");
      console.log(
        `${config.name}: ${summary.ran.length} run(s) in ${((performance.now() - t0) / 1000).toFixed(1)}s, ${summary.skipped} skipped, ${errors.length} errored -> ${summary.outDir}`,
      );
      if (opts.report) {
        const { files } = await exportResults(summary.outDir, TABLE_FORMATS, { records: summary.records });
        console.log(`wrote ${files.join(", ")}`);
      }
      if (errors.length) process.exitCode = 2;
    });
}
