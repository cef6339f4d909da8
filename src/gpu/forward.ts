/**
 * The Llama-family forward pass on the GPU: the same steps as src/model/llama.ts, with the
 * weights, the activations and (with a GpuKVCache) the KV cache resident in GPU buffers.
 * Per forward call the host uploads the embedding rows of the tokens, the RoPE cos/sin table
 * and the query positions, and reads back only the logits (and, for policies that read
 * attention, the probabilities). With any other KVCache (specs the GPU cache does not hold)
 * q/k/v cross the bus each layer and the cache runs where it lives.
 *
 * Use: `const gpuModel = await toGpuModel(model)` for a model loaded with executor "webgpu"
 * (or any LlamaModel); it implements LanguageModel, so the protocols run it unchanged.
 *
 * Families: every ModelConfig option of the CPU forward, at the same step: RMSNorm or
 * LayerNorm with bias (GPT-2), RoPE (one base, or the local layers' own base: Gemma 3) or
 * learned absolute positions (GPT-2: added to the embedding rows on the host, as the embedding
 * itself and its sqrt(hidden) scale are), q/k/v, output and FFN biases, Qwen3/Gemma q/k norms,
 * query_pre_attn_scalar, post-attention/post-FFN norms (Gemma), SwiGLU, GeGLU or the GELU MLP,
 * final logit soft-capping, and Mistral's / Gemma's sliding window fed in pieces as the CPU
 * forward does. Gemma 2's attention soft-capping is the cache's: createCache builds a host
 * cache for it (the GPU cache lacks it), so q/k/v cross the bus each layer. A config with a
 * field these kernels lack (gpuForwardUnsupported: any field outside GPU_FORWARD_FIELDS; none
 * today) runs the host path instead: the CPU forward (src/model/llama.ts) over the GPU cache,
 * counted in the executor's fallbacks as "prepareModel: <family> (<field>)", never a silently
 * different forward.
 */
import type { KVCache, KVShape } from "../cache/types.ts";
import { ConfigError, ShapeError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { countFallback } from "../kernels/executor.ts";
import { type Matrix, matrixF32 } from "../kernels/weights.ts";
import type { ModelConfig } from "../model/config.ts";
import type { ForwardOptions, LanguageModel, LlamaModel, LlamaWeights } from "../model/llama.ts";
import { ropeInvFreq } from "../model/rope.ts";
import { WindowedForward } from "../model/sliding-window.ts";
import type { Dispatch, Kernel } from "./kernel.ts";
import * as fwd from "./kernels/forward.ts";
import { GpuKVCache } from "./kv-cache.ts";
import type { GpuOps } from "./ops.ts";

/** A (dOut, dIn) weight on the device, split into row blocks when over the binding-size limit. */
interface Weight {
  blocks: GPUBuffer[];
  /** Rows (output features) per block; the last block may hold fewer. */
  rowsPerBlock: number;
}

interface GpuLayer {
  attnNorm: GPUBuffer;
  attnNormB?: GPUBuffer; // LayerNorm bias (GPT-2)
  wq: Weight;
  wk: Weight;
  wv: Weight;
  wo: Weight;
  bq?: GPUBuffer;
  bk?: GPUBuffer;
  bv?: GPUBuffer;
  bo?: GPUBuffer; // (dim) GPT-2
  qNorm?: GPUBuffer; // (headDim) Qwen3, Gemma
  kNorm?: GPUBuffer; // (headDim)
  postAttnNorm?: GPUBuffer; // (dim) Gemma
  ffnNorm: GPUBuffer;
  ffnNormB?: GPUBuffer;
  postFfnNorm?: GPUBuffer; // (dim) Gemma
  wGate?: Weight; // absent for the GELU MLP (GPT-2)
  wUp: Weight;
  bUp?: GPUBuffer; // (hiddenDim) GPT-2
  wDown: Weight;
  bDown?: GPUBuffer; // (dim) GPT-2
}

/** Activations for up to `cap` tokens. */
interface Acts {
  cap: number;
  x: GPUBuffer; // (n, dim)
  xb: GPUBuffer; // (n, dim)
  xb2: GPUBuffer; // (n, dim)
  q: GPUBuffer; // (n, nHeads, headDim)
  k: GPUBuffer; // (n, nKvHeads, headDim)
  v: GPUBuffer; // (n, nKvHeads, headDim)
  qin: GPUBuffer; // (nHeads, n, headDim) then (group * n) i32 positions: the cache's query input
  kvin: GPUBuffer; // (nKvHeads, n, headDim) K, then V, then (n) i32 positions: the cache's append input
  attT: GPUBuffer; // (nHeads, n, headDim)
  att: GPUBuffer; // (n, nHeads * headDim)
  hb: GPUBuffer; // (n, hiddenDim)
  hb2: GPUBuffer; // (n, hiddenDim)
  hs: GPUBuffer; // (n, hiddenDim) swiglu output
  logits: GPUBuffer; // (n, vocabSize)
  cs: GPUBuffer; // (n, headDim / 2, 2) RoPE cos/sin
  csLocal: GPUBuffer; // (n, headDim / 2, 2) the local layers' cos/sin (Gemma 3), else a stand-in
}

export class GpuLlamaModel implements LanguageModel {
  readonly config;
  readonly tokenizer;
  readonly source: string;
  private readonly layers: GpuLayer[];
  private readonly finalNorm: GPUBuffer;
  private readonly finalNormB?: GPUBuffer;
  private readonly lmHead: Weight;
  private readonly embed: Float32Array; // (vocabSize, dim) stays on the host: a forward uploads n rows
  private readonly posEmbed?: Float32Array; // (maxSeqLen, dim) GPT-2's learned positions, on the host too
  private readonly invFreq: Float32Array;
  /** The local (windowed) layers' frequencies where their RoPE base differs (Gemma 3). */
  private readonly localInvFreq?: Float32Array;
  private readonly dummy: GPUBuffer;
  private acts: Acts | null = null;
  private readonly k: Record<"matmul" | "rmsnorm" | "layernorm" | "rope" | "ew" | "perm", Kernel>;
  private logitsHost = new Float32Array(0);
  private readonly window = new WindowedForward();

  constructor(
    private readonly base: LlamaModel,
    readonly executor: Executor,
    private readonly ops: GpuOps,
    /** Largest row block of a weight matrix in bytes (default: the device's binding limit). */
    maxBlockBytes?: number,
  ) {
    this.config = base.config;
    this.tokenizer = base.tokenizer;
    this.source = base.source;
    const W: LlamaWeights = base.weights;
    const rt = ops.rt;
    const maxBinding = rt.device.limits.maxStorageBufferBindingSize;
    const up = (a: Float32Array, label: string) => {
      if (a.byteLength > maxBinding)
        throw new ConfigError(
          "executor",
          `tensor ${label} is ${a.byteLength} bytes, over this device's ${maxBinding}-byte storage binding limit`,
        );
      const b = rt.buffer(a.byteLength, label);
      rt.upload(b, a);
      return b;
    };
    // Matrices are split into row blocks that each fit one binding.
    // 16-bit weights (src/kernels/weights.ts) are widened to f32 here, on upload: the GPU
    // matmul reads f32 (GPU memory holds f32 weights; host memory the 16-bit ones).
    const mat = (w: Matrix, dIn: number, label: string): Weight => {
      const a = matrixF32(w);
      const blockBytes = Math.min(maxBinding, maxBlockBytes ?? maxBinding);
      const rowsPerBlock = Math.max(1, Math.floor(blockBytes / (dIn * 4)));
      const dOut = a.length / dIn;
      const blocks: GPUBuffer[] = [];
      for (let r = 0; r < dOut; r += rowsPerBlock)
        blocks.push(up(a.subarray(r * dIn, Math.min(dOut, r + rowsPerBlock) * dIn), `${label}[${r}]`));
      return { blocks, rowsPerBlock };
    };
    const { dim, hiddenDim, nHeads, headDim } = base.config;
    // The optional vectors of a layer, uploaded where the family has them.
    const opt = (a: Float32Array | undefined, label: string) => (a ? up(a, label) : undefined);
    this.layers = W.layers.map((L, i) => ({
      attnNorm: up(L.attnNorm, `l${i}.attnNorm`),
      attnNormB: opt(L.attnNormB, `l${i}.attnNormB`),
      wq: mat(L.wq, dim, `l${i}.wq`),
      wk: mat(L.wk, dim, `l${i}.wk`),
      wv: mat(L.wv, dim, `l${i}.wv`),
      wo: mat(L.wo, nHeads * headDim, `l${i}.wo`),
      bq: opt(L.bq, `l${i}.bq`),
      bk: opt(L.bk, `l${i}.bk`),
      bv: opt(L.bv, `l${i}.bv`),
      bo: opt(L.bo, `l${i}.bo`),
      qNorm: opt(L.qNorm, `l${i}.qNorm`),
      kNorm: opt(L.kNorm, `l${i}.kNorm`),
      postAttnNorm: opt(L.postAttnNorm, `l${i}.postAttnNorm`),
      ffnNorm: up(L.ffnNorm, `l${i}.ffnNorm`),
      ffnNormB: opt(L.ffnNormB, `l${i}.ffnNormB`),
      postFfnNorm: opt(L.postFfnNorm, `l${i}.postFfnNorm`),
      wGate: L.wGate ? mat(L.wGate, dim, `l${i}.wGate`) : undefined,
      wUp: mat(L.wUp, dim, `l${i}.wUp`),
      bUp: opt(L.bUp, `l${i}.bUp`),
      wDown: mat(L.wDown, hiddenDim, `l${i}.wDown`),
      bDown: opt(L.bDown, `l${i}.bDown`),
    }));
    this.finalNorm = up(W.finalNorm, "finalNorm");
    this.finalNormB = opt(W.finalNormB, "finalNormB");
    this.lmHead = mat(W.lmHead, dim, "lmHead");
    this.embed = matrixF32(W.embed);
    this.posEmbed = W.posEmbed;
    this.invFreq = ropeInvFreq(this.config);
    // Gemma 3's local layers: their own base, without the global layers' scaling (as the CPU forward).
    if (base.config.ropeLocalTheta !== undefined)
      this.localInvFreq = ropeInvFreq({ headDim, ropeTheta: base.config.ropeLocalTheta });
    this.dummy = rt.buffer(16, "dummy");
    this.k = {
      matmul: ops.kernel(fwd.matmulKernel, "matmul"),
      rmsnorm: ops.kernel(fwd.rmsnormKernel, "rmsnorm"),
      layernorm: ops.kernel(fwd.layernormKernel, "layernorm"),
      rope: ops.kernel(fwd.ropeKernel, "rope"),
      ew: ops.kernel(fwd.elementwiseKernel, "elementwise"),
      perm: ops.kernel(fwd.permuteKernel, "permute"),
    };
  }

  kvShape(maxTokens: number): KVShape {
    return this.base.kvShape(maxTokens);
  }

  private ensure(n: number): Acts {
    if (this.acts && this.acts.cap >= n) return this.acts;
    if (this.acts) this.freeActs(this.acts);
    const cap = Math.max(n, (this.acts?.cap ?? 0) * 2);
    const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize } = this.config;
    const group = nHeads / nKvHeads;
    const b = (floats: number, label: string) => this.ops.rt.buffer(floats * 4, label);
    this.acts = {
      cap,
      x: b(cap * dim, "x"),
      xb: b(cap * dim, "xb"),
      xb2: b(cap * dim, "xb2"),
      q: b(cap * nHeads * headDim, "q"),
      k: b(cap * nKvHeads * headDim, "k"),
      v: b(cap * nKvHeads * headDim, "v"),
      qin: b(cap * nHeads * headDim + group * cap, "qin"),
      kvin: b(2 * cap * nKvHeads * headDim + cap, "kvin"),
      attT: b(cap * nHeads * headDim, "attT"),
      att: b(cap * nHeads * headDim, "att"),
      hb: b(cap * hiddenDim, "hb"),
      hb2: b(cap * hiddenDim, "hb2"),
      hs: b(cap * hiddenDim, "hs"),
      logits: b(cap * vocabSize, "logits"),
      cs: b(cap * headDim, "rope cos/sin"),
      csLocal: this.localInvFreq ? b(cap * headDim, "local rope cos/sin") : b(4, "no local rope"),
    };
    return this.acts;
  }

  private freeActs(a: Acts): void {
    for (const [key, buf] of Object.entries(a)) if (key !== "cap") (buf as GPUBuffer).destroy();
  }

  /** Dispatches of out (n, dOut) = x (n, dIn) @ w^T (+ bias), one per row block of w. */
  private matmul(
    out: GPUBuffer,
    x: GPUBuffer,
    w: Weight,
    n: number,
    dIn: number,
    dOut: number,
    bias?: GPUBuffer,
  ): Dispatch[] {
    return w.blocks.map((block, k) => {
      const col = k * w.rowsPerBlock;
      const rows = Math.min(w.rowsPerBlock, dOut - col);
      return {
        kernel: this.k.matmul,
        params: fwd.matmulParams(n, dIn, rows, bias !== undefined, { b: col, oStride: dOut, oCol: col }),
        buffers: [x, block, bias ?? this.dummy, out],
        groups: fwd.grid(n * rows),
      };
    });
  }

  /** The model's norm over n rows of dim: RMSNorm, or LayerNorm with its bias (norm "layer"). */
  private norm(
    out: GPUBuffer,
    x: GPUBuffer,
    w: GPUBuffer,
    b: GPUBuffer | undefined,
    n: number,
    xOff = 0,
  ): Dispatch {
    if (this.config.norm !== "layer") return this.rmsnorm(out, x, w, n, xOff);
    if (!b) throw new ConfigError("norm", "LayerNorm without its bias vector");
    return {
      kernel: this.k.layernorm,
      params: fwd.layernormParams(n, this.config.dim, this.config.rmsNormEps, xOff, 0),
      buffers: [x, w, b, out],
      groups: [n],
    };
  }

  private rmsnorm(out: GPUBuffer, x: GPUBuffer, w: GPUBuffer, n: number, xOff = 0): Dispatch {
    return {
      kernel: this.k.rmsnorm,
      params: fwd.rmsnormParams(n, this.config.dim, this.config.rmsNormEps, xOff, 0),
      buffers: [x, w, out],
      groups: [n],
    };
  }

  /** RMSNorm over `rows` rows of headDim (each head of q or k), in row blocks a dispatch can address. */
  private headNorm(out: GPUBuffer, x: GPUBuffer, w: GPUBuffer, rows: number): Dispatch[] {
    const d = this.config.headDim;
    const out_: Dispatch[] = [];
    for (let r = 0; r < rows; r += 65535) {
      const m = Math.min(65535, rows - r);
      out_.push({
        kernel: this.k.rmsnorm,
        params: fwd.rmsnormParams(m, d, this.config.rmsNormEps, r * d, r * d),
        buffers: [x, w, out],
        groups: [m],
      });
    }
    return out_;
  }

  private perm(src: GPUBuffer, dst: GPUBuffer, a: number, b: number, d: number, dstOff = 0): Dispatch {
    return {
      kernel: this.k.perm,
      params: fwd.permuteParams(a, b, d, 0, dstOff),
      buffers: [src, dst],
      groups: fwd.grid(a * b * d),
    };
  }

  private ew(out: GPUBuffer, g: GPUBuffer, u: GPUBuffer, n: number, op: number, scalar = 0): Dispatch {
    return {
      kernel: this.k.ew,
      params: fwd.elementwiseParams(n, op, scalar),
      buffers: [g, u, out],
      groups: fwd.grid(n),
    };
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

  async forwardChunk(
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts: ForwardOptions = {},
  ): Promise<Float32Array> {
    const n = tokens.length;
    const cfg = this.config;
    const { dim, nHeads, nKvHeads, headDim: d, hiddenDim, vocabSize } = cfg;
    const first = opts.firstLogit ?? 0;
    if (positions.length !== n)
      throw new ShapeError(`forward: ${n} tokens but ${positions.length} positions`);
    if (n === 0 || first < 0 || first >= n)
      throw new ShapeError(`forward: need n >= 1 and 0 <= firstLogit < n (n=${n}, firstLogit=${first})`);
    const qDim = nHeads * d;
    const kvDim = nKvHeads * d;
    const group = nHeads / nKvHeads;
    const rt = this.ops.rt;
    const A = this.ensure(n);

    const x0 = new Float32Array(n * dim);
    for (let t = 0; t < n; t++) {
      const id = tokens[t]!;
      if (!(id >= 0 && id < vocabSize))
        throw new ShapeError(
          `forward: token id ${id} at index ${t} is outside the vocabulary [0, ${vocabSize})`,
        );
      x0.set(this.embed.subarray(id * dim, (id + 1) * dim), t * dim);
    }
    // GPT-2: learned absolute positions added to the token embedding (f32 adds, as the CPU forward).
    const pe = this.posEmbed;
    if (pe) {
      for (let t = 0; t < n; t++) {
        const p = positions[t]!;
        if (!(p >= 0 && p < cfg.maxSeqLen))
          throw new ShapeError(
            `forward: position ${p} is beyond the ${cfg.maxSeqLen} learned positions of this model`,
          );
      }
      for (let t = 0; t < n; t++)
        for (let i = 0, o = positions[t]! * dim; i < dim; i++)
          x0[t * dim + i] = x0[t * dim + i]! + pe[o + i]!;
    }
    // Gemma: the embedding times sqrt(hidden_size) (each product rounded to f32, as the CPU forward).
    const es = cfg.embedScale;
    if (es !== undefined) for (let i = 0; i < n * dim; i++) x0[i] = x0[i]! * es;
    rt.upload(A.x, x0);
    const rope = cfg.positions !== "learned";
    if (rope) rt.upload(A.cs, fwd.ropeTable(positions, this.invFreq));
    if (rope && this.localInvFreq) rt.upload(A.csLocal, fwd.ropeTable(positions, this.localInvFreq));
    // Gemma: scores q.k / sqrt(query_pre_attn_scalar); the cache divides by sqrt(headDim).
    const qScale = cfg.queryPreAttnScalar ? Math.sqrt(d / cfg.queryPreAttnScalar) : 1;
    const qPos = new Int32Array(group * n);
    for (let g = 0; g < group; g++) qPos.set(positions, g * n);
    rt.upload(A.qin, qPos, n * qDim * 4);
    rt.upload(A.kvin, positions, 2 * n * kvDim * 4);
    const gpuCache = cache instanceof GpuKVCache ? cache : null;
    // The GPU cache's attention kernels do not soft-cap scores (createCache never builds one for
    // such a shape); a host cache from createCache does (src/cache/softcap.ts).
    if (gpuCache && cfg.attnSoftcap !== undefined)
      throw new ConfigError(
        "cache",
        `this model soft-caps attention scores (${cfg.attnSoftcap}), which the GPU cache does not; build the cache with createCache(spec, model.kvShape(n))`,
      );

    for (let l = 0; l < cfg.nLayers; l++) {
      const L = this.layers[l]!;
      // q and k heads after their norms: att and attT are free until attention.
      const qh = L.qNorm ? A.att : A.q;
      const kh = L.kNorm ? A.attT : A.k;
      const cs = this.localInvFreq && cfg.windowLayers?.[l] ? A.csLocal : A.cs;
      const ropeOf = (x: GPUBuffer, heads: number): Dispatch => ({
        kernel: this.k.rope,
        params: fwd.ropeParams(n, heads, d),
        buffers: [x, cs],
        groups: fwd.grid((n * heads * d) / 2),
      });
      rt.run([
        this.norm(A.xb, A.x, L.attnNorm, L.attnNormB, n),
        ...this.matmul(A.q, A.xb, L.wq, n, dim, qDim, L.bq),
        ...this.matmul(A.k, A.xb, L.wk, n, dim, kvDim, L.bk),
        ...this.matmul(A.v, A.xb, L.wv, n, dim, kvDim, L.bv),
        // Qwen3: RMSNorm over each head's q and k, into buffers free until attention writes them.
        ...(L.qNorm ? this.headNorm(qh, A.q, L.qNorm, n * nHeads) : []),
        ...(L.kNorm ? this.headNorm(kh, A.k, L.kNorm, n * nKvHeads) : []),
        ...(rope ? [ropeOf(qh, nHeads), ropeOf(kh, nKvHeads)] : []),
        ...(qScale !== 1 ? [this.ew(qh, this.dummy, this.dummy, n * qDim, fwd.SCALE, qScale)] : []),
        this.perm(qh, A.qin, n, nHeads, d),
        this.perm(kh, A.kvin, n, nKvHeads, d),
        this.perm(A.v, A.kvin, n, nKvHeads, d, n * kvDim),
      ]);
      if (gpuCache) {
        let hostKeys: Float32Array | undefined;
        if (gpuCache.needsHostKeys) {
          // The policy scores keys as they arrive (knorm): bring this chunk's K rows over.
          const [kr] = await rt.read([{ buf: A.kvin, bytes: n * kvDim * 4 }]);
          hostKeys = new Float32Array(kr!);
        }
        gpuCache.appendDevice(l, A.kvin, 0, n * kvDim, 2 * n * kvDim, positions, hostKeys);
        await gpuCache.attendDevice(l, A.qin, n * qDim, positions, A.attT);
      } else {
        // A cache that lives on the host: q, k, v down, attention output up.
        const [kv, q] = await rt.read([
          { buf: A.kvin, bytes: 2 * n * kvDim * 4 },
          { buf: A.qin, bytes: n * qDim * 4 },
        ]);
        const kvF = new Float32Array(kv!);
        await cache.append(l, kvF.subarray(0, n * kvDim), kvF.subarray(n * kvDim), positions);
        const attT = new Float32Array(n * qDim);
        await cache.attend(l, new Float32Array(q!), positions, attT);
        rt.upload(A.attT, attT);
      }
      // Gemma's post-norms: the block output normed into xb (free by then) before the add.
      const residual = (post: GPUBuffer | undefined): Dispatch[] =>
        post
          ? [this.rmsnorm(A.xb, A.xb2, post, n), this.ew(A.x, A.xb, this.dummy, n * dim, fwd.ADD)]
          : [this.ew(A.x, A.xb2, this.dummy, n * dim, fwd.ADD)];
      // feed-forward: SwiGLU, Gemma's GeGLU, or GPT-2's GELU MLP (no gate)
      const ffn: Dispatch[] = L.wGate
        ? [
            ...this.matmul(A.hb, A.xb, L.wGate, n, dim, hiddenDim),
            ...this.matmul(A.hb2, A.xb, L.wUp, n, dim, hiddenDim),
            this.ew(A.hs, A.hb, A.hb2, n * hiddenDim, cfg.ffn === "geglu" ? fwd.GEGLU : fwd.SWIGLU),
          ]
        : [
            ...this.matmul(A.hb, A.xb, L.wUp, n, dim, hiddenDim, L.bUp),
            this.ew(A.hs, A.hb, this.dummy, n * hiddenDim, fwd.GELU),
          ];
      rt.run([
        this.perm(A.attT, A.att, nHeads, n, d),
        ...this.matmul(A.xb2, A.att, L.wo, n, qDim, dim, L.bo),
        ...residual(L.postAttnNorm),
        this.norm(A.xb, A.x, L.ffnNorm, L.ffnNormB, n),
        ...ffn,
        ...this.matmul(A.xb2, A.hs, L.wDown, n, hiddenDim, dim, L.bDown),
        ...residual(L.postFfnNorm),
      ]);
    }
    const m = n - first;
    const cap = cfg.finalSoftcap;
    rt.run([
      this.norm(A.xb, A.x, this.finalNorm, this.finalNormB, m, first * dim),
      ...this.matmul(A.logits, A.xb, this.lmHead, m, dim, vocabSize),
      // Gemma 2: final logits soft-capped, cap * tanh(logit / cap).
      ...(cap !== undefined
        ? [this.ew(A.logits, this.dummy, this.dummy, m * vocabSize, fwd.SOFTCAP, cap)]
        : []),
    ]);
    const ranges = [{ buf: A.logits, bytes: m * vocabSize * 4 }];
    if (gpuCache) ranges.push(gpuCache.statsRange());
    const [lg, st] = await rt.read(ranges);
    if (gpuCache) gpuCache.takeStats(st!);
    if (this.logitsHost.length < m * vocabSize) this.logitsHost = new Float32Array(m * vocabSize);
    const logits = this.logitsHost.subarray(0, m * vocabSize);
    logits.set(new Float32Array(lg!));
    return logits;
  }

  dispose(): void {
    if (this.acts) this.freeActs(this.acts);
    this.acts = null;
    const free = (b: GPUBuffer | Weight) => {
      if ("blocks" in b) for (const x of b.blocks) x.destroy();
      else b.destroy();
    };
    for (const L of this.layers) for (const b of Object.values(L)) if (b) free(b as GPUBuffer | Weight);
    this.finalNorm.destroy();
    this.finalNormB?.destroy();
    free(this.lmHead);
    this.dummy.destroy();
    this.base.dispose();
  }
}

/**
 * The ModelConfig fields whose every value the GPU forward computes as the CPU forward does.
 * A field outside this list (a family option added later) makes gpuForwardUnsupported name
 * it, so webgpu takes the counted host path until a kernel for it lands here.
 */
const GPU_FORWARD_FIELDS = new Set<keyof ModelConfig>([
  "arch",
  "dim",
  "hiddenDim",
  "nLayers",
  "nHeads",
  "nKvHeads",
  "headDim",
  "vocabSize",
  "maxSeqLen",
  "ropeTheta",
  "ropeScaling",
  "ropeFreqFactors",
  "rmsNormEps",
  "tiedEmbeddings",
  "qkvBias",
  "slidingWindow",
  "windowLayers",
  "ropeLocalTheta",
  "qkNorm",
  "norm",
  "positions",
  "ffn",
  "normOffset",
  "postNorms",
  "embedScale",
  "queryPreAttnScalar",
  "finalSoftcap",
  // applied by the cache (a host one: the GPU cache lacks it and is refused), src/cache/softcap.ts
  "attnSoftcap",
  "linearBias",
  "bosId",
  "eosId",
]);

/** Why the GPU kernels cannot run this config's forward (the first field they lack), or null. */
export function gpuForwardUnsupported(cfg: ModelConfig): string | null {
  for (const [k, v] of Object.entries(cfg))
    if (v !== undefined && !GPU_FORWARD_FIELDS.has(k as keyof ModelConfig)) return k;
  if (cfg.norm !== undefined && cfg.norm !== "rms" && cfg.norm !== "layer") return `norm ${cfg.norm}`;
  if (cfg.ffn !== undefined && !["swiglu", "geglu", "gelu"].includes(cfg.ffn)) return `ffn ${cfg.ffn}`;
  return null;
}

/**
 * The host path: the CPU forward of `base` (its own executor's ops) over caches made with the
 * webgpu executor (GPU caches), for a family the GPU forward does not run.
 */
class HostPathModel implements LanguageModel {
  readonly config;
  readonly tokenizer;
  readonly source;
  constructor(
    private readonly base: LlamaModel,
    readonly executor: Executor,
  ) {
    this.config = base.config;
    this.tokenizer = base.tokenizer;
    this.source = base.source;
  }
  kvShape(maxTokens: number): KVShape {
    return this.base.kvShape(maxTokens);
  }
  forward(tokens: ArrayLike<number>, positions: Int32Array, cache: KVCache, opts?: ForwardOptions) {
    return this.base.forward(tokens, positions, cache, opts);
  }
  dispose(): void {
    this.base.dispose();
  }
}

/**
 * The GPU forward for a loaded model. `executor` must be the webgpu executor (the one whose
 * device holds the buffers); the model's own executor may be any. A family whose ops the GPU
 * forward lacks gets the host path (HostPathModel), counted in the executor's fallbacks.
 */
export async function toGpuModel(
  model: LanguageModel,
  executor?: Executor,
  options: { maxBlockBytes?: number } = {},
): Promise<LanguageModel> {
  const { LlamaModel } = await import("../model/llama.ts");
  if (!(model instanceof LlamaModel))
    throw new ConfigError("executor", `the GPU forward runs Llama-family models; ${model.source} is not one`);
  const { createWebGpuExecutor, isWebGpuExecutor } = await import("./executor.ts");
  const exec = executor ?? (isWebGpuExecutor(model.executor) ? model.executor : await createWebGpuExecutor());
  if (!isWebGpuExecutor(exec)) throw new ConfigError("executor", "toGpuModel needs the webgpu executor");
  const why = gpuForwardUnsupported(model.config);
  if (why !== null) {
    countFallback(exec, `prepareModel: ${model.config.arch} (${why})`);
    return new HostPathModel(model, exec);
  }
  return new GpuLlamaModel(model, exec, exec.gpu, options.maxBlockBytes);
}
