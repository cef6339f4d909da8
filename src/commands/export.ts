/** `kvlab export <results-dir>`: tables (md, csv, tex, json) and the ppl-vs-memory plot from runs.jsonl. */
import type { Command } from "commander";
import { ConfigError } from "../errors.ts";
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
    .action(async (dir: string, opts: { format: string; plot: boolean }) => {
      const { files } = await exportResults(dir, parseFormats(opts.format), { plot: opts.plot });
      console.log(`wrote ${files.join(", ")}`);
    });
}
