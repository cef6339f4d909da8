/**
 * The GPU device of the one forward (src/model/llama.ts's forwardChunk), and the model that
 * runs it: weights, activations and (with a GpuKVCache) the KV cache resident in GPU buffers.
 * The layer loop is not here: every family option is a step of that forward, and this file
 * supplies each op as WGSL kernels (src/gpu/kernels/forward.ts): RMSNorm or LayerNorm with
 * bias (GPT-2), RoPE (one base, or Gemma 3's local layers' own), the matmuls with their biases,
 * SwiGLU, GeGLU or GELU, scale (query_pre_attn_scalar), soft-capping, and the transposes into
 * the cache's layout. The embedding rows (GPT-2's learned positions, Gemma's scale) are made on
 * the host by the forward and uploaded. Mistral's / Gemma's sliding window is fed in pieces as
 * on every device (src/model/sliding-window.ts). Gemma 2's attention soft-capping is the
 * cache's, and the GPU cache's attention kernels apply it. The forward reaches the device only through ForwardDevice's ops, so a
 * family step added there is a type error here until GpuDevice implements it.
 */
import type { KVCache, KVShape } from "../cache/types.ts";
import { ConfigError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { type Matrix, matrixF32 } from "../kernels/weights.ts";
import type { ModelConfig } from "../model/config.ts";
import {
  type Activations,
  DecoderModel,
  type DecoderWeights,
  type ForwardDevice,
  type LanguageModel,
  type LlamaModel,
  type LlamaWeights,
  type Projection,
} from "../model/llama.ts";
import { ropeInvFreq } from "../model/rope.ts";
import type { Dispatch, Kernel } from "./kernel.ts";
import * as fwd from "./kernels/forward.ts";
import { GpuKVCache } from "./kv-cache.ts";
import type { GpuOps } from "./ops.ts";

/** A (dOut, dIn) weight on the device, split into row blocks when over the binding-size limit. */
export interface Weight {
  blocks: GPUBuffer[];
  /** Rows (output features) per block; the last block may hold fewer. */
  rowsPerBlock: number;
}

/** The forward's activations for up to `cap` tokens, and the buffers the device adds to them. */
interface Acts extends Activations<GPUBuffer> {
  cap: number;
  qin: GPUBuffer; // (nHeads, n, headDim) then (group * n) i32 positions: the cache's query input
  kvin: GPUBuffer; // (nKvHeads, n, headDim) K, then V, then (n) i32 positions: the cache's append input
  attT: GPUBuffer; // (nHeads, n, headDim)
  tmp: GPUBuffer; // (n, max(dim, nHeads * headDim)) an in-place op's output before it is copied back
  cs: GPUBuffer; // (n, headDim / 2, 2) RoPE cos/sin
  csLocal: GPUBuffer; // (n, headDim / 2, 2) the local layers' cos/sin (Gemma 3), else a stand-in
}

/** Rows one dispatch of a row kernel (one workgroup per row) can address. */
const MAX_ROWS = 65535;

/**
 * The GPU device of the forward (src/model/llama.ts): weights, activations and (with a
 * GpuKVCache) the KV cache in GPU buffers. Ops are recorded and submitted in batches: at each
 * attention (the cache reads what came before) and at the logits. Per forward call the host
 * uploads the embedding rows, the RoPE cos/sin table and the query positions, and reads back
 * only the logits (and, for policies that read attention, the probabilities). With any other
 * KVCache (specs the GPU cache does not hold) q/k/v cross the bus each layer and the cache runs
 * where it lives.
 */
class GpuDevice implements ForwardDevice<GPUBuffer, Weight, GPUBuffer> {
  readonly weights: DecoderWeights<Weight, GPUBuffer>;
  private readonly invFreq: Float32Array;
  /** The local (windowed) layers' frequencies where their RoPE base differs (Gemma 3). */
  private readonly localInvFreq?: Float32Array;
  private readonly dummy: GPUBuffer;
  private acts: Acts | null = null;
  private readonly k: Record<"matmul" | "rmsnorm" | "layernorm" | "rope" | "ew" | "perm", Kernel>;
  private logitsHost = new Float32Array(0);
  /** Dispatches recorded since the last submit. */
  private pending: Dispatch[] = [];
  private cache: KVCache | null = null;
  private positions: Int32Array = new Int32Array(0);

  constructor(
    private readonly cfg: ModelConfig,
    host: LlamaWeights,
    private readonly ops: GpuOps,
    /** Largest row block of a weight matrix in bytes (default: the device's binding limit). */
    maxBlockBytes?: number,
  ) {
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
    const { dim, hiddenDim, nHeads, headDim } = cfg;
    // The optional vectors of a layer, uploaded where the family has them.
    const opt = (a: Float32Array | undefined, label: string) => (a ? up(a, label) : undefined);
    this.weights = {
      layers: host.layers.map((L, i) => ({
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
      })),
      finalNorm: up(host.finalNorm, "finalNorm"),
      finalNormB: opt(host.finalNormB, "finalNormB"),
      lmHead: mat(host.lmHead, dim, "lmHead"),
    };
    this.invFreq = ropeInvFreq(cfg);
    // Gemma 3's local layers: their own base, without the global layers' scaling (as the CPU forward).
    if (cfg.ropeLocalTheta !== undefined)
      this.localInvFreq = ropeInvFreq({ headDim, ropeTheta: cfg.ropeLocalTheta });
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

  private ensure(n: number): Acts {
    if (this.acts && this.acts.cap >= n) return this.acts;
    if (this.acts) this.freeActs(this.acts);
    const cap = Math.max(n, (this.acts?.cap ?? 0) * 2);
    const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize } = this.cfg;
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
      tmp: b(cap * Math.max(dim, nHeads * headDim), "tmp"), // any in-place rmsnorm (q, k, or a dim-wide row)
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

  /** Submit what was recorded (before the host reads or writes a buffer those dispatches use). */
  private flush(): void {
    if (this.pending.length > 0) this.ops.rt.run(this.pending);
    this.pending = [];
  }

  private upload(buf: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.flush();
    this.ops.rt.upload(buf, data, byteOffset);
  }

  begin(positions: Int32Array, cache: KVCache): Activations<GPUBuffer> {
    const n = positions.length;
    const { nHeads, nKvHeads, headDim: d } = this.cfg;
    const group = nHeads / nKvHeads;
    const A = this.ensure(n);
    this.cache = cache;
    this.positions = positions;
    if (this.cfg.positions !== "learned") {
      this.upload(A.cs, fwd.ropeTable(positions, this.invFreq));
      if (this.localInvFreq) this.upload(A.csLocal, fwd.ropeTable(positions, this.localInvFreq));
    }
    const qPos = new Int32Array(group * n);
    for (let g = 0; g < group; g++) qPos.set(positions, g * n);
    this.upload(A.qin, qPos, n * nHeads * d * 4);
    this.upload(A.kvin, positions, 2 * n * nKvHeads * d * 4);
    return A;
  }

  setRows(x: GPUBuffer, n: number, fill: (rows: Float32Array) => void): void {
    const rows = new Float32Array(n * this.cfg.dim);
    fill(rows);
    this.upload(x, rows);
  }

  /** One dispatch per workgroup-addressable block of rows; in place through tmp (a storage buffer binds once). */
  rmsnorm(out: GPUBuffer, inp: GPUBuffer, w: GPUBuffer, rows: number, width: number, inRow = 0): void {
    const o = out === inp ? this.acts!.tmp : out;
    for (let r = 0; r < rows; r += MAX_ROWS) {
      const m = Math.min(MAX_ROWS, rows - r);
      this.pending.push({
        kernel: this.k.rmsnorm,
        params: fwd.rmsnormParams(m, width, this.cfg.rmsNormEps, (inRow + r) * width, r * width),
        buffers: [inp, w, o],
        groups: [m],
      });
    }
    if (o !== out) this.copy(out, o, rows * width);
  }

  layernorm(out: GPUBuffer, inp: GPUBuffer, w: GPUBuffer, b: GPUBuffer, rows: number, inRow = 0): void {
    const dim = this.cfg.dim;
    this.pending.push({
      kernel: this.k.layernorm,
      params: fwd.layernormParams(rows, dim, this.cfg.rmsNormEps, inRow * dim, 0),
      buffers: [inp, w, b, out],
      groups: [rows],
    });
  }

  /** out (n, dOut) = x (n, dIn) @ w^T (+ bias): one dispatch per row block of each w. */
  matmul(x: GPUBuffer, n: number, dIn: number, outs: Projection<GPUBuffer, Weight, GPUBuffer>[]): void {
    for (const { out, w, b, dOut } of outs)
      w.blocks.forEach((block, k) => {
        const col = k * w.rowsPerBlock;
        const rows = Math.min(w.rowsPerBlock, dOut - col);
        this.pending.push({
          kernel: this.k.matmul,
          params: fwd.matmulParams(n, dIn, rows, b !== undefined, { b: col, oStride: dOut, oCol: col }),
          buffers: [x, block, b ?? this.dummy, out],
          groups: fwd.grid(n * rows),
        });
      });
  }

  rope(x: GPUBuffer, n: number, heads: number, local: boolean): void {
    const d = this.cfg.headDim;
    const A = this.acts!;
    this.pending.push({
      kernel: this.k.rope,
      params: fwd.ropeParams(n, heads, d),
      buffers: [x, local && this.localInvFreq ? A.csLocal : A.cs],
      groups: fwd.grid((n * heads * d) / 2),
    });
  }

  /** dst = src (a, b, d) with axes 0 and 1 swapped, written dstOff floats in. */
  private perm(dst: GPUBuffer, src: GPUBuffer, a: number, b: number, d: number, dstOff = 0): void {
    this.pending.push({
      kernel: this.k.perm,
      params: fwd.permuteParams(a, b, d, 0, dstOff),
      buffers: [src, dst],
      groups: fwd.grid(a * b * d),
    });
  }

  private copy(dst: GPUBuffer, src: GPUBuffer, len: number): void {
    this.perm(dst, src, 1, 1, len);
  }

  private ew(out: GPUBuffer, a: GPUBuffer, b: GPUBuffer, len: number, op: number, scalar = 0): void {
    this.pending.push({
      kernel: this.k.ew,
      params: fwd.elementwiseParams(len, op, scalar),
      buffers: [a, b, out],
      groups: fwd.grid(len),
    });
  }

  scale(x: GPUBuffer, len: number, s: number): void {
    this.ew(x, this.dummy, this.dummy, len, fwd.SCALE, s);
  }

  add(x: GPUBuffer, y: GPUBuffer, len: number): void {
    this.ew(x, y, this.dummy, len, fwd.ADD);
  }

  activate(
    kind: "swiglu" | "geglu" | "gelu",
    out: GPUBuffer,
    gate: GPUBuffer,
    up: GPUBuffer,
    len: number,
  ): void {
    const op = kind === "gelu" ? fwd.GELU : kind === "geglu" ? fwd.GEGLU : fwd.SWIGLU;
    this.ew(out, gate, kind === "gelu" ? this.dummy : up, len, op);
  }

  softcap(x: GPUBuffer, len: number, cap: number): void {
    this.ew(x, this.dummy, this.dummy, len, fwd.SOFTCAP, cap);
  }

  async attention(layer: number, a: Activations<GPUBuffer>, n: number): Promise<void> {
    const { nHeads, nKvHeads, headDim: d } = this.cfg;
    const qDim = nHeads * d;
    const kvDim = nKvHeads * d;
    const A = a as Acts;
    const rt = this.ops.rt;
    const positions = this.positions;
    this.perm(A.qin, A.q, n, nHeads, d);
    this.perm(A.kvin, A.k, n, nKvHeads, d);
    this.perm(A.kvin, A.v, n, nKvHeads, d, n * kvDim);
    this.flush();
    const cache = this.cache!;
    if (cache instanceof GpuKVCache) {
      let hostKeys: Float32Array | undefined;
      if (cache.needsHostKeys) {
        // The policy scores keys as they arrive (knorm): bring this chunk's K rows over.
        const [kr] = await rt.read([{ buf: A.kvin, bytes: n * kvDim * 4 }]);
        hostKeys = new Float32Array(kr!);
      }
      cache.appendDevice(layer, A.kvin, 0, n * kvDim, 2 * n * kvDim, positions, hostKeys);
      await cache.attendDevice(layer, A.qin, n * qDim, positions, A.attT);
    } else {
      // A cache that lives on the host: q, k, v down, attention output up.
      const [kv, q] = await rt.read([
        { buf: A.kvin, bytes: 2 * n * kvDim * 4 },
        { buf: A.qin, bytes: n * qDim * 4 },
      ]);
      const kvF = new Float32Array(kv!);
      await cache.append(layer, kvF.subarray(0, n * kvDim), kvF.subarray(n * kvDim), positions);
      const attT = new Float32Array(n * qDim);
      await cache.attend(layer, new Float32Array(q!), positions, attT);
      this.upload(A.attT, attT);
    }
    this.perm(A.att, A.attT, nHeads, n, d);
  }

  async readLogits(logits: GPUBuffer, rows: number): Promise<Float32Array> {
    this.flush();
    const len = rows * this.cfg.vocabSize;
    const cache = this.cache instanceof GpuKVCache ? this.cache : null;
    const ranges = [{ buf: logits, bytes: len * 4 }];
    if (cache) ranges.push(cache.statsRange());
    const [lg, st] = await this.ops.rt.read(ranges);
    if (cache) cache.takeStats(st!);
    if (this.logitsHost.length < len) this.logitsHost = new Float32Array(len);
    const out = this.logitsHost.subarray(0, len);
    out.set(new Float32Array(lg!));
    this.cache = null;
    return out;
  }

  dispose(): void {
    if (this.acts) this.freeActs(this.acts);
    this.acts = null;
    const free = (b: GPUBuffer | Weight) => {
      if ("blocks" in b) for (const x of b.blocks) x.destroy();
      else b.destroy();
    };
    const W = this.weights;
    for (const L of W.layers) for (const b of Object.values(L)) if (b) free(b as GPUBuffer | Weight);
    W.finalNorm.destroy();
    W.finalNormB?.destroy();
    free(W.lmHead);
    this.dummy.destroy();
  }
}

/**
 * A model whose forward runs on the GPU: the one forward (src/model/llama.ts) over GpuDevice.
 * Use: `const gpuModel = await toGpuModel(model)` for a model loaded with executor "webgpu"
 * (or any LlamaModel); it implements LanguageModel, so the protocols run it unchanged.
 */
export class GpuLlamaModel extends DecoderModel<GPUBuffer, Weight, GPUBuffer> {
  protected readonly device: GpuDevice;

  constructor(
    private readonly base: LlamaModel,
    executor: Executor,
    ops: GpuOps,
    /** Largest row block of a weight matrix in bytes (default: the device's binding limit). */
    maxBlockBytes?: number,
  ) {
    super(base.config, base.tokenizer, executor, base.source, base.weights);
    this.device = new GpuDevice(base.config, base.weights, ops, maxBlockBytes);
  }

  kvShape(maxTokens: number): KVShape {
    return this.base.kvShape(maxTokens);
  }

  dispose(): void {
    this.device.dispose();
    this.base.dispose();
  }
}

/**
 * The GPU forward for a loaded model. `executor` must be the webgpu executor (the one whose
 * device holds the buffers); the model's own executor may be any. Every family runs: the
 * forward is the one in src/model/llama.ts, and a step it gains is a ForwardDevice op, which
 * GpuDevice must implement to type-check (no family can silently compute differently here).
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
  return new GpuLlamaModel(model, exec, exec.gpu, options.maxBlockBytes);
}
