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
import { ShapeError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { adjacentMatrix, type Matrix, widenInto } from "../kernels/weights.ts";
import type { ModelConfig } from "./config.ts";
import { addRowBias, centerRows, geglu, geluTanh, softcap } from "./family-ops.ts";
import { ropeInvFreq } from "./rope.ts";
import { WindowedForward } from "./sliding-window.ts";
import type { TextTokenizer } from "./tokenizer.ts";

/** One layer's weights; the optional ones exist exactly when the config's family has them. */
export interface LayerWeights {
  attnNorm: Float32Array; // (dim)
  attnNormB?: Float32Array; // (dim) LayerNorm bias (norm "layer")
  wq: Matrix; // (nHeads * headDim, dim), rotate-half row order
  wk: Matrix; // (nKvHeads * headDim, dim), rotate-half row order
  wv: Matrix; // (nKvHeads * headDim, dim)
  wo: Matrix; // (dim, nHeads * headDim)
  bq?: Float32Array; // (nHeads * headDim)
  bk?: Float32Array; // (nKvHeads * headDim)
  bv?: Float32Array; // (nKvHeads * headDim)
  bo?: Float32Array; // (dim) (linearBias)
  qNorm?: Float32Array; // (headDim) RMSNorm weight over each q head, rotate-half order (qkNorm)
  kNorm?: Float32Array; // (headDim) RMSNorm weight over each k head, rotate-half order (qkNorm)
  postAttnNorm?: Float32Array; // (dim) norm of the attention output before the residual add (postNorms)
  ffnNorm: Float32Array; // (dim)
  ffnNormB?: Float32Array; // (dim) LayerNorm bias (norm "layer")
  postFfnNorm?: Float32Array; // (dim) norm of the FFN output before the residual add (postNorms)
  wGate?: Matrix; // (hiddenDim, dim); absent for ffn "gelu"
  wUp: Matrix; // (hiddenDim, dim)
  bUp?: Float32Array; // (hiddenDim) (linearBias)
  wDown: Matrix; // (dim, hiddenDim)
  bDown?: Float32Array; // (dim) (linearBias)
}

/**
 * Matrices (Linear weights, the embedding) are f32 or 16-bit as the file stores them
 * (src/kernels/weights.ts: the matmul widens them exactly); vectors are f32.
 */
export interface LlamaWeights {
  embed: Matrix; // (vocabSize, dim)
  posEmbed?: Float32Array; // (maxSeqLen, dim) learned absolute positions (positions "learned")
  layers: LayerWeights[];
  finalNorm: Float32Array; // (dim)
  finalNormB?: Float32Array; // (dim) LayerNorm bias (norm "layer")
  lmHead: Matrix; // (vocabSize, dim); the same array as embed when tied
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

/** Activation buffers for up to `cap` tokens per forward call, in executor memory. */
class Scratch {
  cap = 0;
  x = new Float32Array(0) as Float32Array; // (n, dim) residual stream
  xb = new Float32Array(0) as Float32Array; // (n, dim) normed input
  xb2 = new Float32Array(0) as Float32Array; // (n, dim) block output
  // q (n, nHeads, headDim), then k and v (n, nKvHeads, headDim) each: with n = 1 this is the
  // (qDim + 2 kvDim) output row of one matmul over the fused q/k/v weights.
  qkv = new Float32Array(0) as Float32Array;
  qT = new Float32Array(0) as Float32Array; // (nHeads, n, headDim) as the cache wants it
  kT = new Float32Array(0) as Float32Array; // (nKvHeads, n, headDim)
  vT = new Float32Array(0) as Float32Array; // (nKvHeads, n, headDim)
  attT = new Float32Array(0) as Float32Array; // (nHeads, n, headDim) attention output from the cache
  att = new Float32Array(0) as Float32Array; // (n, nHeads * headDim)
  // gate (n, hiddenDim), then swiglu output, followed by up (n, hiddenDim); with n = 1 the
  // output row of one matmul over the fused gate/up weights.
  gateUp = new Float32Array(0) as Float32Array;
  logits = new Float32Array(0) as Float32Array; // (n, vocabSize)
  // Positions copied into executor memory once per call: rope and every KV head's attention
  // then read them in place instead of each copying the caller's array into scratch.
  pos = new Int32Array(0) as Int32Array; // (n)

  constructor(
    private readonly exec: Executor,
    private readonly cfg: ModelConfig,
  ) {}

  /** Grow (never per token: only when a larger chunk than ever before arrives). */
  ensure(n: number): void {
    if (n <= this.cap) return;
    const cap = Math.max(n, this.cap * 2);
    const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize } = this.cfg;
    const e = this.exec;
    const re = (old: Float32Array, size: number) => {
      e.free(old);
      return e.allocF32(size);
    };
    this.x = re(this.x, cap * dim);
    this.xb = re(this.xb, cap * dim);
    this.xb2 = re(this.xb2, cap * dim);
    this.qkv = re(this.qkv, cap * (nHeads + 2 * nKvHeads) * headDim);
    this.qT = re(this.qT, cap * nHeads * headDim);
    this.kT = re(this.kT, cap * nKvHeads * headDim);
    this.vT = re(this.vT, cap * nKvHeads * headDim);
    this.attT = re(this.attT, cap * nHeads * headDim);
    this.att = re(this.att, cap * nHeads * headDim);
    this.gateUp = re(this.gateUp, cap * 2 * hiddenDim);
    this.logits = re(this.logits, cap * vocabSize);
    e.free(this.pos);
    this.pos = e.allocI32(cap);
    this.cap = cap;
  }

  dispose(): void {
    for (const a of [
      this.x,
      this.xb,
      this.xb2,
      this.qkv,
      this.qT,
      this.kT,
      this.vT,
      this.attT,
      this.att,
      this.gateUp,
      this.logits,
      this.pos,
    ])
      this.exec.free(a);
    this.cap = 0;
  }
}

/** One view over arrays that lie back to back in one buffer, or undefined if they do not. */
function adjacent(parts: (Float32Array | undefined)[]): Float32Array | undefined {
  const a = parts[0];
  if (!a) return undefined;
  let end = a.byteOffset + a.byteLength;
  for (const p of parts.slice(1)) {
    if (!p || p.buffer !== a.buffer || p.byteOffset !== end) return undefined;
    end += p.byteLength;
  }
  return new Float32Array(a.buffer, a.byteOffset, (end - a.byteOffset) / 4);
}

/** Per layer: q/k/v and gate/up weights as single matrices, where the loader placed them so. */
interface FusedWeights {
  qkv?: Matrix; // (qDim + 2 kvDim, dim)
  bqkv?: Float32Array; // (qDim + 2 kvDim)
  gateUp?: Matrix; // (2 hiddenDim, dim)
}

function fuse(L: LayerWeights): FusedWeights {
  const qkv = adjacentMatrix<Matrix>([L.wq, L.wk, L.wv]);
  const bqkv = L.bq ? adjacent([L.bq, L.bk, L.bv]) : undefined;
  return {
    qkv: qkv && (!L.bq || bqkv) ? qkv : undefined,
    bqkv,
    gateUp: L.wGate ? adjacentMatrix<Matrix>([L.wGate, L.wUp]) : undefined,
  };
}

export class LlamaModel implements LanguageModel {
  private readonly invFreq: Float32Array; // (headDim / 2)
  /** Windowed (local) layers' frequencies where their RoPE base differs (Gemma 3), else invFreq. */
  private readonly localInvFreq: Float32Array; // (headDim / 2)
  private readonly s: Scratch;
  private readonly fused: FusedWeights[];
  /** Sliding-window feeding state (last position per cache, gathered logits). */
  private readonly window = new WindowedForward();

  constructor(
    readonly config: ModelConfig,
    readonly weights: LlamaWeights,
    readonly tokenizer: TextTokenizer,
    readonly executor: Executor,
    readonly source: string,
  ) {
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
    this.s = new Scratch(executor, config);
    this.fused = weights.layers.map(fuse);
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
  async forwardChunk(
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts: ForwardOptions = {},
  ): Promise<Float32Array> {
    const n = tokens.length;
    const cfg = this.config;
    const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize, rmsNormEps: eps } = cfg;
    const first = opts.firstLogit ?? 0;
    if (positions.length !== n)
      throw new ShapeError(`forward: ${n} tokens but ${positions.length} positions`);
    if (n === 0 || first < 0 || first >= n)
      throw new ShapeError(`forward: need n >= 1 and 0 <= firstLogit < n (n=${n}, firstLogit=${first})`);
    const qDim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const e = this.executor;
    const W = this.weights;
    const s = this.s;
    s.ensure(n);
    const x = s.x.subarray(0, n * dim);
    const xb = s.xb.subarray(0, n * dim);
    const xb2 = s.xb2.subarray(0, n * dim);
    const qkvDim = qDim + 2 * kvDim;
    const qkv = s.qkv.subarray(0, n * qkvDim);
    const q = qkv.subarray(0, n * qDim);
    const k = qkv.subarray(n * qDim, n * (qDim + kvDim));
    const v = qkv.subarray(n * (qDim + kvDim), n * qkvDim);
    // One token: (1, nH, d) and (nH, 1, d) are the same layout, so no transposes.
    const one = n === 1;
    const qT = one ? q : s.qT.subarray(0, n * qDim);
    const kT = one ? k : s.kT.subarray(0, n * kvDim);
    const vT = one ? v : s.vT.subarray(0, n * kvDim);
    const attT = s.attT.subarray(0, n * qDim);
    const att = one ? attT : s.att.subarray(0, n * qDim);
    const gateUp = s.gateUp.subarray(0, 2 * n * hiddenDim);
    const hb = gateUp.subarray(0, n * hiddenDim);
    const hb2 = gateUp.subarray(n * hiddenDim, 2 * n * hiddenDim);
    const pos = s.pos.subarray(0, n);
    pos.set(positions);
    const add = (a: Float32Array, b: Float32Array, len: number) => e.addInPlace(a, b, len);
    const swap = (dst: Float32Array, src: Float32Array, a: number, b: number, d: number) =>
      e.swapAxes01(dst, src, a, b, d);

    for (let t = 0; t < n; t++) {
      const id = tokens[t]!;
      if (!(id >= 0 && id < vocabSize))
        throw new ShapeError(
          `forward: token id ${id} at index ${t} is outside the vocabulary [0, ${vocabSize})`,
        );
      widenInto(W.embed, id * dim, x.subarray(t * dim, (t + 1) * dim));
    }
    // GPT-2: learned absolute positions added to the token embedding.
    if (W.posEmbed) {
      for (let t = 0; t < n; t++) {
        const p = positions[t]!;
        if (!(p >= 0 && p < cfg.maxSeqLen))
          throw new ShapeError(
            `forward: position ${p} is beyond the ${cfg.maxSeqLen} learned positions of this model`,
          );
      }
      for (let t = 0; t < n; t++) {
        const p = positions[t]!;
        add(x.subarray(t * dim, (t + 1) * dim), W.posEmbed.subarray(p * dim, (p + 1) * dim), dim);
      }
    }
    // rmsnorm, or LayerNorm (GPT-2) as rmsnorm of the centred row plus bias: (x - mean) /
    // sqrt(var + eps) * w + b, and var is the mean square of the centred row.
    const norm = (
      out: Float32Array,
      inp: Float32Array,
      w: Float32Array,
      b: Float32Array | undefined,
      rows: number,
    ) => {
      if (cfg.norm !== "layer") return e.rmsnorm(out, inp, w, rows, dim, eps);
      out.set(inp.subarray(0, rows * dim));
      centerRows(out, rows, dim);
      e.rmsnorm(out, out, w, rows, dim, eps);
      if (b) addRowBias(out, b, rows, dim);
    };
    const rope = cfg.positions !== "learned";
    const qScale = cfg.queryPreAttnScalar ? Math.sqrt(headDim / cfg.queryPreAttnScalar) : 1;
    // Gemma: the embedding times sqrt(hidden_size).
    if (cfg.embedScale !== undefined) for (let i = 0; i < n * dim; i++) x[i] = x[i]! * cfg.embedScale;

    for (let l = 0; l < cfg.nLayers; l++) {
      const L = W.layers[l]!;
      const F = this.fused[l]!;
      // attention
      norm(xb, x, L.attnNorm, L.attnNormB, n);
      // One token: q, k and v in one matmul (one pool job; per row the same arithmetic).
      if (one && F.qkv) e.matmul(qkv, xb, F.qkv, 1, dim, qkvDim, F.bqkv);
      else {
        e.matmul(q, xb, L.wq, n, dim, qDim, L.bq);
        e.matmul(k, xb, L.wk, n, dim, kvDim, L.bk);
        e.matmul(v, xb, L.wv, n, dim, kvDim, L.bv);
      }
      // Qwen3: RMSNorm over each head's q and k (rows of headDim) before RoPE.
      if (L.qNorm && L.kNorm) {
        e.rmsnorm(q, q, L.qNorm, n * nHeads, headDim, eps);
        e.rmsnorm(k, k, L.kNorm, n * nKvHeads, headDim, eps);
      }
      if (rope) {
        const inv = cfg.windowLayers?.[l] ? this.localInvFreq : this.invFreq;
        e.rope(q, pos, n, nHeads, headDim, inv);
        e.rope(k, pos, n, nKvHeads, headDim, inv);
      }
      // Gemma: scores scaled by 1/sqrt(query_pre_attn_scalar); the cache scales by 1/sqrt(headDim).
      if (qScale !== 1) for (let i = 0; i < n * qDim; i++) q[i] = q[i]! * qScale;
      if (!one) {
        swap(qT, q, n, nHeads, headDim);
        swap(kT, k, n, nKvHeads, headDim);
        swap(vT, v, n, nKvHeads, headDim);
      }
      await cache.append(l, kT, vT, pos);
      await cache.attend(l, qT, pos, attT);
      if (!one) swap(att, attT, nHeads, n, headDim);
      e.matmul(xb2, att, L.wo, n, qDim, dim, L.bo);
      if (L.postAttnNorm) e.rmsnorm(xb2, xb2, L.postAttnNorm, n, dim, eps);
      add(x, xb2, n * dim);
      // feed-forward: SwiGLU, Gemma's GeGLU, or GPT-2's GELU MLP (no gate)
      norm(xb, x, L.ffnNorm, L.ffnNormB, n);
      if (!L.wGate) {
        e.matmul(hb, xb, L.wUp, n, dim, hiddenDim, L.bUp);
        geluTanh(hb, n * hiddenDim);
      } else {
        if (one && F.gateUp) e.matmul(gateUp, xb, F.gateUp, 1, dim, 2 * hiddenDim);
        else {
          e.matmul(hb, xb, L.wGate, n, dim, hiddenDim);
          e.matmul(hb2, xb, L.wUp, n, dim, hiddenDim);
        }
        if (cfg.ffn === "geglu") geglu(hb, hb2, n * hiddenDim);
        else e.swiglu(hb, hb, hb2, n * hiddenDim);
      }
      e.matmul(xb2, hb, L.wDown, n, hiddenDim, dim, L.bDown);
      if (L.postFfnNorm) e.rmsnorm(xb2, xb2, L.postFfnNorm, n, dim, eps);
      add(x, xb2, n * dim);
    }

    const m = n - first;
    const xs = x.subarray(first * dim, n * dim);
    const xn = xb.subarray(0, m * dim);
    norm(xn, xs, W.finalNorm, W.finalNormB, m);
    const logits = s.logits.subarray(0, m * vocabSize);
    e.matmul(logits, xn, W.lmHead, m, dim, vocabSize);
    if (cfg.finalSoftcap !== undefined) softcap(logits, m * vocabSize, cfg.finalSoftcap);
    return logits;
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
    this.s.dispose();
  }
}
