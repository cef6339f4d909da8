/**
 * The one decoder forward, written like llama2.c's run.c but for a chunk of n tokens at once,
 * with every op from an Executor and all attention through the KVCache interface (the cache
 * owns the attention math because that is where compressed K/V are read).
 *
 * Families are configuration of this forward (ModelConfig, MODEL_FAMILIES), each step marked
 * where a family changes it: Llama / Mistral / SmolLM; Qwen2 (q/k/v biases); Qwen3 (RMSNorm
 * over each head's q and k before RoPE, arXiv:2505.09388); GPT-2 (learned positions,
 * LayerNorm, biases, GELU MLP; Radford et al. 2019 and HF's modeling_gpt2.py); Gemma 3
 * (arXiv:2503.19786; embedding scale, (1+w) norms folded on load, q/k norms, post-norms,
 * GeGLU, local layers with a window and their own RoPE base, query_pre_attn_scalar); Mistral's
 * sliding window (arXiv:2310.06825) by feeding the window's tokens one at a time once it
 * binds (src/model/sliding-window.ts) over a cache trimmed to it (src/cache/model-window.ts).
 */
import type { ModelWindow } from "../cache/model-window.ts";
import type { ModelSoftcap } from "../cache/softcap.ts";
import type { KVCache, KVShape } from "../cache/types.ts";
import { ConfigError, ShapeError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { type Matrix, widenInto } from "../kernels/weights.ts";
import type { ModelConfig } from "./config.ts";
import { CpuDevice } from "./cpu-device.ts";
import { ropeInvFreq } from "./rope.ts";
import { WindowedForward } from "./sliding-window.ts";
import type { TextTokenizer } from "./tokenizer.ts";

/**
 * One layer's weights as a device holds them: matrices M (Linear weights) and vectors V. The
 * optional ones exist exactly when the config's family has them. On the host (LayerWeights)
 * M is a Matrix and V a Float32Array; the GPU forward holds GPU buffers of the same names.
 */
export interface Layer<M, V> {
  attnNorm: V; // (dim)
  attnNormB?: V; // (dim) LayerNorm bias (norm "layer")
  wq: M; // (nHeads * headDim, dim), rotate-half row order
  wk: M; // (nKvHeads * headDim, dim), rotate-half row order
  wv: M; // (nKvHeads * headDim, dim)
  wo: M; // (dim, nHeads * headDim)
  bq?: V; // (nHeads * headDim)
  bk?: V; // (nKvHeads * headDim)
  bv?: V; // (nKvHeads * headDim)
  bo?: V; // (dim) (linearBias)
  qNorm?: V; // (headDim) RMSNorm weight over each q head, rotate-half order (qkNorm)
  kNorm?: V; // (headDim) RMSNorm weight over each k head, rotate-half order (qkNorm)
  postAttnNorm?: V; // (dim) norm of the attention output before the residual add (postNorms)
  ffnNorm: V; // (dim)
  ffnNormB?: V; // (dim) LayerNorm bias (norm "layer")
  postFfnNorm?: V; // (dim) norm of the FFN output before the residual add (postNorms)
  wGate?: M; // (hiddenDim, dim); absent for ffn "gelu"
  wUp: M; // (hiddenDim, dim)
  bUp?: V; // (hiddenDim) (linearBias)
  wDown: M; // (dim, hiddenDim)
  bDown?: V; // (dim) (linearBias)
}

/** The weights the layer loop and the head read, as a device holds them. */
export interface DecoderWeights<M, V> {
  layers: Layer<M, V>[];
  finalNorm: V; // (dim)
  finalNormB?: V; // (dim) LayerNorm bias (norm "layer")
  lmHead: M; // (vocabSize, dim); the same array as embed when tied
}

export type LayerWeights = Layer<Matrix, Float32Array>;

/**
 * Matrices (Linear weights, the embedding) are f32 or 16-bit as the file stores them
 * (src/kernels/weights.ts: the matmul widens them exactly); vectors are f32. The embedding
 * rows are always looked up on the host (forwardChunk's first step).
 */
export interface LlamaWeights extends DecoderWeights<Matrix, Float32Array> {
  embed: Matrix; // (vocabSize, dim)
  posEmbed?: Float32Array; // (maxSeqLen, dim) learned absolute positions (positions "learned")
}

export interface ForwardOptions {
  /** Compute logits only for rows [firstLogit, n) (protocols that score the second half skip the rest). */
  firstLogit?: number;
}

/** A loaded model: what the protocols and commands use. */
export interface LanguageModel {
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  readonly executor: Executor;
  /** Where it came from, e.g. "hf:/path/to/dir". */
  readonly source: string;
  /** The KV cache shape this model needs for sequences of up to maxTokens tokens (with its RoPE frequencies). */
  kvShape(maxTokens: number): KVShape;
  /**
   * Run tokens (n) at absolute positions (n) through the model, appending their K/V to `cache`
   * and attending over everything the cache holds. Returns logits (n - firstLogit, vocabSize),
   * a view of an internal buffer that the next forward call overwrites.
   */
  forward(
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts?: ForwardOptions,
  ): Promise<Float32Array>;
  /** Free executor memory held by weights and activations. */
  dispose(): void;
}

/** The activations one forward call works in, as the device holds them (T: its buffer type). */
export interface Activations<T> {
  x: T; // (n, dim) residual stream
  xb: T; // (n, dim) normed input, then free after each projection
  xb2: T; // (n, dim) block output
  q: T; // (n, nHeads, headDim)
  k: T; // (n, nKvHeads, headDim)
  v: T; // (n, nKvHeads, headDim)
  att: T; // (n, nHeads * headDim) attention output
  hb: T; // (n, hiddenDim) gate (or up, for the GELU MLP)
  hb2: T; // (n, hiddenDim) up
  hs: T; // (n, hiddenDim) activated FFN hidden state (may be hb itself: the activations are elementwise)
  logits: T; // (n, vocabSize)
}

/** out (n, dOut) = x (n, dIn) @ w^T (+ b): one of the projections that read the same input. */
export interface Projection<T, M, V> {
  out: T;
  w: M;
  b?: V;
  dOut: number;
}

/**
 * What the forward needs of a device (src/model/cpu-device.ts: the executor's ops on its
 * arrays; src/gpu/forward.ts: WGSL kernels on GPU buffers). Every op has one meaning on every
 * device: the device decides only how it runs (which kernel, fused or batched, in place or
 * through a temporary). Row counts are explicit; `inRow` starts the input `inRow` rows in.
 */
export interface ForwardDevice<T, M, V> {
  /** The weights the layer loop reads. */
  readonly weights: DecoderWeights<M, V>;
  /** Start a forward of positions.length tokens appending to `cache`: its activation buffers. */
  begin(positions: Int32Array, cache: KVCache): Activations<T>;
  /** x (n, dim) = rows that `fill` writes into a host array (the embedding lookup). */
  setRows(x: T, n: number, fill: (rows: Float32Array) => void): void;
  /** out (rows, width) = x / rms(x) * w per row; out may be inp. */
  rmsnorm(out: T, inp: T, w: V, rows: number, width: number, inRow?: number): void;
  /** out (rows, dim) = (x - mean) / std * w + b per row (GPT-2). */
  layernorm(out: T, inp: T, w: V, b: V, rows: number, inRow?: number): void;
  /** Projections of one input x (n, dIn); a device may run them as one matmul. */
  matmul(x: T, n: number, dIn: number, outs: Projection<T, M, V>[]): void;
  /** RoPE over x (n, heads, headDim) at this forward's positions (`local`: Gemma 3's local-layer base). */
  rope(x: T, n: number, heads: number, local: boolean): void;
  /** x (len) *= s. */
  scale(x: T, len: number, s: number): void;
  /** x (len) += y. */
  add(x: T, y: T, len: number): void;
  /** out (len) = silu(gate) * up (swiglu), gelu_tanh(gate) * up (geglu) or gelu_tanh(gate) (gelu: up unused). */
  activate(kind: "swiglu" | "geglu" | "gelu", out: T, gate: T, up: T, len: number): void;
  /** x (len) = cap * tanh(x / cap). */
  softcap(x: T, len: number, cap: number): void;
  /**
   * Append k and v (n, nKvHeads, headDim) to the cache at layer `layer` and attend with q
   * (n, nHeads, headDim): att (n, nHeads * headDim). Where the cache lives is the device's concern.
   */
  attention(layer: number, a: Activations<T>, n: number): Promise<void>;
  /** The first `rows` rows of logits (rows, vocabSize) as a host array the next call overwrites. */
  readLogits(logits: T, rows: number): Promise<Float32Array>;
}

/**
 * The embedding rows of `tokens` at `positions` into x (n, dim): the token's row, plus the
 * learned position's row (GPT-2), times embedScale (Gemma). f32 arithmetic (a JS double rounded
 * once to f32 is the f32 sum or product: 53 >= 2 * 24 + 2 bits).
 */
function embedRows(
  cfg: ModelConfig,
  W: LlamaWeights,
  tokens: ArrayLike<number>,
  positions: Int32Array,
  x: Float32Array,
): void {
  const { dim, vocabSize } = cfg;
  const n = tokens.length;
  for (let t = 0; t < n; t++) {
    const id = tokens[t]!;
    if (!(id >= 0 && id < vocabSize))
      throw new ShapeError(
        `forward: token id ${id} at index ${t} is outside the vocabulary [0, ${vocabSize})`,
      );
    widenInto(W.embed, id * dim, x.subarray(t * dim, (t + 1) * dim));
  }
  const pe = W.posEmbed;
  if (pe) {
    for (let t = 0; t < n; t++) {
      const p = positions[t]!;
      if (!(p >= 0 && p < cfg.maxSeqLen))
        throw new ShapeError(
          `forward: position ${p} is beyond the ${cfg.maxSeqLen} learned positions of this model`,
        );
      for (let i = 0, o = p * dim; i < dim; i++) x[t * dim + i] = x[t * dim + i]! + pe[o + i]!;
    }
  }
  const es = cfg.embedScale;
  if (es !== undefined) for (let i = 0; i < n * dim; i++) x[i] = x[i]! * es;
}

/**
 * The forward of one piece of tokens (n) at positions (n): every query attends to everything
 * the cache holds (causally). Returns logits (n - firstLogit, vocabSize).
 */
export async function forwardChunk<T, M, V>(
  dev: ForwardDevice<T, M, V>,
  cfg: ModelConfig,
  host: LlamaWeights,
  tokens: ArrayLike<number>,
  positions: Int32Array,
  cache: KVCache,
  opts: ForwardOptions = {},
): Promise<Float32Array> {
  const n = tokens.length;
  const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize } = cfg;
  const first = opts.firstLogit ?? 0;
  if (positions.length !== n) throw new ShapeError(`forward: ${n} tokens but ${positions.length} positions`);
  if (n === 0 || first < 0 || first >= n)
    throw new ShapeError(`forward: need n >= 1 and 0 <= firstLogit < n (n=${n}, firstLogit=${first})`);
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const W = dev.weights;
  const A = dev.begin(positions, cache);
  // RMSNorm, or GPT-2's LayerNorm (with its bias).
  const norm = (out: T, inp: T, w: V, b: V | undefined, rows: number, inRow = 0) => {
    if (cfg.norm !== "layer") return dev.rmsnorm(out, inp, w, rows, dim, inRow);
    if (b === undefined) throw new ConfigError("norm", "LayerNorm without its bias vector");
    dev.layernorm(out, inp, w, b, rows, inRow);
  };
  // The block output xb2 added to the residual stream, through Gemma's post-norm where it has one.
  const residual = (post: V | undefined) => {
    if (post) dev.rmsnorm(A.xb, A.xb2, post, n, dim);
    dev.add(A.x, post ? A.xb : A.xb2, n * dim);
  };
  const rope = cfg.positions !== "learned";
  // Gemma: scores q.k / sqrt(query_pre_attn_scalar); the cache divides by sqrt(headDim).
  const qScale = cfg.queryPreAttnScalar ? Math.sqrt(headDim / cfg.queryPreAttnScalar) : 1;

  dev.setRows(A.x, n, (x) => embedRows(cfg, host, tokens, positions, x));
  for (let l = 0; l < cfg.nLayers; l++) {
    const L = W.layers[l]!;
    // attention
    norm(A.xb, A.x, L.attnNorm, L.attnNormB, n);
    dev.matmul(A.xb, n, dim, [
      { out: A.q, w: L.wq, b: L.bq, dOut: qDim },
      { out: A.k, w: L.wk, b: L.bk, dOut: kvDim },
      { out: A.v, w: L.wv, b: L.bv, dOut: kvDim },
    ]);
    // Qwen3, Gemma: RMSNorm over each head's q and k (rows of headDim) before RoPE.
    if (L.qNorm && L.kNorm) {
      dev.rmsnorm(A.q, A.q, L.qNorm, n * nHeads, headDim);
      dev.rmsnorm(A.k, A.k, L.kNorm, n * nKvHeads, headDim);
    }
    if (rope) {
      const local = cfg.windowLayers?.[l] === true;
      dev.rope(A.q, n, nHeads, local);
      dev.rope(A.k, n, nKvHeads, local);
    }
    if (qScale !== 1) dev.scale(A.q, n * qDim, qScale);
    await dev.attention(l, A, n);
    dev.matmul(A.att, n, qDim, [{ out: A.xb2, w: L.wo, b: L.bo, dOut: dim }]);
    residual(L.postAttnNorm);
    // feed-forward: SwiGLU, Gemma's GeGLU, or GPT-2's GELU MLP (no gate)
    norm(A.xb, A.x, L.ffnNorm, L.ffnNormB, n);
    if (L.wGate) {
      dev.matmul(A.xb, n, dim, [
        { out: A.hb, w: L.wGate, dOut: hiddenDim },
        { out: A.hb2, w: L.wUp, b: L.bUp, dOut: hiddenDim },
      ]);
      dev.activate(cfg.ffn === "geglu" ? "geglu" : "swiglu", A.hs, A.hb, A.hb2, n * hiddenDim);
    } else {
      dev.matmul(A.xb, n, dim, [{ out: A.hb, w: L.wUp, b: L.bUp, dOut: hiddenDim }]);
      dev.activate("gelu", A.hs, A.hb, A.hb, n * hiddenDim);
    }
    dev.matmul(A.hs, n, hiddenDim, [{ out: A.xb2, w: L.wDown, b: L.bDown, dOut: dim }]);
    residual(L.postFfnNorm);
  }
  // the head: rows [first, n) only
  const m = n - first;
  norm(A.xb, A.x, W.finalNorm, W.finalNormB, m, first);
  dev.matmul(A.xb, m, dim, [{ out: A.logits, w: W.lmHead, dOut: vocabSize }]);
  // Gemma 2: final logits soft-capped, cap * tanh(logit / cap).
  if (cfg.finalSoftcap !== undefined) dev.softcap(A.logits, m * vocabSize, cfg.finalSoftcap);
  return dev.readLogits(A.logits, m);
}

/**
 * A model whose forward runs on one device: the shell every device shares (the sliding window's
 * pieces, the interface the protocols use). LlamaModel is the host one; GpuLlamaModel the GPU's.
 */
export abstract class DecoderModel<T, M, V> implements LanguageModel {
  /** Sliding-window feeding state (last position per cache, gathered logits). */
  private readonly window = new WindowedForward();
  protected abstract readonly device: ForwardDevice<T, M, V>;

  constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    readonly executor: Executor,
    readonly source: string,
    /** Host weights: the embedding is looked up here whatever the device. */
    protected readonly host: LlamaWeights,
  ) {}

  abstract kvShape(maxTokens: number): KVShape;
  abstract dispose(): void;

  async forward(
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts: ForwardOptions = {},
  ): Promise<Float32Array> {
    // Mistral's sliding window (src/model/sliding-window.ts); a plain forwardChunk without one.
    return this.window.forward(this, tokens, positions, cache, opts);
  }

  /** One piece of a forward: every query attends to everything the cache holds (causally). */
  forwardChunk(
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts: ForwardOptions = {},
  ): Promise<Float32Array> {
    return forwardChunk(this.device, this.config, this.host, tokens, positions, cache, opts);
  }
}

/** A model on the host: the forward over the executor's ops (ref or wasm; webgpu's counted ref ops). */
export class LlamaModel extends DecoderModel<Float32Array, Matrix, Float32Array> {
  private readonly invFreq: Float32Array; // (headDim / 2)
  /** Windowed (local) layers' frequencies where their RoPE base differs (Gemma 3), else invFreq. */
  private readonly localInvFreq: Float32Array; // (headDim / 2)
  protected readonly device: CpuDevice;

  constructor(
    config: ModelConfig,
    readonly weights: LlamaWeights,
    tokenizer: TextTokenizer,
    executor: Executor,
    source: string,
  ) {
    super(config, tokenizer, executor, source, weights);
    // A model without RoPE (learned positions) gets zero frequencies: the rotation is then the
    // identity, so caches that store keys before RoPE or re-rotate them (pre-RoPE presets, sinks
    // with cache positions) stay correct with no special case.
    const inv = config.positions === "learned" ? new Float32Array(config.headDim / 2) : ropeInvFreq(config);
    this.invFreq = executor.allocF32(inv.length);
    this.invFreq.set(inv);
    if (config.ropeLocalTheta !== undefined) {
      // Gemma 3's local layers: their own base, without the global layers' scaling.
      const local = ropeInvFreq({ headDim: config.headDim, ropeTheta: config.ropeLocalTheta });
      this.localInvFreq = executor.allocF32(local.length);
      this.localInvFreq.set(local);
    } else this.localInvFreq = this.invFreq;
    this.device = new CpuDevice(executor, config, weights, this.invFreq, this.localInvFreq);
  }

  kvShape(maxTokens: number): KVShape {
    const { nLayers, nHeads, nKvHeads, headDim } = this.config;
    // rope: caches that store keys before RoPE (sinks with cache positions, pre-RoPE presets)
    // un-rotate and re-rotate with the model's own frequencies.
    const shape: KVShape & ModelWindow & ModelSoftcap = {
      nLayers,
      nHeads,
      nKvHeads,
      headDim,
      maxTokens,
    };
    // One set of frequencies for every layer only: with per-layer RoPE bases (Gemma 3) a cache
    // that needs them (pre-RoPE keys, cache positions) is refused by the cache for lack of them.
    if (this.localInvFreq === this.invFreq) shape.rope = { invFreq: this.invFreq };
    // window: the cache keeps no key the model's sliding window hides (src/cache/model-window.ts).
    const w = this.config.slidingWindow;
    const wl = this.config.windowLayers;
    if (w !== undefined) shape.window = Array.from({ length: nLayers }, (_, l) => (!wl || wl[l] ? w : 0));
    // Gemma 2: the caches soft-cap attention scores (src/cache/softcap.ts).
    if (this.config.attnSoftcap !== undefined) shape.softcap = this.config.attnSoftcap;
    return shape;
  }

  dispose(): void {
    const e = this.executor;
    const W = this.weights;
    for (const L of W.layers) for (const a of Object.values(L)) if (a) e.free(a);
    e.free(W.embed);
    e.free(W.finalNorm);
    if (W.finalNormB) e.free(W.finalNormB);
    if (W.posEmbed) e.free(W.posEmbed);
    if (W.lmHead !== W.embed) e.free(W.lmHead);
    if (this.localInvFreq !== this.invFreq) e.free(this.localInvFreq);
    e.free(this.invFreq);
    this.device.dispose();
  }
}
