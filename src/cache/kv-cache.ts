/**
 * The standard KV cache: per (layer, KV head) a HeadStore of encoded rows, a codec for keys
 * and one for values, a retention policy, and an executor that runs the kernels.
 */
import { ShapeError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import type { Codec, RowLayout } from "../quant/types.ts";
import { rowBytes } from "../quant/types.ts";
import { HeadStore } from "./head-store.ts";
import type { HeadView, RetentionPolicy } from "./policy.ts";
import type { CacheMemory, CacheStats, KVCache, KVShape, ResolvedCacheSpec } from "./types.ts";

export class StandardKVCache implements KVCache {
  private readonly heads: HeadStore[]; // (nLayers * nKvHeads)
  private readonly kLayout: RowLayout;
  private readonly vLayout: RowLayout;
  private readonly seen: Int32Array; // (nLayers * nKvHeads) tokens appended since reset
  private readonly counters = { appended: 0, evicted: 0, nonFinite: 0, saturated: 0, peakBytes: 0 };
  // Scratch reused across calls (no allocation per token once warm).
  private qGroup = new Float32Array(0);
  private qPosGroup = new Int32Array(0);
  private outGroup = new Float32Array(0);
  private probs = new Float32Array(0);

  constructor(
    readonly spec: ResolvedCacheSpec,
    readonly shape: KVShape,
    private readonly kCodec: Codec,
    private readonly vCodec: Codec,
    private readonly policy: RetentionPolicy,
    private readonly exec: Executor,
  ) {
    if (shape.nHeads % shape.nKvHeads !== 0)
      throw new ShapeError(`nHeads (${shape.nHeads}) must be a multiple of nKvHeads (${shape.nKvHeads})`);
    this.kLayout = kCodec.layout(shape.headDim);
    this.vLayout = vCodec.layout(shape.headDim);
    const initial = Math.min(shape.maxTokens, 256);
    this.heads = [];
    for (let i = 0; i < shape.nLayers * shape.nKvHeads; i++)
      this.heads.push(new HeadStore(exec, this.kLayout, this.vLayout, initial));
    this.seen = new Int32Array(shape.nLayers * shape.nKvHeads);
  }

  private view(layer: number, kvHead: number): HeadView {
    const store = this.heads[layer * this.shape.nKvHeads + kvHead]!;
    const seen = this.seen[layer * this.shape.nKvHeads + kvHead]!;
    const { headDim } = this.shape;
    return {
      layer,
      kvHead,
      nSlots: store.nSlots,
      positions: store.positions,
      seen,
      decodeKeys: (dst) => this.exec.decodeRows(this.kCodec, store.k, 0, store.nSlots, headDim, dst),
    };
  }

  append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): void {
    const { nKvHeads, headDim, nLayers } = this.shape;
    const nNew = positions.length;
    if (layer < 0 || layer >= nLayers) throw new ShapeError(`layer ${layer} out of range [0, ${nLayers})`);
    if (k.length !== nKvHeads * nNew * headDim || v.length !== k.length)
      throw new ShapeError(
        `append: k/v must be (nKvHeads=${nKvHeads}, nNew=${nNew}, headDim=${headDim}) = ${nKvHeads * nNew * headDim} floats, got ${k.length}/${v.length}`,
      );
    for (let h = 0; h < nKvHeads; h++) {
      const store = this.heads[layer * nKvHeads + h]!;
      store.reserve(nNew);
      const first = store.nSlots;
      const off = h * nNew * headDim;
      const ks = this.exec.encodeRows(
        this.kCodec,
        k.subarray(off, off + nNew * headDim),
        nNew,
        headDim,
        store.k,
        first,
      );
      const vs = this.exec.encodeRows(
        this.vCodec,
        v.subarray(off, off + nNew * headDim),
        nNew,
        headDim,
        store.v,
        first,
      );
      this.counters.nonFinite += ks.nonFinite + vs.nonFinite;
      this.counters.saturated += ks.saturated + vs.saturated;
      store.positions.set(positions, first);
      store.nSlots += nNew;
      this.seen[layer * nKvHeads + h]! += nNew;
      this.policy.onAppend(this.view(layer, h), first, nNew);
    }
    this.counters.appended += nNew;
    this.trackPeak();
  }

  attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): void {
    const { nHeads, nKvHeads, headDim } = this.shape;
    const nQ = qPositions.length;
    if (q.length !== nHeads * nQ * headDim || out.length !== q.length)
      throw new ShapeError(
        `attend: q/out must be (nHeads=${nHeads}, nQ=${nQ}, headDim=${headDim}) = ${nHeads * nQ * headDim} floats, got ${q.length}/${out.length}`,
      );
    const group = nHeads / nKvHeads;
    const nRows = group * nQ;
    if (this.qGroup.length < nRows * headDim) {
      this.qGroup = new Float32Array(nRows * headDim);
      this.outGroup = new Float32Array(nRows * headDim);
      this.qPosGroup = new Int32Array(nRows);
    }
    // Query heads h = kvHead * group + g share KV head kvHead; their rows are contiguous in q.
    for (let g = 0; g < group; g++) this.qPosGroup.set(qPositions, g * nQ);
    const scale = 1 / Math.sqrt(headDim);
    for (let kvh = 0; kvh < nKvHeads; kvh++) {
      const store = this.heads[layer * nKvHeads + kvh]!;
      const qOff = kvh * group * nQ * headDim;
      const wantsProbs = this.policy.wantsAttention;
      if (wantsProbs && this.probs.length < nRows * store.nSlots)
        this.probs = new Float32Array(nRows * store.nSlots);
      const outRows = out.subarray(qOff, qOff + nRows * headDim);
      this.exec.attend({
        kCodec: this.kCodec,
        vCodec: this.vCodec,
        headDim,
        q: q.subarray(qOff, qOff + nRows * headDim),
        qPos: this.qPosGroup.subarray(0, nRows),
        nRows,
        k: store.k,
        v: store.v,
        slotPos: store.positions,
        nSlots: store.nSlots,
        scale,
        out: outRows,
        ...(wantsProbs ? { probs: this.probs.subarray(0, nRows * store.nSlots) } : {}),
      });
      const view = this.view(layer, kvh);
      if (wantsProbs) this.policy.onAttention(view, this.probs, nRows, this.qPosGroup.subarray(0, nRows));
      this.evict(store, view);
    }
  }

  private evict(store: HeadStore, view: HeadView): void {
    const drop = this.policy.evictions(view);
    if (drop.length === 0) return;
    drop.sort((a, b) => b - a);
    for (const slot of drop) {
      const last = store.nSlots - 1;
      if (slot !== last) {
        store.moveSlot(last, slot);
        this.policy.onMove(view.layer, view.kvHead, last, slot);
      }
      store.nSlots--;
    }
    this.counters.evicted += drop.length;
  }

  memory(): CacheMemory {
    const { headDim } = this.shape;
    let slots = 0;
    for (const h of this.heads) slots += h.nSlots;
    const payload = slots * (this.kLayout.payloadBytes + this.vLayout.payloadBytes);
    const scales = slots * 2 * (this.kLayout.scalesPerRow + this.vLayout.scalesPerRow);
    const zeros = slots * 2 * (this.kLayout.zerosPerRow + this.vLayout.zerosPerRow);
    const indices = this.policy.positionsImplicit ? 0 : slots * 4;
    const policyState = this.policy.stateBytes();
    const total = payload + scales + zeros + indices + policyState;
    const elements = slots * headDim * 2;
    return {
      payload,
      scales,
      zeros,
      residual: 0,
      indices,
      policyState,
      total,
      elements,
      bitsPerElement: elements ? (total * 8) / elements : 0,
      tokenSlots: slots,
    };
  }

  /** Bytes per retained token per KV head (K + V rows), for quick estimates. */
  bytesPerTokenSlot(): number {
    return rowBytes(this.kLayout) + rowBytes(this.vLayout);
  }

  private trackPeak(): void {
    const t = this.memory().total;
    if (t > this.counters.peakBytes) this.counters.peakBytes = t;
  }

  stats(): CacheStats {
    return { ...this.counters, executor: this.exec.name };
  }

  reset(): void {
    for (const h of this.heads) h.nSlots = 0;
    this.seen.fill(0);
    this.policy.reset();
    this.counters.peakBytes = 0;
  }

  dispose(): void {
    for (const h of this.heads) h.dispose();
  }
}
