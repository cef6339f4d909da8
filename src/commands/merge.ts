/** `kvlab merge <dir...> --out <dir>`: combine run files (shards, workers, folders) by spec hash into one runs.jsonl. */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Command } from "commander";
import { describeConflict, mergeRunFiles, readRunFiles } from "../distributed/merge.ts";
import { ConfigError, KvlabError } from "../errors.ts";
import { listRunFiles, runsFile } from "../experiment/run-store.ts";
import { exportResults } from "../report/export.ts";
import { TABLE_FORMATS } from "../report/formats.ts";

export function register(program: Command): void {
  program
    .command("merge")
    .description(
      "combine every run file (runs.jsonl, runs.*.jsonl) of the folders by spec hash into <out>/runs.jsonl, then write tables and plots; different results for one spec are refused",
    )
    .argument(
      "<dir...>",
      "results folders, e.g. results/quickstart (shard files in place) or copies from several machines",
    )
    .requiredOption("--out <dir>", "new results folder for the merged runs.jsonl (must hold no run file yet)")
    .option("--take-latest", "on a conflict keep the latest finished record (printed) instead of refusing")
    .option("--no-report", "skip writing tables and plots")
    .action(async (dirs: string[], opts: { out: string; takeLatest?: boolean; report: boolean }) => {
      const existing = await listRunFiles(opts.out);
      if (existing.length)
        throw new ConfigError(
          "--out",
          `${opts.out} already holds ${existing.map((f) => basename(f)).join(", ")}; merge into a new folder (or include ${opts.out} among the inputs and pick another --out)`,
        );
      const { files, badLines } = await readRunFiles(dirs);
      if (files.length === 0)
        throw new KvlabError(`no run files (runs.jsonl, runs.*.jsonl) in ${dirs.join(", ")}`);
      if (badLines) console.error(`warning: skipped ${badLines} unreadable line(s) (interrupted writes)`);
      const m = mergeRunFiles(files, { takeLatest: opts.takeLatest ?? false });
      if (m.conflicts.length && !opts.takeLatest)
        throw new KvlabError(
          `${m.conflicts.length} conflict(s), nothing written:\n${m.conflicts.map(describeConflict).join("\n")}\nrerun the run on the code you trust (kvlab run --force) and drop the other file, or pass --take-latest`,
        );
      for (const c of m.conflicts) console.error(`warning: kept the latest of ${describeConflict(c)}`);
      for (const c of m.codeVersions) console.error(`warning: ${describeConflict(c)}`);
      const experiments = [...new Set(m.records.map((r) => r.experiment))];
      if (experiments.length > 1)
        throw new KvlabError(
          `the folders hold runs of ${experiments.length} experiments (${experiments.join(", ")}); merge the folders of one experiment at a time`,
        );
      await mkdir(opts.out, { recursive: true });
      const out = runsFile(opts.out);
      const tmp = join(opts.out, `.partial-runs.jsonl-${process.pid}`);
      await writeFile(tmp, m.records.map((r) => `${JSON.stringify(r)}\n`).join(""));
      await rename(tmp, out);
      console.log(
        `merged ${files.length} run file(s) from ${dirs.map((d) => resolve(d)).join(", ")}: ${m.records.length} run(s), ${m.duplicates} duplicate(s) dropped, ${m.conflicts.length} conflict(s), ${m.codeVersions.length} flagged for code versions -> ${out}`,
      );
      if (opts.report) {
        const { files: written } = await exportResults(opts.out, TABLE_FORMATS, { records: m.records });
        console.log(`wrote ${written.join(", ")}`);
      }
    });
}
