/** `kvlab fetch-model <repo>`: download a HF model's config, tokenizer and safetensors weights. */
import type { Command } from "commander";
import { fetchModel } from "../model/fetch.ts";

export function register(program: Command): void {
  program
    .command("fetch-model")
    .description("download a Hugging Face model (config, tokenizer, safetensors) into a local directory")
    .argument("<repo>", 'repo id, e.g. "HuggingFaceTB/SmolLM2-135M"')
    .option("--revision <rev>", "branch, tag or commit", "main")
    .option(
      "--dir <dir>",
      "target directory (default: $KVLAB_MODELS or ~/.cache/kvlab/models/<owner>--<name>)",
    )
    .action(async (repo: string, o: { revision: string; dir?: string }) => {
      const dir = await fetchModel(repo, {
        revision: o.revision,
        dir: o.dir,
        onFile: (name, bytes) => console.error(`  ${name}${bytes ? ` (${bytes} bytes)` : ""}`),
      });
      console.log(dir);
    });
}
