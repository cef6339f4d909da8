/**
 * Opt-in diagnostic: attention mass kept. For each query row, the share of the full, exact f32
 * softmax mass over every token ever appended (at absolute positions) that falls on the tokens
 * the cache retains: the KV-cache analogue of a hit rate (1 for `full`). Off by default: it keeps
 * a shadow f32 copy of every key (not counted in memory(): instrumentation, not cache; counted in
 * stats().physical as diagnostics) and runs one more full score pass per attend.
 */
import type { Executor } from "../kernels/executor.ts";
import { f32 } from "../quant/f32.ts";
import { HeadStore, NO_ROWS } from "./head-store.ts";

export class AttentionMassMeter {
  private readonly shadow: HeadStore[]; // per head: f32 keys in K rows, positions; append only
  sum = 0;
  min = 1;
  rows = 0;

  constructor(
    exec: Executor,
    nHeadsTotal: number,
    private readonly headDim: number,
  ) {
    this.shadow = Array.from(
      { length: nHeadsTotal },
      () => new HeadStore(exec, f32.layout(headDim), NO_ROWS, 64),
    );
  }

  /** Bytes allocated for the shadow keys and their positions (and a 4-byte count per head). */
  physicalBytes(): number {
    return this.shadow.reduce((n, s) => n + 4 + s.physicalBytes(), 0);
  }

  /** k: (n, headDim) post-RoPE keys as the model produced them; positions: (n). */
  append(head: number, k: Float32Array, positions: Int32Array, n: number): void {
    const s = this.shadow[head]!;
    s.reserve(n);
    this.keys(s).set(k.subarray(0, n * this.headDim), s.nSlots * this.headDim);
    s.positions.set(positions.subarray(0, n), s.nSlots);
    s.nSlots += n;
  }

  private keys(s: HeadStore): Float32Array {
    return new Float32Array(s.k.payload.buffer, s.k.payload.byteOffset, s.capacity * this.headDim);
  }

  /** q: (nRows, headDim) as given to attend; retained: positions the cache holds now. */
  measure(
    head: number,
    q: Float32Array,
    qPos: Int32Array,
    nRows: number,
    scale: number,
    retained: Set<number>,
  ) {
    const d = this.headDim;
    const s = this.shadow[head]!;
    const n = s.nSlots;
    const keys = this.keys(s);
    const pos = s.positions;
    const scores = new Float64Array(n);
    for (let r = 0; r < nRows; r++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < n; j++) {
        if (pos[j]! > qPos[r]!) {
          scores[j] = Number.NEGATIVE_INFINITY;
          continue;
        }
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[r * d + i]! * keys[j * d + i]!;
        scores[j] = dot * scale;
        if (scores[j]! > max) max = scores[j]!;
      }
      if (max === Number.NEGATIVE_INFINITY) continue;
      let total = 0;
      let kept = 0;
      for (let j = 0; j < n; j++) {
        if (scores[j] === Number.NEGATIVE_INFINITY) continue;
        const e = Math.exp(scores[j]! - max);
        total += e;
        if (retained.has(pos[j]!)) kept += e;
      }
      const share = kept / total;
      this.sum += share;
      if (share < this.min) this.min = share;
      this.rows++;
    }
  }

  summary() {
    return { mean: this.rows ? this.sum / this.rows : 1, min: this.rows ? this.min : 1, rows: this.rows };
  }

  reset(): void {
    for (const s of this.shadow) s.nSlots = 0;
    this.sum = 0;
    this.min = 1;
    this.rows = 0;
  }

  dispose(): void {
    for (const s of this.shadow) s.dispose();
  }
}
