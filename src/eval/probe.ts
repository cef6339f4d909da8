/**
 * Model probes: the gates a model must pass before kvlab's tables rank eviction policies on it
 * (issue 11, "Gates"). A policy that forgets old tokens can only cost something on a model
 * that uses old tokens; these probes say whether it does. `kvlab probe` prints them.
 *
 * 1. Context curve (`contextCurve`). The text is cut into segments of nCtx tokens exactly as
 *    the perplexity protocols cut it (src/eval/perplexity.ts: BOS first, the second half of each
 *    segment scored), and every segment is decoded token by token (`chunked`, chunkSize 1)
 *    through a full f32 cache and through `window` caches. A window of W means: every query at
 *    every layer attends to exactly the W most recent positions, itself included (keys at
 *    positions p-W+1..p), i.e. banded causal attention. With chunkSize 1 the `window` policy
 *    with budget W - 1 gives exactly that: before a token is appended the cache holds W - 1
 *    tokens, the query sees them and itself, and the policy trims after attending (a larger
 *    chunk would let the first rows of a chunk see more than the last ones). The test suite
 *    checks this against a brute-force banded attention. Every run scores the same tokens, so
 *    per-token NLL differences are paired: for each window the mean difference against the full
 *    cache (ΔNLL, nats; > 0 = the window is worse) comes with a 95% interval from batch means
 *    (`pairedDifference`: blocks of 32 consecutive scored tokens as clusters, since token
 *    losses are autocorrelated; a Student t quantile on blocks - 1 degrees of freedom) and
 *    z = ΔNLL / se. exp(ΔNLL) is the PPL ratio window / full.
 *
 * 2. Copy test (`copyTest`). A passage of P text tokens shown twice, [BOS] + passage + passage.
 *    The second copy's tokens (all but its first, which nothing predicts) are scored with the
 *    full f32 cache and with a short exact window (default 16 < P, so the first copy is out of
 *    every layer's window; the model's receptive field is nLayers x (W - 1) tokens, which must
 *    stay below P for the test to mean anything: the default P is half the context). A model
 *    that can copy (induction heads) predicts the second copy almost perfectly from the first:
 *    `copies` when PPL(full) < 0.5 x PPL(window) (COPY_RATIO_THRESHOLD). PPL of the first copy
 *    (full cache) is reported as the no-copy reference.
 *
 * 3. First-token attention mass (`sinkMass`). Segments of the text are run in one forward
 *    through a thin KVCache wrapper (`AttentionRecorder`) around a real full f32 cache: it
 *    records the keys and values that append receives and, for the queries attend receives,
 *    recomputes softmax(q k / sqrt(headDim)) in float64 over the recorded keys (the kernels are
 *    untouched). For every layer and query head it averages the probability on position 0 over
 *    query positions >= skip (default 8; queries near the start put mass on token 0 trivially),
 *    sampled evenly, at most 128 per segment. The recomputed attention output is compared with
 *    what the real cache returned (`check.maxAbsOutDiff`), so a layout mistake cannot pass
 *    silently. Uniform attention would put mean 1/(p+1) on position 0 (`uniformMass`). Verdict
 *    `sink` when any head of layer >= 1 puts more than SINK_THRESHOLD (0.3) on position 0
 *    (StreamingLLM, Xiao et al. 2023, arXiv:2309.17453: most heads of layers >= 2 of Llama-2
 *    put well over half their mass there).
 *
 * `probeModel(model, tokens, opts)` runs the three and returns one JSON-able object with
 * `gates`: `contextHelps` (the full cache's PPL is below the 128-token window's and the 95%
 * interval of their paired ΔNLL excludes 0), `copies`, `sink`. `contextWarning(config, nCtx)`
 * is the shared check that a context does not run past the model's trained positions.
 */
import { createCache } from "../cache/create.ts";
import type { CacheMemory, CacheStats, KVCache, KVShape, ResolvedCacheSpec } from "../cache/types.ts";
import { ConfigError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import type { LanguageModel } from "../model/llama.ts";
import { evaluatePerplexity, nllOf } from "./perplexity.ts";

/** `copies` when PPL(second copy, full cache) < this x PPL(second copy, short window). */
export const COPY_RATIO_THRESHOLD = 0.5;
/** `sink` when some head of a layer >= 1 puts more than this share of its attention on position 0. */
export const SINK_THRESHOLD = 0.3;
/** The window the `contextHelps` gate compares the full cache with. */
export const GATE_WINDOW = 128;

/**
 * A warning when a context runs past the positions the model was trained on (HF
 * max_position_embeddings, llama2.c seq_len, GGUF context_length: ModelConfig.maxSeqLen).
 * Beyond them RoPE positions were never seen, so the full cache is no reference. undefined when
 * nCtx fits. (HF configs without max_position_embeddings get 2048 from parseHfConfig.)
 */
export function contextWarning(
  config: Pick<ModelConfig, "maxSeqLen" | "slidingWindow">,
  nCtx: number,
): string | undefined {
  const notes: string[] = [];
  if (nCtx > config.maxSeqLen)
    notes.push(
      `context ${nCtx} exceeds the model's trained positions (${config.maxSeqLen}, max_position_embeddings): ` +
        "positions past it were never trained, so the full cache is no reference there",
    );
  const w = config.slidingWindow;
  if (w !== undefined && nCtx > w)
    notes.push(
      `the model attends within a sliding window of ${w} tokens (sliding_window): every cache, full included, keeps at most the last ${w} keys per layer and head`,
    );
  return notes.length ? notes.join("; ") : undefined;
}

/** Mean of paired differences with a batch-means 95% interval. */
export interface PairedDifference {
  /** Mean difference over all pairs. */
  mean: number;
  /** Standard error of the mean from block means (cluster-robust); NaN with fewer than 2 blocks. */
  se: number;
  /** 95% interval: mean -/+ t(0.975, blocks - 1) x se. */
  lo: number;
  hi: number;
  /** mean / se (0 when both are 0). */
  z: number;
  /** Pairs and blocks used. */
  n: number;
  blocks: number;
}

/** t(0.975, df) for df 1..5 (the expansion below is off by up to 4e-3 there). */
const T975 = [12.7062, 4.3027, 3.1824, 2.7764, 2.5706];

/** Two-sided 95% Student t quantile, t(0.975, df): a table to df 5, a Cornish-Fisher expansion after (error < 3e-4). */
export function tQuantile975(df: number): number {
  if (!(df >= 1)) return Number.NaN;
  if (df < 6) return T975[Math.floor(df) - 1]!;
  const z = 1.959963985;
  const z3 = z ** 3;
  const z5 = z ** 5;
  const z7 = z ** 7;
  const z9 = z ** 9;
  const g1 = (z3 + z) / 4;
  const g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
  const g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
  const g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4;
}

/**
 * Mean of `d` (paired per-token differences, in scoring order) with a batch-means interval:
 * consecutive blocks of `block` values are the clusters (a last partial block joins the one
 * before), se^2 = B/(B-1) x sum_b (n_b (m_b - mean))^2 / N^2, interval mean -/+ t(B-1) se.
 */
export function pairedDifference(d: ArrayLike<number>, block = 32): PairedDifference {
  const n = d.length;
  if (!Number.isInteger(block) || block < 1)
    throw new ConfigError("block", `must be an integer >= 1, got ${block}`);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += d[i]!;
  const avg = n > 0 ? sum / n : Number.NaN;
  const nBlocks = Math.floor(n / block);
  let acc = 0;
  for (let b = 0; b < nBlocks; b++) {
    const a = b * block;
    const e = b === nBlocks - 1 ? n : a + block;
    let s = 0;
    for (let i = a; i < e; i++) s += d[i]! - avg;
    acc += s * s; // (n_b (m_b - mean))^2
  }
  const se = nBlocks >= 2 ? Math.sqrt((acc * nBlocks) / (nBlocks - 1)) / n : Number.NaN;
  const t = tQuantile975(nBlocks - 1);
  const z = se > 0 ? avg / se : avg === 0 ? 0 : Number.NaN;
  return { mean: avg, se, lo: avg - t * se, hi: avg + t * se, z, n, blocks: nBlocks };
}

/** Cache spec of an exact sliding window of W keys per query (itself included), for chunkSize 1. */
export function windowSpec(window: number) {
  if (!Number.isInteger(window) || window < 2)
    throw new ConfigError("window", `must be an integer >= 2, got ${window}`);
  return { codec: "f32", policy: { type: "window", budget: window - 1 } };
}

export interface CurveOptions {
  /** Tokens per segment (default: the model's trained positions, at most 2048). */
  nCtx?: number;
  /** Segments (default: 8, or as many as the text holds if fewer). */
  segments?: number;
  /** Windows to run besides the full cache (default: 16, 32, 64, ... below nCtx). */
  windows?: number[];
  /** Block size of the batch means (default 32 scored tokens). */
  block?: number;
  onProgress?(stage: string, done: number, total: number): void;
}

/**
 * Per-token NLL of the scored tokens (perplexity protocol order), decoding token by token
 * through a full f32 cache (window undefined) or an exact window of `window` keys.
 */
export async function scoredNlls(
  model: LanguageModel,
  tokens: ArrayLike<number>,
  nCtx: number,
  segments: number,
  window?: number,
  onProgress?: (done: number, total: number) => void,
): Promise<Float64Array> {
  const spec = window === undefined ? "f32" : windowSpec(window);
  const nll: number[] = [];
  await evaluatePerplexity(
    model,
    tokens,
    { kind: "chunked", nCtx, chunkSize: 1, nChunks: segments },
    (shape) => createCache(spec, shape, { executor: model.executor }),
    { onScored: (logits, target) => nll.push(nllOf(logits, target)), onProgress },
  );
  return Float64Array.from(nll);
}

export interface CurvePoint {
  /** Window in tokens; null for the full cache. */
  window: number | null;
  ppl: number;
  nll: number;
  /** Paired ΔNLL = NLL(window) - NLL(full) per scored token (null for the full cache). */
  delta: PairedDifference | null;
}

export interface ContextCurve {
  nCtx: number;
  segments: number;
  scoredTokens: number;
  block: number;
  /** Windows ascending, then the full cache (window null). */
  points: CurvePoint[];
  /** Window with the lowest PPL (null = the full cache). */
  best: number | null;
}

const mean = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
};

function defaultCtx(model: LanguageModel): number {
  return Math.min(model.config.maxSeqLen, 2048);
}

/** Whole segments of nCtx tokens the text holds (at least 1, else a ConfigError). */
function availableSegments(nTokens: number, nCtx: number): number {
  if (!Number.isInteger(nCtx) || nCtx < 4)
    throw new ConfigError("ctx", `must be an integer >= 4, got ${nCtx}`);
  const available = Math.floor(nTokens / nCtx);
  if (available < 1)
    throw new ConfigError("ctx", `the text has ${nTokens} tokens, fewer than one segment of ${nCtx}`);
  return available;
}

/** Powers of two from 16 below nCtx. */
export function defaultWindows(nCtx: number): number[] {
  const out: number[] = [];
  for (let w = 16; w < nCtx; w *= 2) out.push(w);
  return out;
}

/** PPL under exact sliding windows and the full cache, same scored tokens, paired ΔNLL per window. */
export async function contextCurve(
  model: LanguageModel,
  tokens: ArrayLike<number>,
  opts: CurveOptions = {},
): Promise<ContextCurve> {
  const nCtx = opts.nCtx ?? defaultCtx(model);
  const available = availableSegments(tokens.length, nCtx);
  const segments = opts.segments ?? Math.min(8, available);
  if (!Number.isInteger(segments) || segments < 1 || segments > available)
    throw new ConfigError(
      "segments",
      `expected an integer in [1, ${available}] (the text holds ${available} segments of ${nCtx} tokens), got ${segments}`,
    );
  const block = opts.block ?? 32;
  const windows = [...new Set(opts.windows ?? defaultWindows(nCtx))].sort((a, b) => a - b);
  for (const w of windows) windowSpec(w); // validate before the slow part
  const runs = [undefined, ...windows];
  const nlls: Float64Array[] = [];
  for (let r = 0; r < runs.length; r++) {
    const w = runs[r];
    const label = w === undefined ? "full" : `window ${w}`;
    nlls.push(
      await scoredNlls(model, tokens, nCtx, segments, w, (d, t) =>
        opts.onProgress?.(`context curve: ${label} (${r + 1}/${runs.length})`, d, t),
      ),
    );
  }
  const full = nlls[0]!;
  const points: CurvePoint[] = windows.map((w, i) => {
    const x = nlls[i + 1]!;
    const d = x.map((v, j) => v - full[j]!);
    const nll = mean(x);
    return { window: w, ppl: Math.exp(nll), nll, delta: pairedDifference(d, block) };
  });
  const fullNll = mean(full);
  points.push({ window: null, ppl: Math.exp(fullNll), nll: fullNll, delta: null });
  let best = points[points.length - 1]!;
  for (const p of points) if (p.nll < best.nll) best = p;
  return { nCtx, segments, scoredTokens: full.length, block, points, best: best.window };
}

export interface CopyOptions {
  /** Passage length P in tokens (default: (nCtx - 1) / 2, at most 256). */
  passage?: number;
  /** Short window for the comparison (default 16, or P / 4 when P <= 16). */
  window?: number;
  /** Passages taken evenly from the text (default 4). */
  passages?: number;
  onProgress?(stage: string, done: number, total: number): void;
}

export interface CopyResult {
  passage: number;
  passages: number;
  window: number;
  /** Scored tokens: passages x (P - 1). */
  scoredTokens: number;
  /** PPL of the second copy (all tokens but its first) with the full cache. */
  fullPpl: number;
  /** The same tokens with the exact short window. */
  windowPpl: number;
  /** fullPpl / windowPpl. */
  ratio: number;
  /** PPL of the first copy's matching tokens with the full cache: what the model does without a copy. */
  firstCopyPpl: number;
  threshold: number;
  copies: boolean;
}

/** NLL of targets ids[from..to) given the prefix; token by token through `cache` when chunk1, else one forward. */
async function sequenceNlls(
  model: LanguageModel,
  ids: Int32Array,
  cache: KVCache,
  chunk1: boolean,
  from: number,
  to: number,
): Promise<number[]> {
  const vocab = model.config.vocabSize;
  const n = ids.length;
  const pos = Int32Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  cache.reset();
  if (!chunk1) {
    const logits = await model.forward(ids, pos, cache, { firstLogit: from - 1 });
    for (let j = from; j < to; j++) {
      const r = j - from;
      out.push(nllOf(logits.subarray(r * vocab, (r + 1) * vocab), ids[j]!));
    }
    return out;
  }
  for (let i = 0; i < to - 1; i++) {
    const logits = await model.forward(ids.subarray(i, i + 1), pos.subarray(i, i + 1), cache);
    if (i + 1 >= from) out.push(nllOf(logits, ids[i + 1]!));
  }
  return out;
}

/** The repeated-passage copy test: [BOS] + passage + passage, second copy full vs a short window. */
export async function copyTest(
  model: LanguageModel,
  tokens: ArrayLike<number>,
  nCtx: number,
  opts: CopyOptions = {},
): Promise<CopyResult> {
  const bos = model.tokenizer.addsBos ? model.tokenizer.bosId : undefined;
  const s0 = bos !== undefined ? 1 : 0;
  const P = opts.passage ?? Math.min(256, Math.floor((nCtx - s0) / 2));
  const W = opts.window ?? (P > 16 ? 16 : Math.max(2, Math.floor(P / 4)));
  const N = opts.passages ?? 4;
  if (!Number.isInteger(P) || P < 4)
    throw new ConfigError("copy.passage", `must be an integer >= 4, got ${P}`);
  if (!Number.isInteger(N) || N < 1)
    throw new ConfigError("copy.passages", `must be an integer >= 1, got ${N}`);
  if (W >= P) throw new ConfigError("copy.window", `window ${W} must be shorter than the passage (${P})`);
  windowSpec(W);
  // Text tokens only: skip a leading BOS the tokenizer added.
  const start = tokens.length > 0 && bos !== undefined && tokens[0] === bos ? 1 : 0;
  const room = tokens.length - start - P;
  if (room < 0)
    throw new ConfigError(
      "copy.passage",
      `the text has ${tokens.length} tokens, fewer than a passage of ${P}`,
    );
  const len = s0 + 2 * P;
  const shape = model.kvShape(len);
  const full = await createCache("f32", shape, { executor: model.executor });
  const win = await createCache(windowSpec(W), shape, { executor: model.executor });
  const second: number[] = [];
  const secondW: number[] = [];
  const first: number[] = [];
  try {
    for (let p = 0; p < N; p++) {
      const off = start + (N > 1 ? Math.floor((p * room) / (N - 1)) : 0);
      const ids = new Int32Array(len);
      if (bos !== undefined) ids[0] = bos;
      for (let i = 0; i < P; i++) ids[s0 + i] = ids[s0 + P + i] = tokens[off + i]!;
      // First copy: targets s0+1 .. s0+P-1; second copy: s0+P+1 .. s0+2P-1 (same passage offsets).
      const all = await sequenceNlls(model, ids, full, false, s0 + 1, len);
      first.push(...all.slice(0, P - 1));
      second.push(...all.slice(P));
      secondW.push(...(await sequenceNlls(model, ids, win, true, s0 + P + 1, len)));
      opts.onProgress?.("copy test", p + 1, N);
    }
  } finally {
    full.dispose();
    win.dispose();
  }
  const fullPpl = Math.exp(mean(second));
  const windowPpl = Math.exp(mean(secondW));
  const ratio = fullPpl / windowPpl;
  return {
    passage: P,
    passages: N,
    window: W,
    scoredTokens: second.length,
    fullPpl,
    windowPpl,
    ratio,
    firstCopyPpl: Math.exp(mean(first)),
    threshold: COPY_RATIO_THRESHOLD,
    copies: ratio < COPY_RATIO_THRESHOLD,
  };
}

/**
 * A KVCache that forwards everything to `inner` and, on the side, records the keys and values
 * appended and measures the softmax attention of sampled query rows on position 0, recomputed
 * in float64 over every recorded key (so `inner` should keep every token: a full cache).
 * Query positions sampled: p >= skip with (p - skip) % stride === 0.
 */
export class AttentionRecorder implements KVCache {
  /** Sum and count of the mass on position 0, per layer x query head. */
  readonly massSum: Float64Array;
  readonly rows: Float64Array;
  /** Sum of 1/(keys seen) over the same rows: what uniform attention would put on position 0. */
  uniformSum = 0;
  uniformRows = 0;
  /** Largest |recomputed attention output - the inner cache's| and the largest |output|. */
  maxAbsOutDiff = 0;
  maxAbsOut = 0;
  private readonly k: Float32Array[]; // per layer (nKvHeads, maxTokens, headDim)
  private readonly v: Float32Array[];
  private readonly pos: Int32Array[]; // per layer (maxTokens)
  private readonly n: number[];

  constructor(
    readonly inner: KVCache,
    readonly skip: number,
    readonly stride: number,
  ) {
    const { nLayers, nHeads, nKvHeads, headDim, maxTokens } = inner.shape;
    this.massSum = new Float64Array(nLayers * nHeads);
    this.rows = new Float64Array(nLayers * nHeads);
    this.k = Array.from({ length: nLayers }, () => new Float32Array(nKvHeads * maxTokens * headDim));
    this.v = Array.from({ length: nLayers }, () => new Float32Array(nKvHeads * maxTokens * headDim));
    this.pos = Array.from({ length: nLayers }, () => new Int32Array(maxTokens));
    this.n = new Array<number>(nLayers).fill(0);
  }

  get spec(): ResolvedCacheSpec {
    return this.inner.spec;
  }
  get shape(): KVShape {
    return this.inner.shape;
  }

  append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): void | Promise<void> {
    const { nKvHeads, headDim: d, maxTokens } = this.shape;
    const nNew = positions.length;
    const at = this.n[layer]!;
    if (at + nNew > maxTokens) throw new ConfigError("probe", `more than ${maxTokens} tokens appended`);
    for (let h = 0; h < nKvHeads; h++)
      for (let i = 0; i < nNew; i++) {
        const src = (h * nNew + i) * d;
        const dst = (h * maxTokens + at + i) * d;
        this.k[layer]!.set(k.subarray(src, src + d), dst);
        this.v[layer]!.set(v.subarray(src, src + d), dst);
      }
    this.pos[layer]!.set(positions, at);
    this.n[layer] = at + nNew;
    return this.inner.append(layer, k, v, positions);
  }

  attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): void | Promise<void> {
    const r = this.inner.attend(layer, q, qPositions, out);
    if (r instanceof Promise) return r.then(() => this.measure(layer, q, qPositions, out));
    this.measure(layer, q, qPositions, out);
  }

  private measure(layer: number, q: Float32Array, qPos: Int32Array, out: Float32Array): void {
    const { nHeads, nKvHeads, headDim: d, maxTokens } = this.shape;
    const group = nHeads / nKvHeads;
    const nQ = qPos.length;
    const nK = this.n[layer]!;
    const K = this.k[layer]!;
    const V = this.v[layer]!;
    const kp = this.pos[layer]!;
    const scale = 1 / Math.sqrt(d);
    const s = new Float64Array(nK);
    const o = new Float64Array(d);
    for (let i = 0; i < nQ; i++) {
      const p = qPos[i]!;
      if (p < this.skip || (p - this.skip) % this.stride !== 0) continue;
      let seen = 0;
      for (let j = 0; j < nK; j++) if (kp[j]! <= p) seen++;
      if (layer === 0) {
        this.uniformSum += nHeads / seen;
        this.uniformRows += nHeads;
      }
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / group);
        const qo = (h * nQ + i) * d;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < nK; j++) {
          if (kp[j]! > p) {
            s[j] = Number.NEGATIVE_INFINITY;
            continue;
          }
          const ko = (kvh * maxTokens + j) * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qo + c]! * K[ko + c]!;
          s[j] = dot * scale;
          if (s[j]! > max) max = s[j]!;
        }
        let z = 0;
        let first = 0;
        o.fill(0);
        for (let j = 0; j < nK; j++) {
          if (kp[j]! > p) continue;
          const e = Math.exp(s[j]! - max);
          z += e;
          if (kp[j] === 0) first += e;
          const vo = (kvh * maxTokens + j) * d;
          for (let c = 0; c < d; c++) o[c]! += e * V[vo + c]!;
        }
        this.massSum[layer * nHeads + h]! += first / z;
        this.rows[layer * nHeads + h]! += 1;
        for (let c = 0; c < d; c++) {
          const got = out[qo + c]!;
          this.maxAbsOutDiff = Math.max(this.maxAbsOutDiff, Math.abs(o[c]! / z - got));
          this.maxAbsOut = Math.max(this.maxAbsOut, Math.abs(got));
        }
      }
    }
  }

  memory(): CacheMemory {
    return this.inner.memory();
  }
  reset(): void {
    this.n.fill(0);
    this.inner.reset();
  }
  dispose(): void {
    this.inner.dispose();
  }
  stats(): CacheStats {
    return this.inner.stats();
  }
}

export interface SinkOptions {
  /** Segments of the text (default 4, or as many as it holds). */
  segments?: number;
  /** Skip query positions below this (default 8). */
  skip?: number;
  /** Query rows sampled per segment, evenly (default 128). */
  queries?: number;
  onProgress?(stage: string, done: number, total: number): void;
}

export interface SinkResult {
  nCtx: number;
  segments: number;
  skip: number;
  /** Query positions measured per segment and head. */
  queriesPerSegment: number;
  /** mass[layer][head]: mean softmax probability on position 0. */
  mass: number[][];
  /** Largest head mass per layer. */
  maxByLayer: number[];
  /** Mean over the same rows of 1/(keys seen): uniform attention's mass on position 0. */
  uniformMass: number;
  threshold: number;
  /** Some head of a layer >= 1 above the threshold. */
  sink: boolean;
  /** Recomputed attention output against the cache's: max |difference| and max |output|. */
  check: { maxAbsOutDiff: number; maxAbsOut: number };
}

/** Mean softmax mass on position 0 per layer and query head, segments run through an AttentionRecorder. */
export async function sinkMass(
  model: LanguageModel,
  tokens: ArrayLike<number>,
  nCtx: number,
  opts: SinkOptions = {},
): Promise<SinkResult> {
  const segments = Math.min(opts.segments ?? 4, availableSegments(tokens.length, nCtx));
  const skip = opts.skip ?? 8;
  const queries = opts.queries ?? 128;
  if (!Number.isInteger(skip) || skip < 1 || skip >= nCtx)
    throw new ConfigError("sink.skip", `must be an integer in [1, ${nCtx}), got ${skip}`);
  const stride = Math.max(1, Math.ceil((nCtx - skip) / queries));
  const bos = model.tokenizer.addsBos ? model.tokenizer.bosId : undefined;
  const shape = model.kvShape(nCtx);
  const rec = new AttentionRecorder(
    await createCache("f32", shape, { executor: model.executor }),
    skip,
    stride,
  );
  const seg = new Int32Array(nCtx);
  const pos = Int32Array.from({ length: nCtx }, (_, i) => i);
  try {
    for (let c = 0; c < segments; c++) {
      for (let i = 0; i < nCtx; i++) seg[i] = tokens[c * nCtx + i]!;
      if (bos !== undefined) seg[0] = bos;
      rec.reset();
      await model.forward(seg, pos, rec, { firstLogit: nCtx - 1 });
      opts.onProgress?.("first-token attention", c + 1, segments);
    }
  } finally {
    rec.dispose();
  }
  const { nLayers, nHeads } = shape;
  const mass = Array.from({ length: nLayers }, (_, l) =>
    Array.from({ length: nHeads }, (_, h) => rec.massSum[l * nHeads + h]! / rec.rows[l * nHeads + h]!),
  );
  const maxByLayer = mass.map((r) => Math.max(...r));
  return {
    nCtx,
    segments,
    skip,
    queriesPerSegment: Math.ceil((nCtx - skip) / stride),
    mass,
    maxByLayer,
    uniformMass: rec.uniformSum / rec.uniformRows,
    threshold: SINK_THRESHOLD,
    sink: maxByLayer.some((m, l) => l >= 1 && m > SINK_THRESHOLD),
    check: { maxAbsOutDiff: rec.maxAbsOutDiff, maxAbsOut: rec.maxAbsOut },
  };
}

export interface ProbeOptions extends CurveOptions {
  copy?: Omit<CopyOptions, "onProgress">;
  sink?: Omit<SinkOptions, "onProgress">;
}

export interface ProbeResult {
  model: string;
  executor: string;
  nCtx: number;
  /** The model's trained positions (ModelConfig.maxSeqLen). */
  trainedPositions: number;
  warnings: string[];
  curve: ContextCurve;
  copy: CopyResult;
  sinks: SinkResult;
  gates: {
    /** Full cache below the GATE_WINDOW window with the paired 95% interval excluding 0 (null: no such window < nCtx). */
    contextHelps: boolean | null;
    copies: boolean;
    sink: boolean;
  };
  /** How each gate was decided, in words. */
  reasons: { contextHelps: string; copies: string; sink: string };
}

const f = (x: number, d = 3) => x.toFixed(d);

/** Run the context curve, the copy test and the first-token attention mass; gate verdicts. */
export async function probeModel(
  model: LanguageModel,
  tokens: ArrayLike<number>,
  opts: ProbeOptions = {},
): Promise<ProbeResult> {
  const nCtx = opts.nCtx ?? defaultCtx(model);
  const warnings: string[] = [];
  const w = contextWarning(model.config, nCtx);
  if (w) warnings.push(w);
  let windows = opts.windows ?? defaultWindows(nCtx);
  if (GATE_WINDOW < nCtx && !windows.includes(GATE_WINDOW)) windows = [...windows, GATE_WINDOW];
  const curve = await contextCurve(model, tokens, { ...opts, nCtx, windows });
  const copy = await copyTest(model, tokens, nCtx, { ...opts.copy, onProgress: opts.onProgress });
  const sinks = await sinkMass(model, tokens, nCtx, {
    segments: Math.min(4, curve.segments),
    ...opts.sink,
    onProgress: opts.onProgress,
  });
  const g = curve.points.find((p) => p.window === GATE_WINDOW);
  const full = curve.points[curve.points.length - 1]!;
  let contextHelps: boolean | null = null;
  let ctxReason = `no ${GATE_WINDOW}-token window shorter than the context (${nCtx})`;
  if (g?.delta) {
    const d = g.delta;
    contextHelps = full.ppl < g.ppl && d.lo > 0;
    ctxReason =
      `PPL full ${f(full.ppl)} vs window ${GATE_WINDOW} ${f(g.ppl)}: ΔNLL(window - full) ${f(d.mean, 4)} ` +
      `[${f(d.lo, 4)}, ${f(d.hi, 4)}], z = ${f(d.z, 2)}; needs the interval above 0`;
  }
  const copyReason =
    `second copy PPL full ${f(copy.fullPpl)} vs window ${copy.window} ${f(copy.windowPpl)}: ` +
    `ratio ${f(copy.ratio)}; needs < ${COPY_RATIO_THRESHOLD}`;
  const top = sinks.maxByLayer.map((m, l) => `L${l} ${f(m)}`).join(", ");
  const sinkReason = `largest head mass on position 0 per layer: ${top}; needs > ${SINK_THRESHOLD} in a layer >= 1`;
  return {
    model: model.source,
    executor: model.executor.name,
    nCtx,
    trainedPositions: model.config.maxSeqLen,
    warnings,
    curve,
    copy,
    sinks,
    gates: { contextHelps, copies: copy.copies, sink: sinks.sink },
    reasons: { contextHelps: ctxReason, copies: copyReason, sink: sinkReason },
  };
}
