/**
 * The host device of the forward (src/model/llama.ts): activations are arrays in the executor's
 * memory and every op is the executor's (ref, wasm; webgpu's counted ref ops), except the
 * elementwise pieces some families add (src/model/family-ops.ts), which run in TypeScript on
 * those arrays. Where the weights allow it, one token's q/k/v (and gate/up) projections run as
 * one matmul over matrices the loader placed back to back (one pool job; per row the same
 * arithmetic), and one token needs no transposes for the cache: (1, H, d) is (H, 1, d).
 */
import type { KVCache } from "../cache/types.ts";
import type { Executor } from "../kernels/executor.ts";
import { adjacentMatrix, type Matrix } from "../kernels/weights.ts";
import type { ModelConfig } from "./config.ts";
import { addRowBias, centerRows, geglu, geluTanh, softcap } from "./family-ops.ts";
import type { Activations, ForwardDevice, LlamaWeights, Projection } from "./llama.ts";

type F32 = Float32Array;

/** Floats per token of each activation buffer (in executor memory, grown to `cap` tokens). */
function perToken(cfg: ModelConfig) {
  const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize } = cfg;
  return {
    x: dim, // (n, dim) residual stream
    xb: dim, // (n, dim) normed input
    xb2: dim, // (n, dim) block output
    // q (n, nHeads, headDim), then k and v (n, nKvHeads, headDim) each: with n = 1 this is the
    // (qDim + 2 kvDim) output row of one matmul over the fused q/k/v weights.
    qkv: (nHeads + 2 * nKvHeads) * headDim,
    qT: nHeads * headDim, // (nHeads, n, headDim) as the cache wants it
    kT: nKvHeads * headDim, // (nKvHeads, n, headDim)
    vT: nKvHeads * headDim, // (nKvHeads, n, headDim)
    attT: nHeads * headDim, // (nHeads, n, headDim) attention output from the cache
    att: nHeads * headDim, // (n, nHeads * headDim)
    // gate (n, hiddenDim), then up (n, hiddenDim): with n = 1 the output row of one matmul over
    // the fused gate/up weights. The activations write over the gate.
    gateUp: 2 * hiddenDim,
    logits: vocabSize, // (n, vocabSize)
  };
}
type Buffers = Record<keyof ReturnType<typeof perToken>, F32>;

/** Activation buffers for up to `cap` tokens per forward call, in executor memory. */
class Scratch {
  cap = 0;
  b: Buffers | null = null;
  // Positions copied into executor memory once per call: rope and every KV head's attention
  // then read them in place instead of each copying the caller's array into scratch.
  pos = new Int32Array(0) as Int32Array; // (n)

  constructor(
    private readonly exec: Executor,
    private readonly cfg: ModelConfig,
  ) {}

  /** Grow (never per token: only when a larger chunk than ever before arrives). */
  ensure(n: number): Buffers {
    if (n <= this.cap) return this.b!;
    const cap = Math.max(n, this.cap * 2);
    this.dispose();
    const sizes = Object.entries(perToken(this.cfg));
    this.b = Object.fromEntries(sizes.map(([k, f]) => [k, this.exec.allocF32(cap * f)])) as Buffers;
    this.pos = this.exec.allocI32(cap);
    this.cap = cap;
    return this.b;
  }

  dispose(): void {
    for (const a of Object.values(this.b ?? {})) this.exec.free(a);
    this.exec.free(this.pos);
    this.b = null;
    this.cap = 0;
  }
}

/** One view over arrays that lie back to back in one buffer, or undefined if they do not. */
function adjacent(parts: (F32 | undefined)[]): F32 | undefined {
  const a = parts[0];
  if (!a) return undefined;
  let end = a.byteOffset + a.byteLength;
  for (const p of parts.slice(1)) {
    if (!p || p.buffer !== a.buffer || p.byteOffset !== end) return undefined;
    end += p.byteLength;
  }
  return new Float32Array(a.buffer, a.byteOffset, (end - a.byteOffset) / 4);
}

/** A matrix (and bias) made of a layer's projections that the loader placed back to back. */
interface Fused {
  w: Matrix; // (sum of dOut, dIn)
  b?: F32; // (sum of dOut)
}

export class CpuDevice implements ForwardDevice<F32, Matrix, F32> {
  private readonly s: Scratch;
  /** Fused q/k/v and gate/up matrices, keyed by the first matrix of each group (wq, wGate). */
  private readonly fused = new Map<Matrix, Fused>();
  private cache: KVCache | null = null;

  constructor(
    private readonly e: Executor,
    private readonly cfg: ModelConfig,
    readonly weights: LlamaWeights,
    private readonly invFreq: F32, // (headDim / 2) in executor memory
    private readonly localInvFreq: F32, // (headDim / 2) the local layers' (Gemma 3), else invFreq
  ) {
    this.s = new Scratch(e, cfg);
    for (const L of weights.layers) {
      const qkv = adjacentMatrix<Matrix>([L.wq, L.wk, L.wv]);
      const bqkv = L.bq ? adjacent([L.bq, L.bk, L.bv]) : undefined;
      if (qkv && (!L.bq || bqkv)) this.fused.set(L.wq, { w: qkv, b: bqkv });
      const gateUp = L.wGate && !L.bUp ? adjacentMatrix<Matrix>([L.wGate, L.wUp]) : undefined;
      if (L.wGate && gateUp) this.fused.set(L.wGate, { w: gateUp });
    }
  }

  begin(positions: Int32Array, cache: KVCache): Activations<F32> {
    const n = positions.length;
    const { dim, nHeads, nKvHeads, headDim, hiddenDim, vocabSize } = this.cfg;
    const s = this.s.ensure(n);
    this.s.pos.set(positions);
    this.cache = cache;
    const qDim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const hb = s.gateUp.subarray(0, n * hiddenDim);
    return {
      x: s.x.subarray(0, n * dim),
      xb: s.xb.subarray(0, n * dim),
      xb2: s.xb2.subarray(0, n * dim),
      q: s.qkv.subarray(0, n * qDim),
      k: s.qkv.subarray(n * qDim, n * (qDim + kvDim)),
      v: s.qkv.subarray(n * (qDim + kvDim), n * (qDim + 2 * kvDim)),
      att: s.att.subarray(0, n * qDim),
      hb,
      hb2: s.gateUp.subarray(n * hiddenDim, 2 * n * hiddenDim),
      hs: hb,
      logits: s.logits.subarray(0, n * vocabSize),
    };
  }

  setRows(x: F32, _n: number, fill: (rows: F32) => void): void {
    fill(x);
  }

  rmsnorm(out: F32, inp: F32, w: F32, rows: number, width: number, inRow = 0): void {
    const x = inp.subarray(inRow * width, (inRow + rows) * width);
    this.e.rmsnorm(out.subarray(0, rows * width), x, w, rows, width, this.cfg.rmsNormEps);
  }

  // LayerNorm as RMSNorm of the centred row plus bias: var is the mean square of the centred row.
  layernorm(out: F32, inp: F32, w: F32, b: F32, rows: number, inRow = 0): void {
    const dim = this.cfg.dim;
    const o = out.subarray(0, rows * dim);
    o.set(inp.subarray(inRow * dim, (inRow + rows) * dim));
    centerRows(o, rows, dim);
    this.e.rmsnorm(o, o, w, rows, dim, this.cfg.rmsNormEps);
    addRowBias(o, b, rows, dim);
  }

  matmul(x: F32, n: number, dIn: number, outs: Projection<F32, Matrix, F32>[]): void {
    const f = n === 1 && outs.length > 1 ? this.fused.get(outs[0]!.w) : undefined;
    const out = f && adjacent(outs.map((o) => o.out.subarray(0, o.dOut)));
    if (f && out) this.e.matmul(out, x, f.w, 1, dIn, out.length, f.b);
    else for (const o of outs) this.e.matmul(o.out, x, o.w, n, dIn, o.dOut, o.b);
  }

  rope(x: F32, n: number, heads: number, local: boolean): void {
    const inv = local ? this.localInvFreq : this.invFreq;
    this.e.rope(x, this.s.pos.subarray(0, n), n, heads, this.cfg.headDim, inv);
  }

  scale(x: F32, len: number, s: number): void {
    for (let i = 0; i < len; i++) x[i] = x[i]! * s;
  }

  add(x: F32, y: F32, len: number): void {
    this.e.addInPlace(x, y, len);
  }

  activate(kind: "swiglu" | "geglu" | "gelu", out: F32, gate: F32, up: F32, len: number): void {
    if (kind === "swiglu") {
      this.e.swiglu(out, gate, up, len);
      return;
    }
    if (out !== gate) out.set(gate.subarray(0, len));
    if (kind === "geglu") geglu(out, up, len);
    else geluTanh(out, len);
  }

  softcap(x: F32, len: number, cap: number): void {
    softcap(x, len, cap);
  }

  async attention(layer: number, a: Activations<F32>, n: number): Promise<void> {
    const { nHeads, nKvHeads, headDim: d } = this.cfg;
    const s = this.s.b!;
    const cache = this.cache!;
    const pos = this.s.pos.subarray(0, n);
    // One token: (1, H, d) and (H, 1, d) are the same layout, so no transposes.
    if (n === 1) {
      await cache.append(layer, a.k, a.v, pos);
      return cache.attend(layer, a.q, pos, a.att);
    }
    const swap = (dst: F32, src: F32, x: number, y: number) => this.e.swapAxes01(dst, src, x, y, d);
    const qT = s.qT.subarray(0, n * nHeads * d);
    const kT = s.kT.subarray(0, n * nKvHeads * d);
    const vT = s.vT.subarray(0, n * nKvHeads * d);
    const attT = s.attT.subarray(0, n * nHeads * d);
    swap(qT, a.q, n, nHeads);
    swap(kT, a.k, n, nKvHeads);
    swap(vT, a.v, n, nKvHeads);
    await cache.append(layer, kT, vT, pos);
    await cache.attend(layer, qT, pos, attT);
    swap(a.att, attT, nHeads, n);
  }

  async readLogits(logits: F32, rows: number): Promise<F32> {
    return logits.subarray(0, rows * this.cfg.vocabSize);
  }

  dispose(): void {
    this.s.dispose();
    this.cache = null;
  }
}
