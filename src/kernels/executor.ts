/**
 * The op list every executor implements: `ref` (plain TypeScript, the specification), `wasm`
 * (AssemblyScript SIMD, the default) and `webgpu` (WGSL on Dawn). A backend implements what it
 * can and `withFallbacks` fills the rest from `ref`, counting every such call in `fallbacks`
 * (experiments write it out), so callers call every op unconditionally and no fallback is silent.
 *
 * Arrays are ordinary typed arrays. An executor may hand out arrays that live in its own
 * memory (`alloc*`: the WASM linear memory, so kernels read them in place by pointer); arrays
 * from elsewhere still work, copied in and out at a cost.
 */
import type { RetentionPolicy } from "../cache/policy.ts";
import type { KVCache, KVShape, ResolvedCacheSpec } from "../cache/types.ts";
import { ShapeError } from "../errors.ts";
import type { LanguageModel } from "../model/llama.ts";
import type { ChannelQuantOptions } from "../quant/channel.ts";
import type { Codec, EncodedRows, EncodeStats } from "../quant/types.ts";
import type { Matrix } from "./weights.ts";

export type ExecutorName = "ref" | "wasm" | "webgpu";

/** Attention of a group of query rows over one KV head's retained (encoded) rows. */
export interface AttendArgs {
  kCodec: Codec;
  vCodec: Codec;
  headDim: number;
  /** Query rows of the query heads sharing this KV head, already RoPE'd: (nRows, headDim). */
  q: Float32Array;
  /** Absolute position of each query row: (nRows). */
  qPos: Int32Array;
  nRows: number;
  k: EncodedRows; // (nSlots) rows in kCodec's layout
  v: EncodedRows; // (nSlots) rows in vCodec's layout
  /** Absolute position of each retained slot: (nSlots). Slot j is visible to row r iff slotPos[j] <= qPos[r]. */
  slotPos: Int32Array;
  nSlots: number;
  /** Softmax scale, normally 1/sqrt(headDim). */
  scale: number;
  /** Output rows: (nRows, headDim). */
  out: Float32Array;
  /** When given, receives the softmax probabilities (nRows, nSlots); masked slots get 0. */
  probs?: Float32Array;
  /**
   * Cache option query: q8 (src/quant/q8-query.ts). q then holds the dequantized q8_0 rows, and
   * these are their int8 codes (nRows, headDim) and f32 block scales (nRows, ceil(headDim / 32)),
   * q = codes * scale per block. Attention is defined over q as given; an executor may compute
   * the scores from the codes with integer dot products instead (same value up to its f32
   * rounding), and one that cannot ignores this.
   */
  q8?: {
    codes: Int8Array;
    scales: Float32Array;
    /**
     * Cache option query: q8w (src/quant/q8-weights.ts): over int8 / int4 value rows the
     * softmax weights are also rounded, to q8_0 per block of 32 slots (times each slot's
     * group scale), and the weighted sum is defined over those. Part of the definition: an
     * executor that cannot compute it runs the call through `ref` (counted), never ignores it.
     */
    weights?: boolean;
  };
  /**
   * Attention logit soft-capping (Gemma 2, src/cache/softcap.ts): each scaled score s becomes
   * softcap * tanh(s / softcap) before the softmax. An executor without it in its kernel runs
   * the call through `ref` (counted), never ignores it.
   */
  softcap?: number;
}

/** One KV head's channel-axis keys (src/cache/channel-keys.ts, src/quant/channel.ts). */
export interface ChannelKeyRows {
  codes: Uint8Array; // (capacity, codeBytes) packed code rows, one per slot
  codeBytes: number;
  groupOf: Int32Array; // (capacity) group id of each slot, -1 = still in the f32 residual
  resid: Float32Array; // (capacity, headDim) f32 rows of residual slots
  scales: Uint16Array; // (groups, headDim) f16
  zeros: Uint16Array; // (groups, headDim) f16 (asymmetric only)
}

/**
 * AttendArgs for a KV head with channel-axis keys (in `keys`). Values either as f32 rows `v`
 * (nSlots, headDim), or `values`: rows in a token-axis codec, those with inResid[j] = 1 as f32
 * rows in resid (KIVI's value window, src/cache/value-residual.ts).
 */
export interface ChannelAttendArgs extends Omit<AttendArgs, "kCodec" | "vCodec" | "k" | "v"> {
  keys: ChannelKeyRows;
  opts: ChannelQuantOptions;
  v?: Float32Array; // (nSlots, headDim)
  values?: { codec: Codec; rows: EncodedRows; inResid: Uint8Array; resid: Float32Array };
}

export interface Executor {
  readonly name: ExecutorName;
  /** Count of ops this executor ran through `ref` because it lacks them, by op name. */
  readonly fallbacks: Map<string, number>;

  allocF32(n: number): Float32Array;
  allocU8(n: number): Uint8Array;
  allocU16(n: number): Uint16Array;
  allocI32(n: number): Int32Array;
  /** Return memory of an array from alloc*. No-op for arrays the executor did not allocate. */
  free(arr: ArrayBufferView): void;

  /** Encode src (nRows, headDim) into dst rows [dstRow, dstRow + nRows). */
  encodeRows(
    codec: Codec,
    src: Float32Array,
    nRows: number,
    headDim: number,
    dst: EncodedRows,
    dstRow: number,
  ): EncodeStats;
  /** Decode rows [srcRow, srcRow + nRows) into dst (nRows, headDim). */
  decodeRows(
    codec: Codec,
    src: EncodedRows,
    srcRow: number,
    nRows: number,
    headDim: number,
    dst: Float32Array,
  ): void;
  /** Scaled-dot-product attention over encoded rows (see AttendArgs). */
  attend(args: AttendArgs): void;

  /**
   * Channel-axis quantization of one group (quantizeChannelGroup in src/quant/channel.ts, bit
   * for bit).
   * src: (nTok, headDim); codeOffsets: (nTok) byte offset of each token's code row in codes;
   * scales/zeros written at [sOff, sOff + headDim).
   */
  channelQuantize(
    src: Float32Array,
    nTok: number,
    headDim: number,
    opts: ChannelQuantOptions,
    codes: Uint8Array,
    codeOffsets: Int32Array,
    scales: Uint16Array,
    zeros: Uint16Array,
    sOff: number,
  ): EncodeStats;
  /**
   * Decode slots [first, first + n) of channel-axis keys into dst (n, headDim), residual slots
   * copied (dequantizeChannelRow bit for bit).
   */
  channelDecode(
    rows: ChannelKeyRows,
    headDim: number,
    opts: ChannelQuantOptions,
    first: number,
    n: number,
    dst: Float32Array,
  ): void;

  /**
   * Attention straight from channel-axis keys (no f32 copy of the keys on wasm). Equals attend
   * over the keys decoded by channelDecode. Returns false (and does nothing) when `values` is in
   * a codec it does not read: call again with `v`.
   */
  channelAttend(a: ChannelAttendArgs): boolean;

  /**
   * out (n, dOut) = x (n, dIn) @ w^T, w: (dOut, dIn) row-major (PyTorch Linear layout); optional
   * bias (dOut). w is f32 or 16-bit (f16/bf16, src/kernels/weights.ts), widened exactly inside
   * the op: the result equals the f32 matmul over the widened matrix.
   */
  matmul(
    out: Float32Array,
    x: Float32Array,
    w: Matrix,
    n: number,
    dIn: number,
    dOut: number,
    bias?: Float32Array,
  ): void;
  /** out (n, dim) = x / rms(x) * w, per row; w: (dim). */
  rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, n: number, dim: number, eps: number): void;
  /**
   * In-place rotary embedding, rotate-half (GPT-NeoX/HF) pairing: element i pairs with i + headDim/2.
   * x: (n, nHeads, headDim); positions: (n); invFreq: (headDim/2) per-pair frequencies.
   */
  rope(
    x: Float32Array,
    positions: Int32Array,
    n: number,
    nHeads: number,
    headDim: number,
    invFreq: Float32Array,
  ): void;
  /** out (n) = silu(gate) * up, elementwise. */
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;

  /**
   * out[r] = -log softmax(logits row r)[targets[r]] in double precision, as ref.ts nllOf
   * computes it, for rows r < nRows of logits (nRows, vocab).
   */
  nll(out: Float64Array, logits: Float32Array, targets: Int32Array, nRows: number, vocab: number): void;

  /** x (n) += y (n), f32 (the residual add). */
  addInPlace(x: Float32Array, y: Float32Array, n: number): void;
  /**
   * out (b, a, d) = x (a, b, d), e.g. (n, nHeads, headDim) to (nHeads, n, headDim).
   */
  swapAxes01(out: Float32Array, x: Float32Array, a: number, b: number, d: number): void;
  /**
   * Randomized Hadamard rotation of rows x (nRows, n) in place (src/quant/hadamard.ts
   * hadamardRows: signs (n) ±1, power-of-two blocks; `inverse` rotates back), bit for bit.
   */
  hadamard(x: Float32Array, nRows: number, n: number, signs: Float32Array, inverse: boolean): void;

  /**
   * Optional specialisation: a cache kept in this executor's own memory (webgpu: GPU buffers,
   * encode/attend/evict on the device). Returns null for a spec it does not hold, and createCache
   * builds the standard cache over this executor's ops instead. createCache and loadModel call
   * these hooks and never name an executor.
   */
  createCache?(
    spec: ResolvedCacheSpec,
    shape: KVShape,
    parts: { kCodec: Codec; vCodec: Codec; policy: RetentionPolicy; seed?: number },
  ): KVCache | null;
  /** Optional specialisation: the model moved onto this executor's device (webgpu: the GPU forward). */
  prepareModel?(model: LanguageModel): Promise<LanguageModel>;

  /** Release everything (worker threads, device). */
  dispose(): void;
}

/** The ops of the list (what withFallbacks fills): everything but memory, hooks and dispose. */
export const OP_NAMES = [
  "encodeRows",
  "decodeRows",
  "attend",
  "channelQuantize",
  "channelDecode",
  "channelAttend",
  "matmul",
  "rmsnorm",
  "rope",
  "swiglu",
  "nll",
  "addInPlace",
  "swapAxes01",
  "hadamard",
] as const satisfies readonly (keyof Executor)[];
export type OpName = (typeof OP_NAMES)[number];
export type Ops = Pick<Executor, OpName>;

/**
 * The executor a backend makes with the ops it has (`backend` may lack any op of OP_NAMES):
 * each missing op runs `ref`'s and counts one fallback per call under the op's name. Returns
 * `backend` itself, completed, so its own fields and methods stay as they are.
 */
export function withFallbacks<B extends Omit<Executor, OpName> & Partial<Ops>>(
  backend: B,
  ref: Ops,
): B & Ops {
  const exec = backend as B & Ops;
  const filled = exec as unknown as Record<OpName, (...a: unknown[]) => unknown>;
  for (const op of OP_NAMES) {
    if (typeof backend[op] === "function") continue;
    const fallback = ref[op] as (...a: unknown[]) => unknown;
    filled[op] = (...a: unknown[]) => {
      countFallback(exec, op);
      return fallback.apply(ref, a);
    };
  }
  return exec;
}

/** Count one fallback of `op` to the reference implementation. */
export function countFallback(exec: Pick<Executor, "fallbacks">, op: string): void {
  exec.fallbacks.set(op, (exec.fallbacks.get(op) ?? 0) + 1);
}

/**
 * Every size, count and row index an op or allocation takes must be a safe non-negative
 * integer: NaN, fractions, negatives and Infinity throw a ShapeError naming the op and the
 * argument, on every executor alike, before anything is allocated or written.
 */
export function checkSize(op: string, what: string, x: number): void {
  if (!Number.isSafeInteger(x) || x < 0)
    throw new ShapeError(`${op}: ${what} must be a non-negative integer, got ${String(x)}`);
}

/** checkSize over an op's named size arguments. */
export function sizes(op: string, args: Record<string, number>): void {
  for (const what in args) checkSize(op, what, args[what]!);
}

/** An op argument array must hold at least n elements (ShapeError naming the op and argument). */
export function need(op: string, arr: ArrayLike<number>, n: number, what: string): void {
  if (arr.length < n) throw new ShapeError(`${op}: ${what} has ${arr.length} elements, the op needs ${n}`);
}
