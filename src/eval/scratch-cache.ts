/**
 * A scratch KV cache for the extra forwards a protocol runs beside the measured cache (KVzip's
 * scoring forward, src/eval/scoring-pass.ts; the head profile of DuoAttention,
 * src/eval/head-profile.ts): it keeps every token in f32, attends in plain TypeScript (float64
 * sums), can be cut back to its first n tokens (so the tokens of a scoring forward are never
 * kept), and shows each attend's softmax probabilities to an observer. It is never what a run
 * measures: its bytes are reported apart (`bytes()`), not as the run's KV memory.
 */
import type { ModelWindow } from "../cache/model-window.ts";
import { softcapOf } from "../cache/softcap.ts";
import { resolveCacheSpec } from "../cache/spec.ts";
import type { CacheMemory, CacheStats, KVCache, KVShape, ResolvedCacheSpec } from "../cache/types.ts";
import { ShapeError } from "../errors.ts";

/**
 * Sees one KV head's attention: probs (nRows, n) over the slots 0..n-1 (slot j holds position
 * positions[j], ascending), rows = the GQA group's query heads in order, each over the nQ
 * queries at qPos (nRows = group x nQ).
 */
export type AttentionObserver = (
  layer: number,
  kvHead: number,
  probs: Float64Array,
  nRows: number,
  n: number,
  positions: Int32Array,
  qPos: Int32Array,
) => void;

export class ScratchCache implements KVCache {
  readonly spec: ResolvedCacheSpec = resolveCacheSpec({
    name: "scratch",
    codec: "f32",
    policy: { type: "full" },
  });
  readonly shape: KVShape;
  /** Called after every attend with each KV head's probabilities (null: none). */
  observer: AttentionObserver | null = null;
  private readonly keys: Float32Array[]; // per layer: (nKvHeads, maxTokens, headDim)
  private readonly vals: Float32Array[];
  private readonly pos: Int32Array; // (maxTokens) positions of the tokens held, ascending
  private readonly count: Int32Array; // (nLayers) tokens held per layer
  private peak = 0;
  private probs = new Float64Array(0);

  constructor(shape: KVShape) {
    this.shape = shape;
    const per = shape.nKvHeads * shape.maxTokens * shape.headDim;
    this.keys = Array.from({ length: shape.nLayers }, () => new Float32Array(per));
    this.vals = Array.from({ length: shape.nLayers }, () => new Float32Array(per));
    this.pos = new Int32Array(shape.maxTokens);
    this.count = new Int32Array(shape.nLayers);
  }

  /** Tokens held (by the last layer appended to; every layer holds the same after a forward). */
  get length(): number {
    return this.count[this.shape.nLayers - 1]!;
  }

  /** Forget every token past the first n (the scoring tokens after a pass). */
  truncate(n: number): void {
    for (let l = 0; l < this.count.length; l++) this.count[l] = Math.min(this.count[l]!, n);
  }

  append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): void {
    const { nKvHeads, headDim: d, maxTokens } = this.shape;
    const n = positions.length;
    const first = this.count[layer]!;
    if (first + n > maxTokens)
      throw new ShapeError(`scratch cache: ${first} + ${n} tokens exceed its maxTokens (${maxTokens})`);
    if (n > 0 && first > 0 && positions[0]! <= this.pos[first - 1]!)
      throw new ShapeError(`scratch cache: position ${positions[0]} is not after ${this.pos[first - 1]}`);
    for (let h = 0; h < nKvHeads; h++) {
      const dst = h * maxTokens * d + first * d;
      this.keys[layer]!.set(k.subarray(h * n * d, (h + 1) * n * d), dst);
      this.vals[layer]!.set(v.subarray(h * n * d, (h + 1) * n * d), dst);
    }
    this.pos.set(positions, first);
    this.count[layer] = first + n;
    this.peak = Math.max(this.peak, this.count[layer]!);
  }

  attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): void {
    const { nHeads, nKvHeads, headDim: d, maxTokens } = this.shape;
    const nQ = qPositions.length;
    const group = nHeads / nKvHeads;
    const n = this.count[layer]!;
    const scale = 1 / Math.sqrt(d);
    const cap = softcapOf(this.shape); // Gemma 2's attention soft-cap (src/cache/softcap.ts)
    // The model's sliding window (src/cache/model-window.ts): query p sees key k iff p - k < w.
    const w = (this.shape as KVShape & ModelWindow).window?.[layer] || Number.POSITIVE_INFINITY;
    const nRows = group * nQ;
    if (this.probs.length < nRows * n) this.probs = new Float64Array(nRows * n);
    const pos = this.pos.subarray(0, n);
    for (let g = 0; g < nKvHeads; g++) {
      const K = this.keys[layer]!.subarray(g * maxTokens * d);
      const V = this.vals[layer]!.subarray(g * maxTokens * d);
      const probs = this.probs.subarray(0, nRows * n);
      for (let r = 0; r < nRows; r++) {
        const h = g * group + Math.floor(r / nQ);
        const i = r % nQ;
        const qRow = q.subarray((h * nQ + i) * d, (h * nQ + i + 1) * d);
        const p = probs.subarray(r * n, (r + 1) * n);
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < n; j++) {
          if (pos[j]! > qPositions[i]! || qPositions[i]! - pos[j]! >= w) {
            p[j] = Number.NEGATIVE_INFINITY; // causal, and within the model's window
            continue;
          }
          let s = 0;
          for (let c = 0; c < d; c++) s += qRow[c]! * K[j * d + c]!;
          p[j] = cap === undefined ? s * scale : cap * Math.tanh((s * scale) / cap);
          if (p[j]! > max) max = p[j]!;
        }
        let sum = 0;
        for (let j = 0; j < n; j++) {
          p[j] = p[j] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(p[j]! - max);
          sum += p[j]!;
        }
        const o = out.subarray((h * nQ + i) * d, (h * nQ + i + 1) * d);
        o.fill(0);
        for (let j = 0; j < n; j++) {
          p[j]! /= sum;
          const w = p[j]!;
          if (w === 0) continue;
          for (let c = 0; c < d; c++) o[c]! += w * V[j * d + c]!;
        }
      }
      this.observer?.(layer, g, probs, nRows, n, pos, qPositions);
    }
  }

  /** f32 K and V of the most tokens held at once (what the scratch copy costs in memory). */
  bytes(): number {
    return this.peak * this.shape.nLayers * this.shape.nKvHeads * this.shape.headDim * 2 * 4;
  }

  memory(): CacheMemory {
    const elements = this.length * this.shape.nLayers * this.shape.nKvHeads * this.shape.headDim * 2;
    const total = elements * 4;
    return {
      payload: total,
      scales: 0,
      zeros: 0,
      residual: 0,
      indices: 0,
      policyState: 0,
      total,
      elements,
      bitsPerElement: elements ? 32 : 0,
      tokenSlots: this.length * this.shape.nLayers * this.shape.nKvHeads,
    };
  }

  reset(): void {
    this.count.fill(0);
  }

  dispose(): void {}

  stats(): CacheStats {
    return { appended: 0, evicted: 0, nonFinite: 0, saturated: 0, peakBytes: this.bytes(), executor: "ref" };
  }
}
