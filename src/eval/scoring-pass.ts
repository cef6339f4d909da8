/**
 * The protocol side of a scoring forward (RetentionPolicy.scoring, src/cache/policy.ts), as
 * KVzip (Kim et al. 2025, "KVzip: Query-Agnostic KV Cache Compression with Context
 * Reconstruction", arXiv:2505.23416, Sec. 3) scores KV pairs: the model is asked to repeat the
 * context ("Repeat the previous context:" + the context, teacher forced) with the context's KV
 * cache attached, and each KV pair's score is the largest attention any of those queries (and
 * any query head of its GQA group) gives it, the softmax taken over the context and the repeat
 * tokens together. For long contexts the paper repeats the context in chunks, each chunk's
 * forward attending to the whole cache, and keeps the maximum over chunks.
 *
 * Here, before each prefill chunk reaches the measured cache, the pass
 *   1. feeds the chunk into a scratch f32 copy of the context seen so far (ScratchCache), then
 *   2. forwards prompt + the chunk's own tokens after it (positions continuing past the chunk),
 *      attending to that copy, and raises each context position's score to the largest
 *      probability it received (a running maximum over the passes since reset), then
 *   3. cuts the scratch copy back to the context, so no scoring token is ever kept,
 * and hands the scores to the policy, which then evicts with them while the measured cache
 * attends to the chunk. Differences from the paper, documented: the scores are computed on the
 * uncompressed context (the paper compresses once, after a full prefill, so its cache is the
 * uncompressed one too; in a streamed prefill the measured cache has already evicted), and
 * chunk i's repeat sees the context up to chunk i, not the whole context (streaming is causal).
 * The copy is the pass's memory, reported with its compute (`cost()`), not as the run's KV bytes.
 */
import { policyOf, type ScoringRequest } from "../cache/policy.ts";
import type { KVCache } from "../cache/types.ts";
import { ConfigError } from "../errors.ts";
import type { LanguageModel } from "../model/llama.ts";
import { ScratchCache } from "./scratch-cache.ts";

/** What the scoring forwards of one run cost, for the run record. */
export interface ScoringCost {
  /** Scoring forwards run (one per prefill chunk). */
  passes: number;
  /** Tokens forwarded for scoring: the context into the copy plus prompt + repeated chunk. */
  tokens: number;
  /** Of them, tokens of the prompt and the repeated chunks (the paper's extra forward). */
  repeatTokens: number;
  /** Wall time spent in scoring forwards. */
  seconds: number;
  /** Most bytes the f32 copy of the context held. */
  scratchBytes: number;
  /** The prompt's token count. */
  promptTokens: number;
}

export class ScoringPass {
  private readonly mirror: ScratchCache;
  private readonly prompt: number[];
  private readonly byPos: Float32Array[]; // per (layer, KV head): (maxTokens) score by position
  private readonly costs: ScoringCost;

  /** The pass a cache's policy asks for, or null when it asks for none. */
  static for(model: LanguageModel, cache: KVCache): ScoringPass | null {
    const request = policyOf(cache)?.scoring;
    if (!request) return null;
    // The copy is cut back after each pass, so positions go back: the sliding-window forward
    // (src/model/sliding-window.ts) tracks positions per cache and is not ready for that.
    if (model.config.slidingWindow !== undefined)
      throw new ConfigError(
        "cache.policy",
        `policy ${policyOf(cache)!.name} scores with an extra forward, which does not support sliding-window models (${model.config.arch}, window ${model.config.slidingWindow}) yet; use another policy`,
      );
    return new ScoringPass(model, request, cache.shape.maxTokens);
  }

  constructor(
    private readonly model: LanguageModel,
    private readonly request: ScoringRequest,
    private readonly maxTokens: number,
  ) {
    this.prompt = model.tokenizer.encode(request.prompt, { addBos: false });
    // The context, then at most prompt + a chunk as long as the context.
    this.mirror = new ScratchCache(model.kvShape(2 * maxTokens + this.prompt.length));
    const { nLayers, nKvHeads } = this.mirror.shape;
    this.byPos = Array.from({ length: nLayers * nKvHeads }, () => new Float32Array(maxTokens));
    this.costs = {
      passes: 0,
      tokens: 0,
      repeatTokens: 0,
      seconds: 0,
      scratchBytes: 0,
      promptTokens: this.prompt.length,
    };
    const nKv = nKvHeads;
    this.mirror.observer = null;
    this.observe = (layer, kvHead, probs, nRows, n, positions) => {
      const s = this.byPos[layer * nKv + kvHead]!;
      const ctx = Math.min(n, this.context);
      for (let j = 0; j < ctx; j++) {
        const p = positions[j]!;
        if (p >= s.length) continue;
        let m = s[p]!;
        for (let r = 0; r < nRows; r++) if (probs[r * n + j]! > m) m = probs[r * n + j]!;
        s[p] = m;
      }
    };
  }

  private context = 0;
  private scoredUpTo = 0;
  private readonly observe: NonNullable<ScratchCache["observer"]>;

  /** Start of a new sequence (the measured cache was reset). */
  reset(): void {
    this.mirror.reset();
    for (const s of this.byPos) s.fill(0);
    this.context = 0;
    this.scoredUpTo = 0;
    this.handOver();
  }

  /** Score before the measured cache sees this prefill chunk: ids (n) at positions (n). */
  async before(ids: ArrayLike<number>, positions: Int32Array): Promise<void> {
    const n = positions.length;
    if (n === 0) return;
    const t0 = performance.now();
    this.mirror.observer = null;
    await this.model.forward(ids, positions, this.mirror, { firstLogit: n - 1 });
    this.context = this.mirror.length;
    this.scoredUpTo = positions[n - 1]! + 1;
    const last = positions[n - 1]!;
    const repeat = [...this.prompt, ...Array.from(ids)];
    const rPos = Int32Array.from({ length: repeat.length }, (_, i) => last + 1 + i);
    this.mirror.observer = this.observe;
    await this.model.forward(repeat, rPos, this.mirror, { firstLogit: repeat.length - 1 });
    this.mirror.observer = null;
    this.mirror.truncate(this.context);
    this.handOver();
    const c = this.costs;
    c.passes++;
    c.tokens += n + repeat.length;
    c.repeatTokens += repeat.length;
    c.seconds += (performance.now() - t0) / 1000;
    c.scratchBytes = Math.max(c.scratchBytes, this.mirror.bytes());
  }

  cost(): ScoringCost {
    return { ...this.costs };
  }

  private handOver(): void {
    const { nLayers, nKvHeads } = this.mirror.shape;
    for (let l = 0; l < nLayers; l++)
      for (let h = 0; h < nKvHeads; h++)
        this.request.scores(l, h, this.byPos[l * nKvHeads + h]!, this.scoredUpTo);
  }
}
