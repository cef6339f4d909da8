/** `kvlab synth-model`: write a random-weight model of a real model's shape (HF format). */
import type { Command } from "commander";
import { SYNTH_SHAPES, synthModel } from "../model/synth.ts";
import { parseIntOption } from "./ppl.ts";

export function register(program: Command): void {
  program
    .command("synth-model")
    .description("write a random-weight HF model directory of a real model's shape (for benchmarks)")
    .requiredOption("--shape <name>", `one of ${Object.keys(SYNTH_SHAPES).join(", ")}`)
    .requiredOption("--out <dir>", "output directory")
    .option("--seed <s>", "random seed", "0")
    .option("--dtype <t>", "f16 | f32", "f16")
    .action((o: { shape: string; out: string; seed: string; dtype: string }) => {
      const seed = parseIntOption("--seed", o.seed, 0)!;
      const t0 = performance.now();
      synthModel({ shape: o.shape, out: o.out, seed, dtype: o.dtype as "f16" | "f32" });
      console.log(
        `wrote ${o.shape} (${o.dtype}, seed ${seed}) to ${o.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    });
}
