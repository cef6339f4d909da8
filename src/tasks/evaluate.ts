/**
 * Running task samples through a KV cache and scoring the greedy answers.
 *
 * Protocols (as kvpress distinguishes them):
 *   agnostic (default): the context is streamed through the cache in prefill chunks of
 *     `prefillChunk` tokens; the policy evicts after each chunk, so everything it decides is
 *     decided before the question arrives. Then the question is fed, then the answer decoded.
 *   aware: the question is part of the prefill. The prompt (context + question) is cut into
 *     chunks from its end, so the last chunk holds the question (and the context's tail) and
 *     the policy's last eviction sees the question's queries (what SnapKV's observation window
 *     is for). Earlier chunks evict as in agnostic.
 * Both then decode greedily (argmax), one token per forward, through the same cache.
 *
 * Per sample it records whether the answer is right, the probability and rank of the first
 * answer token right after the question (a graded signal for small models), and the cache
 * bytes held at the moment the question has been read (memory().total, after the policy's
 * last eviction).
 */
import type { KVCache, KVShape } from "../cache/types.ts";
import { ConfigError } from "../errors.ts";
import { type ScoringCost, ScoringPass } from "../eval/scoring-pass.ts";
import { argmax } from "../model/generate.ts";
import type { LanguageModel } from "../model/llama.ts";
import type { MatchRule, TaskSample } from "./generate.ts";
import { summarizeTask, type TaskSummary } from "./metrics.ts";

export type TaskProtocol = "agnostic" | "aware";

export interface TaskEvalOptions {
  protocol: TaskProtocol;
  /** Tokens per prefill forward call (default 256). */
  prefillChunk?: number;
  /** Extra tokens decoded beyond the answer's own token count (default 3). */
  extraTokens?: number;
  onSample?(result: SampleResult, done: number, total: number): void;
}

export interface SampleResult {
  length: number;
  depth: number;
  index: number;
  /** Prompt tokens (context + question). */
  tokens: number;
  correct: boolean;
  answer: string;
  /** The decoded answer, cut at the first newline. */
  output: string;
  /** Probability and rank (0 = the argmax) of the first answer token after the question. */
  answerProb: number;
  answerRank: number;
  /** Cache bytes when the question has been read. */
  kvBytes: number;
}

export interface TaskEvalResult extends TaskSummary {
  protocol: TaskProtocol;
  prefillChunk: number;
  samples: SampleResult[];
  /** The policy's scoring forwards (KVzip) over all samples, when it asks for them. */
  scoring?: ScoringCost;
}

export const DEFAULT_PREFILL_CHUNK = 256;

/** Is `output` (the model's continuation) a right answer to `answer` under `rule`? */
export function judge(output: string, answer: string, rule: MatchRule): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/\s+/g, " ").trim();
  switch (rule) {
    case "digits":
      return (output.match(/\d+/)?.[0] ?? "") === answer;
    case "exact":
      return norm(output).replace(/[.!?,;:]+$/, "") === norm(answer);
    case "contains":
      return norm(output).includes(norm(answer));
    case "all-words": {
      const words = new Set(norm(output).split(/[^a-z0-9]+/));
      return norm(answer)
        .split(" ")
        .every((w) => words.has(w));
    }
  }
}

/** softmax probability and rank of `id` in logits (vocab). */
function probAndRank(logits: Float32Array, id: number): { prob: number; rank: number } {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  let rank = 0;
  const x = logits[id]!;
  for (let i = 0; i < logits.length; i++) {
    sum += Math.exp(logits[i]! - max);
    if (logits[i]! > x) rank++;
  }
  return { prob: Math.exp(x - max) / sum, rank };
}

/**
 * Feed ids at positions start.. in the given chunk lengths; returns the last row's logits (a
 * copy). A scoring pass (KVzip) scores each prefill chunk before the cache sees it.
 */
async function feed(
  model: LanguageModel,
  cache: KVCache,
  ids: number[],
  start: number,
  chunks: number[],
  pass: ScoringPass | null = null,
): Promise<Float32Array> {
  let a = 0;
  let last: Float32Array | undefined;
  for (const n of chunks) {
    const pos = new Int32Array(n); // (n) absolute positions
    for (let i = 0; i < n; i++) pos[i] = start + a + i;
    await pass?.before(ids.slice(a, a + n), pos);
    const logits = await model.forward(ids.slice(a, a + n), pos, cache, { firstLogit: n - 1 });
    last = logits.slice(0, model.config.vocabSize);
    a += n;
  }
  return last!;
}

/** Chunk lengths covering n tokens: from the front (agnostic) or from the back (aware). */
function chunkLengths(n: number, chunk: number, fromEnd: boolean): number[] {
  const out: number[] = [];
  for (let left = n; left > 0; left -= chunk) out.push(Math.min(chunk, left));
  return fromEnd ? out.reverse() : out;
}

/** Run one sample through `cache` (reset first). */
export async function runSample(
  model: LanguageModel,
  cache: KVCache,
  s: TaskSample,
  protocol: TaskProtocol,
  prefillChunk: number,
  extraTokens: number,
  pass: ScoringPass | null = null,
): Promise<SampleResult> {
  cache.reset();
  pass?.reset();
  const promptLen = s.context.length + s.question.length;
  let logits: Float32Array;
  if (protocol === "agnostic") {
    await feed(model, cache, s.context, 0, chunkLengths(s.context.length, prefillChunk, false), pass);
    // No scoring forward for the question: a scoring policy (KVzip) stays query-agnostic, and
    // the question's tokens, never scored, are kept while scored context tokens can go.
    logits = await feed(
      model,
      cache,
      s.question,
      s.context.length,
      chunkLengths(s.question.length, prefillChunk, false),
    );
  } else {
    const prompt = [...s.context, ...s.question];
    logits = await feed(model, cache, prompt, 0, chunkLengths(prompt.length, prefillChunk, true), pass);
  }
  const { prob, rank } = probAndRank(logits, s.answerIds[0]!);
  const kvBytes = cache.memory().total;
  const maxNew = s.answerIds.length + extraTokens;
  const eos = model.tokenizer.eosId;
  const out: number[] = [];
  const one = new Int32Array(1);
  for (let i = 0; i < maxNew; i++) {
    const id = argmax(logits);
    if (id === eos) break;
    out.push(id);
    if (i === maxNew - 1) break;
    one[0] = id;
    const r = await model.forward(one, Int32Array.of(promptLen + i), cache);
    logits = r.subarray(0, model.config.vocabSize);
  }
  const output = model.tokenizer.decode(out).split("\n")[0]!;
  return {
    length: s.length,
    depth: s.depth,
    index: s.index,
    tokens: promptLen,
    correct: judge(output, s.answer, s.match),
    answer: s.answer,
    output: output.trim(),
    answerProb: prob,
    answerRank: rank,
    kvBytes,
  };
}

/** Tokens a cache must hold for these samples (prompt + decoded answer). */
export function maxTokensFor(samples: TaskSample[], extraTokens = 3): number {
  let m = 0;
  for (const s of samples)
    m = Math.max(m, s.context.length + s.question.length + s.answerIds.length + extraTokens);
  return m;
}

/**
 * Evaluate every sample under one cache backend. `cacheOrFactory`: a cache (reset per sample;
 * its maxTokens must cover maxTokensFor(samples)) or a factory called once with the model's
 * KV shape (the cache it returns is disposed at the end).
 */
export async function evaluateTask(
  model: LanguageModel,
  samples: TaskSample[],
  cacheOrFactory: KVCache | ((shape: KVShape) => KVCache | Promise<KVCache>),
  opts: TaskEvalOptions,
): Promise<TaskEvalResult> {
  if (samples.length === 0) throw new ConfigError("samples", "no task samples to evaluate");
  const prefillChunk = opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  if (!Number.isInteger(prefillChunk) || prefillChunk < 1)
    throw new ConfigError("prefillChunk", `expected an integer >= 1, got ${prefillChunk}`);
  if (opts.protocol !== "agnostic" && opts.protocol !== "aware")
    throw new ConfigError("protocol", `expected agnostic or aware, got ${JSON.stringify(opts.protocol)}`);
  const extra = opts.extraTokens ?? 3;
  const need = maxTokensFor(samples, extra);
  const owned = typeof cacheOrFactory === "function";
  const cache = owned ? await cacheOrFactory(model.kvShape(need)) : cacheOrFactory;
  if (cache.shape.maxTokens < need)
    throw new ConfigError("cache", `holds ${cache.shape.maxTokens} tokens but the samples need ${need}`);
  const results: SampleResult[] = [];
  const pass = ScoringPass.for(model, cache);
  try {
    for (const s of samples) {
      const r = await runSample(model, cache, s, opts.protocol, prefillChunk, extra, pass);
      results.push(r);
      opts.onSample?.(r, results.length, samples.length);
    }
  } finally {
    if (owned) cache.dispose();
  }
  return {
    ...summarizeTask(samples[0]!.task, results),
    protocol: opts.protocol,
    prefillChunk,
    samples: results,
    ...(pass ? { scoring: pass.cost() } : {}),
  };
}
