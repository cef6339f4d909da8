/**
 * `kvlab profile-heads`: the head profile of policy `duo` (src/eval/head-profile.ts: the
 * attention mass each KV head puts outside sinks + recent window on a calibration text), printed
 * as the policy's `scores` option, with the head map at a few retrieval shares.
 */
import type { Command } from "commander";
import { headMapText, retrievalHeads } from "../cache/policies/duo.ts";
import { ConfigError } from "../errors.ts";
import { profileHeads } from "../eval/head-profile.ts";
import { tokensOfFile } from "../eval/text-tokens.ts";
import { resolveModelRef, resolveTextRef } from "../experiment/paths.ts";
import { loadModel } from "../model/load.ts";
import { parseIntOption } from "./ppl.ts";

interface Options {
  model: string;
  text: string;
  skip: string;
  tokens: string;
  sinks: string;
  recent: string;
  executor?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("profile-heads")
    .description(
      "profile KV heads for policy duo (DuoAttention): attention mass outside sinks + recent window on a calibration text",
    )
    .requiredOption("--model <ref>", "model: HF directory, .bin, .gguf or builtin:<name>")
    .requiredOption(
      "--text <ref>",
      "calibration text file or builtin:<name> (keep it apart from the evaluation text)",
    )
    .option("--skip <n>", "tokens of the text to skip first (to calibrate away from the evaluated part)", "0")
    .option("--tokens <n>", "calibration tokens", "1024")
    .option("--sinks <n>", "sinks of a streaming head", "4")
    .option("--recent <n>", "recent window of a streaming head", "32")
    .option("--executor <name>", "ref | wasm | webgpu (default: wasm)")
    .option("--json", "print one JSON object")
    .action(async (o: Options) => {
      const skip = parseIntOption("--skip", o.skip, 0)!;
      const n = parseIntOption("--tokens", o.tokens, 2)!;
      const sinks = parseIntOption("--sinks", o.sinks, 0)!;
      const recent = parseIntOption("--recent", o.recent, 1)!;
      const model = await loadModel(resolveModelRef(o.model, process.cwd()), { executor: o.executor });
      const all = tokensOfFile(model.tokenizer, resolveTextRef(o.text, process.cwd()), skip + n);
      if (all.length < skip + n)
        throw new ConfigError(
          "--tokens",
          `the text has ${all.length} tokens, fewer than --skip + --tokens (${skip + n})`,
        );
      const bos = model.tokenizer.addsBos ? model.tokenizer.bosId : undefined;
      const ids = all.slice(skip, skip + n);
      if (bos !== undefined) ids[0] = bos;
      const p = await profileHeads(model, ids, { sinks, recent });
      model.dispose();
      const round = (x: number) => Number(x.toFixed(4));
      const scores = p.scores.map((r) => r.map(round));
      const maps = Object.fromEntries(
        [0.25, 0.5, 0.75].map((r) => [r, headMapText(retrievalHeads(scores.flat(), r), scores[0]!.length)]),
      );
      if (o.json) {
        console.log(
          JSON.stringify({ model: o.model, text: o.text, skip, tokens: n, sinks, recent, scores, maps }),
        );
        return;
      }
      console.log(`# ${o.model} on ${o.text}, tokens ${skip}..${skip + n}, sinks ${sinks}, recent ${recent}`);
      console.log("# mass outside sinks + recent window, per layer (bottom first), per KV head");
      console.log(`scores: ${JSON.stringify(scores)}`);
      for (const [r, m] of Object.entries(maps)) console.log(`# retrieval ${r}: ${m}`);
    });
}
