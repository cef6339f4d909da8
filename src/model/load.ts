/** loadModel: one entry point for every model format, chosen by what the path is. */
import { ConfigError, DeviceUnavailableError, ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { getExecutor } from "../kernels/registry.ts";
import { existsSync, statSync } from "../platform/host.ts";
import { loadGgufModel } from "./gguf.ts";
import { loadHfModel } from "./hf.ts";
import type { LanguageModel } from "./llama.ts";
import { loadLlama2cModel } from "./llama2c.ts";
import { WEIGHTS_MODES, type WeightsMode } from "./tensors.ts";

export interface LoadModelOptions {
  /** Executor name or instance (weights live in its memory); default: the registry's default. */
  executor?: string | Executor;
  /** llama2.c only: the tokenizer.bin to use (default: tokenizer.bin or the one tok*.bin beside it). */
  tokenizer?: string;
  /**
   * How weight matrices are held (src/model/tensors.ts): "keep" (default) leaves F16/BF16
   * matrices 16-bit, widened exactly inside the matmul (same results, half the memory); "f32"
   * widens them on load. llama2.c checkpoints are f32 either way.
   */
  weights?: WeightsMode;
}

/**
 * Load a model from a HF directory (config.json + *.safetensors + tokenizer.json), a llama2.c
 * checkpoint (*.bin, with tokenizer.bin beside it) or a GGUF file (*.gguf).
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<LanguageModel> {
  if (options.weights !== undefined && !WEIGHTS_MODES.includes(options.weights))
    throw new ConfigError(
      "weights",
      `expected one of ${WEIGHTS_MODES.join(", ")}, got "${String(options.weights)}"`,
    );
  const exec = typeof options.executor === "object" ? options.executor : await getExecutor(options.executor);
  const model = await loadOnExecutor(path, exec, options);
  // An executor with its own device runs the whole forward there (webgpu: weights, activations
  // and the cache in GPU buffers, src/gpu/forward.ts).
  return exec.prepareModel ? exec.prepareModel(model) : model;
}

async function loadOnExecutor(
  path: string,
  exec: Executor,
  options: LoadModelOptions,
): Promise<LanguageModel> {
  if (!existsSync(path)) throw new ModelFormatError(path, "no such file or directory");
  try {
    if (statSync(path).isDirectory()) return await loadHfModel(path, exec, options.weights);
    if (path.endsWith(".gguf")) return await loadGgufModel(path, exec, options.weights);
    if (path.endsWith(".bin")) return await loadLlama2cModel(path, exec, options.tokenizer);
  } catch (err) {
    // The wasm executor's memory is 32-bit (4 GiB at most): f32 weights of a >1B model do not fit.
    if (err instanceof RangeError && /memory/i.test(err.message))
      throw new DeviceUnavailableError(
        `${path}: the model's weights do not fit in the ${exec.name} executor's memory (${err.message}); use a smaller model${options.weights === "f32" ? ", 16-bit weights (--weights keep)" : ""} or --executor ref`,
      );
    throw err;
  }
  throw new ModelFormatError(
    path,
    "unrecognised model file; give a HF directory, a llama2.c .bin or a .gguf file",
  );
}
