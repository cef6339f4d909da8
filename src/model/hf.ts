/**
 * Hugging Face model directory: config.json, model.safetensors or sharded
 * model-0000i-of-0000n.safetensors with model.safetensors.index.json, tokenizer.json.
 */
import { ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { existsSync, isAbsolute, join, readdirSync, relative, resolve } from "../platform/host.ts";
import { parseHfConfig } from "./config.ts";
import { readJson } from "./json-strict.ts";
import { LlamaModel } from "./llama.ts";
import { HF_NAMES, loadLlamaWeights } from "./llama-weights.ts";
import { readSafetensorsHeader } from "./safetensors.ts";
import { FileSet, type TensorEntry, TensorSet, type WeightsMode } from "./tensors.ts";
import { loadHfTokenizer } from "./tokenizer.ts";

/** `name` from an index, as a path that stays inside dir (no "..", no absolute path). */
function shardPath(dir: string, name: unknown, index: string, tensor: string): string {
  if (typeof name !== "string" || name === "")
    throw new ModelFormatError(index, `weight_map["${tensor}"] is not a file name`);
  const full = resolve(dir, name);
  const rel = relative(resolve(dir), full);
  if (isAbsolute(name) || rel === "" || rel.startsWith("..") || isAbsolute(rel))
    throw new ModelFormatError(
      index,
      `weight_map["${tensor}"] = ${JSON.stringify(name)} points outside the model directory`,
    );
  return join(dir, name);
}

/** Every tensor of the directory's safetensors files (one file or an index of shards). */
export function hfTensors(dir: string, files: FileSet, weights: WeightsMode = "keep"): TensorSet {
  const index = join(dir, "model.safetensors.index.json");
  let shardFiles: string[];
  let where: string;
  let weightMap: Record<string, string> | undefined;
  if (existsSync(index)) {
    const j = readJson(index) as { weight_map?: Record<string, string> };
    if (typeof j?.weight_map !== "object" || j.weight_map === null || Array.isArray(j.weight_map))
      throw new ModelFormatError(index, 'missing "weight_map"');
    weightMap = j.weight_map;
    for (const [t, f] of Object.entries(weightMap)) shardPath(dir, f, index, t);
    shardFiles = [...new Set(Object.values(weightMap))].map((f) => join(dir, f));
    where = index;
  } else {
    shardFiles = readdirSync(dir)
      .filter((f) => f.endsWith(".safetensors"))
      .sort()
      .map((f) => join(dir, f));
    if (shardFiles.length === 0)
      throw new ModelFormatError(dir, "no *.safetensors file in the model directory");
    where = shardFiles.length === 1 ? shardFiles[0]! : dir;
  }
  const entries = new Map<string, TensorEntry>();
  for (const f of shardFiles) {
    if (!existsSync(f)) throw new ModelFormatError(f, `shard listed in ${index} is missing`);
    for (const t of readSafetensorsHeader(files, f)) {
      const seen = entries.get(t.name);
      if (seen)
        throw new ModelFormatError(
          f,
          `tensor "${t.name}" is also in ${seen.file}: one name, two tensors`,
          t.headerOffset,
        );
      entries.set(t.name, t);
    }
  }
  if (weightMap)
    for (const [name, f] of Object.entries(weightMap))
      if (entries.get(name)?.file !== join(dir, f))
        throw new ModelFormatError(
          join(dir, f),
          `index says tensor "${name}" is in this shard, but it is not`,
        );
  return new TensorSet(entries, files, where, weights);
}

export async function loadHfModel(
  dir: string,
  exec: Executor,
  weightsMode: WeightsMode = "keep",
): Promise<LlamaModel> {
  const cfgFile = join(dir, "config.json");
  if (!existsSync(cfgFile)) throw new ModelFormatError(cfgFile, "missing config.json in the model directory");
  const cfg = parseHfConfig(readJson(cfgFile), cfgFile);
  const tokenizer = loadHfTokenizer(dir, { bosId: cfg.bosId, eosId: cfg.eosId });
  const files = new FileSet();
  try {
    const ts = hfTensors(dir, files, weightsMode);
    const weights = loadLlamaWeights(cfg, exec, ts, HF_NAMES);
    return new LlamaModel(cfg, weights, tokenizer, exec, `hf:${dir}`);
  } finally {
    files.close();
  }
}
