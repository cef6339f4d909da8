/**
 * Autoregressive generation: prefill the prompt in one forward call, then one token per call,
 * all through the given KV cache (so generation under a compressed cache is one flag away).
 */
import type { KVCache } from "../cache/types.ts";
import { ConfigError } from "../errors.ts";
import { mulberry32 } from "../rng.ts";
import type { LanguageModel } from "./llama.ts";

export interface GenerateOptions {
  /** 0 (default) is greedy argmax; otherwise softmax(logits / temperature) sampling. */
  temperature?: number;
  /** Seed of the sampler (mulberry32), for reproducible sampling. */
  seed?: number;
  /** Stop at the model's EOS token (default true). */
  stopAtEos?: boolean;
  onToken?(id: number): void;
}

/** Index of the largest logit (first on ties). logits: (vocabSize). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

function sample(logits: Float32Array, temperature: number, rand: () => number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i]! - max) / temperature);
  let r = rand() * sum;
  for (let i = 0; i < logits.length; i++) {
    r -= Math.exp((logits[i]! - max) / temperature);
    if (r <= 0) return i;
  }
  return logits.length - 1;
}

/** Generate up to n tokens after `prompt` (ids, BOS included if wanted); returns the new ids. */
export async function generate(
  model: LanguageModel,
  prompt: number[],
  n: number,
  cache: KVCache,
  opts: GenerateOptions = {},
): Promise<number[]> {
  const temperature = opts.temperature ?? 0;
  if (!(temperature >= 0)) throw new ConfigError("temperature", `must be >= 0, got ${temperature}`);
  if (prompt.length === 0) throw new ConfigError("prompt", "the prompt has no tokens");
  if (prompt.length + n > cache.shape.maxTokens)
    throw new ConfigError(
      "n",
      `prompt (${prompt.length}) + ${n} new tokens exceed the cache's ${cache.shape.maxTokens} tokens`,
    );
  const rand = mulberry32(opts.seed ?? 0);
  const vocab = model.config.vocabSize;
  const eos = opts.stopAtEos === false ? undefined : model.tokenizer.eosId;
  cache.reset();
  const positions = new Int32Array(prompt.length + n); // (prompt + n) 0, 1, ...
  for (let i = 0; i < positions.length; i++) positions[i] = i;
  let logits = await model.forward(prompt, positions.subarray(0, prompt.length), cache, {
    firstLogit: prompt.length - 1,
  });
  const out: number[] = [];
  const one = new Int32Array(1);
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(0, vocab);
    const id = temperature === 0 ? argmax(row) : sample(row, temperature, rand);
    out.push(id);
    opts.onToken?.(id);
    if (id === eos || i === n - 1) break;
    one[0] = id;
    const p = prompt.length + i;
    logits = await model.forward(one, positions.subarray(p, p + 1), cache);
  }
  return out;
}
