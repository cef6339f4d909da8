/**
 * loadModelFromFiles: a model given as bytes (fetched over HTTP, or files a user dropped on a
 * page) rather than a path. The files are mounted in memory (src/platform/host.browser.ts) and
 * loaded by loadModel, so every format loads through the same code as on disk: a HF folder
 * (config.json + *.safetensors + tokenizer.json), a GGUF file, or a llama2.c checkpoint with
 * its tokenizer.bin. On Node the files are written to a temporary directory for the load; in a
 * browser they are served from memory. Either way they are dropped once the model is loaded
 * (the weights then live in the executor's memory).
 */
import { ModelFormatError } from "../errors.ts";
import { join, mountFiles, unmountFiles } from "../platform/host.ts";
import type { LanguageModel } from "./llama.ts";
import { type LoadModelOptions, loadModel } from "./load.ts";

let mounts = 0;

/** The path loadModel should get for these file names (relative to their folder). */
export function modelPathOf(dir: string, names: string[]): string {
  if (names.includes("config.json")) return dir;
  const gguf = names.filter((n) => n.endsWith(".gguf"));
  if (gguf.length === 1) return join(dir, gguf[0]!);
  const bins = names.filter((n) => n.endsWith(".bin") && !/^tok.*\.bin$/.test(n));
  if (bins.length === 1) return join(dir, bins[0]!);
  throw new ModelFormatError(
    `[${names.join(", ")}]`,
    "give a HF folder (config.json, *.safetensors, tokenizer.json), one .gguf file, or a llama2.c .bin with its tokenizer.bin",
  );
}

/** Load a model from its files' bytes (name relative to the model folder -> bytes). */
export async function loadModelFromFiles(
  files: Record<string, Uint8Array>,
  options: LoadModelOptions = {},
): Promise<LanguageModel> {
  const dir = mountFiles(`/kvlab-models/${mounts++}`, files);
  try {
    return await loadModel(modelPathOf(dir, Object.keys(files)), options);
  } finally {
    unmountFiles(dir);
  }
}
