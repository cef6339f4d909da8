/**
 * evaluateCaches: perplexity and KL of several cache specs against the f32 full cache on one
 * model and text, in memory. The same measurements as `kvlab run` (src/experiment/runner.ts):
 * evaluatePerplexity over the same protocol for each cache, KL(P_f32 || P_cache) per scored token
 * from the baseline's top-k log-probs (kl.ts), top-1 agreement, cache bytes. Unlike the runner
 * it writes no files and keeps no baseline on disk, so it runs anywhere the core runs (a
 * browser page or Web Worker included); the web app (web/) is built on it.
 */
import { createCache } from "../cache/create.ts";
import { resolveCacheSpec } from "../cache/spec.ts";
import type { CacheSpecInput, ResolvedCacheSpec } from "../cache/types.ts";
import type { LanguageModel } from "../model/llama.ts";
import { KlAccumulator, type KlSummary, logSoftmax, type TopKEntry, topK } from "./kl.ts";
import { evaluatePerplexity, type PerplexityProtocol } from "./perplexity.ts";

export interface CacheComparison {
  name: string;
  spec: ResolvedCacheSpec;
  nll: number;
  ppl: number;
  /** Scored tokens. */
  tokens: number;
  /** Cache bytes at the end of the last segment, and per stored K/V element. */
  kvBytes: number;
  bitsPerElement: number;
  peakKvBytes: number;
  tokensPerSecond: number;
  /** Against the f32 baseline (the baseline's own row has KL 0 and top-1 agreement 1). */
  kl: KlSummary;
}

export interface EvaluateCachesOptions {
  /** Top-k of the baseline's distribution kept for KL (as the runner's baseline.topK). Default 64. */
  topK?: number;
  /** Seed for randomized policies (as the config's seed). Default 0. */
  seed?: number;
  /** Called after every segment of every cache: run index, its name, segments done of total. */
  onProgress?(run: number, name: string, done: number, total: number): void;
  /** Called with each finished row, in order (for a live table). */
  onResult?(row: CacheComparison, run: number): void;
}

/**
 * Evaluate f32 (the baseline, run first) and then every spec of `specs` (a spec named "f32" is
 * the baseline itself and is not run twice). `tokens`: the text's ids, as the runner makes them
 * (tokenizer.encode(text, { addBos: true })).
 */
export async function evaluateCaches(
  model: LanguageModel,
  tokens: ArrayLike<number>,
  protocol: PerplexityProtocol,
  specs: CacheSpecInput[],
  options: EvaluateCachesOptions = {},
): Promise<CacheComparison[]> {
  const k = options.topK ?? 64;
  const seed = options.seed ?? 0;
  const baseline = resolveCacheSpec({ codec: "f32", name: "f32" }, "(baseline)");
  const runs = [baseline, ...specs.map((s, i) => resolveCacheSpec(s, `caches[${i}]`))].filter(
    (s, i) => i === 0 || s.name !== "f32",
  );
  const base: TopKEntry[] = [];
  const rows: CacheComparison[] = [];
  for (let r = 0; r < runs.length; r++) {
    const spec = runs[r]!;
    const acc = new KlAccumulator();
    let logp: Float64Array | undefined;
    const res = await evaluatePerplexity(
      model,
      tokens,
      protocol,
      (shape) => createCache(spec, shape, { executor: model.executor, seed }),
      {
        onScored(logits, _target, i) {
          if (!logp || logp.length !== logits.length) logp = new Float64Array(logits.length);
          logSoftmax(logits, logp);
          if (r === 0) base[i] = topK(logp, k);
          acc.add(base[i]!, logp);
        },
        onProgress: (done, total) => options.onProgress?.(r, spec.name, done, total),
      },
    );
    const row: CacheComparison = {
      name: spec.name,
      spec,
      nll: res.nll,
      ppl: res.ppl,
      tokens: res.tokens,
      kvBytes: res.kvBytes,
      bitsPerElement: res.bitsPerElement,
      peakKvBytes: res.peakKvBytes,
      tokensPerSecond: res.tokensPerSecond,
      kl: acc.summary(),
    };
    rows.push(row);
    options.onResult?.(row, r);
  }
  return rows;
}
