/** `kvlab generate`: continue a prompt (greedy at temperature 0), through a chosen KV cache. */
import type { Command } from "commander";
import { createCache } from "../cache/create.ts";
import { resolveCacheSpec } from "../cache/spec.ts";
import { ConfigError } from "../errors.ts";
import { generate } from "../model/generate.ts";
import { loadModel } from "../model/load.ts";
import type { WeightsMode } from "../model/tensors.ts";
import { parseCacheOption, parseIntOption } from "./ppl.ts";

interface GenerateCliOptions {
  model: string;
  prompt: string;
  n: string;
  temperature: string;
  seed: string;
  cache: string;
  executor?: string;
  weights?: string;
  tokenizer?: string;
}

export function register(program: Command): void {
  program
    .command("generate")
    .description("continue a prompt with a model (greedy at temperature 0)")
    .requiredOption("--model <path>", "HF directory, llama2.c .bin or .gguf file")
    .requiredOption("--prompt <text>", "prompt text (BOS prepended when the vocab uses one)")
    .option("-n, --n <tokens>", "tokens to generate", "64")
    .option("--temperature <t>", "0 = greedy", "0")
    .option("--seed <s>", "sampling seed", "0")
    .option("--cache <spec>", "cache spec: codec or preset name, or JSON", "f32")
    .option("--executor <name>", "ref | wasm | webgpu (default: wasm)")
    .option(
      "--weights <mode>",
      "keep: F16/BF16 (and GGUF Q8_0) matrices stay as stored, widened inside the matmul (same results, half the memory or less); f32: widened on load",
      "keep",
    )
    .option("--tokenizer <file>", "llama2.c only: tokenizer.bin (default: beside the checkpoint)")
    .action(async (o: GenerateCliOptions) => {
      const n = parseIntOption("-n", o.n, 1)!;
      const temperature = Number(o.temperature);
      if (!(temperature >= 0))
        throw new ConfigError("--temperature", `expected a number >= 0, got "${o.temperature}"`);
      const input = parseCacheOption(o.cache);
      resolveCacheSpec(input, "--cache");
      const model = await loadModel(o.model, {
        executor: o.executor,
        tokenizer: o.tokenizer,
        weights: o.weights as WeightsMode,
      });
      const prompt = model.tokenizer.encode(o.prompt);
      const cache = await createCache(input, model.kvShape(prompt.length + n), { executor: model.executor });
      const ids = await generate(model, prompt, n, cache, {
        temperature,
        seed: parseIntOption("--seed", o.seed, 0),
      });
      console.log(model.tokenizer.decode([...prompt, ...ids]));
      cache.dispose();
      model.dispose();
    });
}
