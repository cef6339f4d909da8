/**
 * Perplexity protocols over a tokenized text, with every attention through a KVCache.
 *
 * `llamacpp` reproduces llama.cpp's `llama-perplexity` exactly (see
 * shared/reference/stories260K-wikitext2.json, perplexity_protocol.steps):
 *   tokens = tokenize(whole text, add_bos = true)
 *   segment i = tokens[i*nCtx, (i+1)*nCtx) for i < nChunks, with its first token replaced by BOS
 *     (when the vocab adds BOS at all: llama.cpp's add_bos; false for e.g. Qwen2)
 *   run it from an empty cache at positions 0..nCtx-1 (one forward of nCtx tokens)
 *   score j = nCtx/2 .. nCtx-2: NLL of segment[j+1] under logits[j]
 *   PPL = exp(total NLL / (nChunks * (nCtx - 1 - nCtx/2)))
 *
 * `chunked` uses the same segments, BOS replacement and scored positions, but feeds each
 * segment in chunks of `chunkSize` tokens, each chunk attending to the (compressed) cache of the
 * earlier chunks and to itself. chunkSize = 1 is true token-by-token decoding; chunkSize = nCtx
 * is the llamacpp protocol. Keeping the scored set identical makes the two directly comparable.
 *
 * API (stable; the experiment harness builds KL divergence on `onScored`):
 *
 *   evaluatePerplexity(model, tokens, protocol, cacheOrFactory, hooks?) -> PerplexityResult
 *
 *   - tokens: the whole text's ids, as tokenizer.encode(text) gives them (BOS first when the
 *     vocab uses one, tokenizer.addsBos; only then is each segment's first token set to BOS).
 *   - cacheOrFactory: a KVCache (reset before each segment) or a function making one (called
 *     once with the model's KV shape; the cache it returns is disposed at the end).
 *   - hooks.onScored(logits, target, scoredIndex): logits (vocabSize) of one scored position,
 *     a view valid only during the call; scoredIndex counts scored positions 0.. in order, the
 *     same order for every cache, so runs can be compared position by position.
 *   - hooks.onProgress(done, total): segments done.
 */
import type { CacheMemory, KVCache, KVShape, PhysicalMemory } from "../cache/types.ts";
import { ConfigError, DataError } from "../errors.ts";
import type { LanguageModel } from "../model/llama.ts";
import { type ScoringCost, ScoringPass } from "./scoring-pass.ts";

export type PerplexityProtocol =
  | { kind: "llamacpp"; nCtx: number; nChunks?: number }
  | { kind: "chunked"; nCtx: number; chunkSize: number; nChunks?: number };

export interface PerplexityHooks {
  onScored?(logits: Float32Array /* (vocabSize) */, target: number, scoredIndex: number): void;
  onProgress?(done: number, total: number): void;
}

export interface PerplexityResult {
  /** Mean negative log-likelihood (nats) over scored tokens. */
  nll: number;
  ppl: number;
  /** Number of scored tokens. */
  tokens: number;
  /** Segments run. */
  segments: number;
  /** Cache bytes held at the end of the last segment (a full segment retained or not, per policy). */
  kvBytes: number;
  bitsPerElement: number;
  /** Highest cache total seen (CacheStats.peakBytes, across segments). */
  peakKvBytes: number;
  /** Highest physical (as allocated) bytes seen, for caches that measure them (CacheStats.peakPhysicalBytes). */
  peakPhysicalKvBytes?: number;
  /** Physical bytes by part at the end of the last segment (CacheStats.physical). */
  physicalKvBytes?: PhysicalMemory;
  /** Tokens run through the model (scored or not) per second of wall time. */
  tokensPerSecond: number;
  /** Cache memory at the end of each segment. */
  memoryBySegment: CacheMemory[];
  /** The policy's scoring forwards (KVzip), when it asks for them: their tokens, time and scratch bytes. */
  scoring?: ScoringCost;
}

export type CacheFactory = (shape: KVShape) => KVCache | Promise<KVCache>;

// -log softmax(logits)[target] in double precision: defined beside the ref executor's nll op.
export { nllOf } from "../kernels/ref.ts";

/**
 * The NaN rule: a non-finite logit (NaN or +-Inf, which makes the NLL non-finite), or a
 * non-finite K/V element given to the cache during a segment, is an error of the run, never a
 * "PPL NaN" (or a finite PPL from NaN attention rows an executor zeroed): llama-perplexity
 * likewise stops on NaN logits. Weights are
 * checked finite at load; NaN/Inf reaching the logits comes from the computation or the cache
 * (its stats().nonFinite counts non-finite K/V appended) and is reported with both.
 */
function nonFiniteLogits(row: Float32Array, segment: number, position: number, cache: KVCache): DataError {
  let bad = 0;
  let first = -1;
  for (let i = 0; i < row.length; i++)
    if (!Number.isFinite(row[i]!)) {
      bad++;
      if (first < 0) first = i;
    }
  const what = bad
    ? `${bad} non-finite logits (first: token ${first} = ${row[first]})`
    : "a non-finite NLL from finite logits";
  return new DataError(
    `segment ${segment}, position ${position}: ${what}; the cache saw ${cache.stats().nonFinite} non-finite K/V elements. The model or cache produced NaN/Inf: no perplexity is reported`,
  );
}

function checkProtocol(p: PerplexityProtocol, nTokens: number): { nChunks: number; chunk: number } {
  if (!Number.isInteger(p.nCtx) || p.nCtx < 4)
    throw new ConfigError("protocol.nCtx", `must be an integer >= 4, got ${p.nCtx}`);
  const available = Math.floor(nTokens / p.nCtx);
  const nChunks = p.nChunks ?? available;
  if (!Number.isInteger(nChunks) || nChunks < 1)
    throw new ConfigError("protocol.nChunks", `must be a positive integer, got ${nChunks}`);
  if (nChunks > available)
    throw new ConfigError(
      "protocol.nChunks",
      `${nChunks} chunks of ${p.nCtx} tokens need ${nChunks * p.nCtx} tokens but the text has ${nTokens}; use fewer chunks or a longer text`,
    );
  let chunk = p.nCtx;
  if (p.kind === "chunked") {
    if (!Number.isInteger(p.chunkSize) || p.chunkSize < 1)
      throw new ConfigError("protocol.chunkSize", `must be a positive integer, got ${p.chunkSize}`);
    chunk = Math.min(p.chunkSize, p.nCtx);
  } else if (p.kind !== "llamacpp")
    throw new ConfigError(
      "protocol.kind",
      `unknown protocol ${JSON.stringify((p as { kind: unknown }).kind)}`,
    );
  return { nChunks, chunk };
}

export async function evaluatePerplexity(
  model: LanguageModel,
  tokens: ArrayLike<number>,
  protocol: PerplexityProtocol,
  cacheOrFactory: KVCache | CacheFactory,
  hooks: PerplexityHooks = {},
): Promise<PerplexityResult> {
  const { nChunks, chunk } = checkProtocol(protocol, tokens.length);
  const nCtx = protocol.nCtx;
  // As llama-perplexity: the first token becomes BOS only for vocabs that use one (add_bos).
  const bos = model.tokenizer.addsBos ? model.tokenizer.bosId : undefined;
  const vocab = model.config.vocabSize;
  const owned = typeof cacheOrFactory === "function";
  const cache = owned ? await cacheOrFactory(model.kvShape(nCtx)) : cacheOrFactory;
  const first = nCtx >> 1;
  const positions = new Int32Array(nCtx); // (nCtx) 0..nCtx-1
  for (let i = 0; i < nCtx; i++) positions[i] = i;
  const seg = new Int32Array(nCtx); // (nCtx) the current segment's ids
  // The executor's NLL op (SIMD, split across its threads) when it has one; nllOf otherwise.
  const exec = model.executor;
  const targets = new Int32Array(nCtx); // (nCtx) targets of one forward call's scored rows
  const nlls = new Float64Array(nCtx); // (nCtx) their NLLs
  const memoryBySegment: CacheMemory[] = [];
  let total = 0;
  let scored = 0;
  let peak = 0;
  let peakPhysical: number | undefined;
  let physical: PhysicalMemory | undefined;
  const t0 = performance.now();
  const nonFiniteBefore = cache.stats().nonFinite;
  // A policy that scores with an extra forward (RetentionPolicy.scoring) gets it before each chunk.
  const pass = ScoringPass.for(model, cache);
  try {
    for (let c = 0; c < nChunks; c++) {
      for (let i = 0; i < nCtx; i++) seg[i] = tokens[c * nCtx + i]!;
      if (bos !== undefined) seg[0] = bos;
      cache.reset();
      pass?.reset();
      for (let a = 0; a < nCtx; a += chunk) {
        const b = Math.min(a + chunk, nCtx);
        const n = b - a;
        await pass?.before(seg.subarray(a, b), positions.subarray(a, b));
        // Logits only from the first scored row in this chunk (at least one row: forward needs it).
        const firstLogit = Math.min(Math.max(first - a, 0), n - 1);
        const logits = await model.forward(seg.subarray(a, b), positions.subarray(a, b), cache, {
          firstLogit,
        });
        const jEnd = Math.min(b, nCtx - 1);
        const j0 = Math.max(a, first);
        // Scored rows j0..jEnd-1 are logits rows 0.. (firstLogit = j0 - a whenever any are scored).
        const nScored = Math.max(0, jEnd - j0);
        for (let r = 0; r < nScored; r++) targets[r] = seg[j0 + r + 1]!;
        if (nScored > 0) exec.nll(nlls, logits, targets, nScored, vocab);
        for (let r = 0; r < nScored; r++) {
          if (!Number.isFinite(nlls[r]!))
            throw nonFiniteLogits(logits.subarray(r * vocab, (r + 1) * vocab), c, j0 + r, cache);
          total += nlls[r]!;
          hooks.onScored?.(logits.subarray(r * vocab, (r + 1) * vocab), targets[r]!, scored);
          scored++;
        }
      }
      const nonFinite = cache.stats().nonFinite;
      if (nonFinite > nonFiniteBefore)
        throw new DataError(
          `segment ${c}: the cache was given ${nonFinite - nonFiniteBefore} non-finite K/V elements (NaN/Inf from the model); executors may attend over them differently, so no perplexity is reported`,
        );
      memoryBySegment.push(cache.memory());
      const st = cache.stats();
      peak = Math.max(peak, st.peakBytes);
      if (st.peakPhysicalBytes !== undefined)
        peakPhysical = Math.max(peakPhysical ?? 0, st.peakPhysicalBytes);
      physical = st.physical;
      hooks.onProgress?.(c + 1, nChunks);
    }
  } finally {
    if (owned) cache.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const last = memoryBySegment[memoryBySegment.length - 1]!;
  const nll = total / scored;
  return {
    nll,
    ppl: Math.exp(nll),
    tokens: scored,
    segments: nChunks,
    kvBytes: last.total,
    bitsPerElement: last.bitsPerElement,
    peakKvBytes: peak,
    ...(peakPhysical !== undefined ? { peakPhysicalKvBytes: peakPhysical } : {}),
    ...(physical ? { physicalKvBytes: physical } : {}),
    tokensPerSecond: (nChunks * nCtx) / seconds,
    memoryBySegment,
    ...(pass ? { scoring: pass.cost() } : {}),
  };
}
