/**
 * The standard KV cache: per (layer, KV head) a HeadStore of encoded rows, a codec for keys
 * and one for values, a retention policy, and an executor that runs the kernels.
 *
 * Storage variants (all composable with every policy, except as noted):
 * - token-axis codecs: rows are attended in their encoded form by the executor (fused path);
 * - channel-axis keys (spec.keys.axis "channel", e.g. presets kivi2/kivi4; channel-keys.ts):
 *   keys quantized per channel over groups of tokens, newest `keys.residual` in f32; values
 *   with `values.residual` keep their newest rows in f32 too (value-residual.ts);
 * - Hadamard rotation (spec.keys.rotation / spec.values.rotation, presets *-hadamard), with any
 *   codec, group and axis: keys rotated before encoding and queries alike at attention time
 *   (scores unchanged); values rotated before encoding and the attention output rotated back,
 *   since sum_j p_j R v_j = R sum_j p_j v_j (src/quant/hadamard.ts);
 * - pre-RoPE keys (spec.keys.preRope, or policy sinks with positions: cache): keys arrive post-RoPE as the KVCache
 *   contract says, the cache un-rotates them (RoPE at -position) before encoding, and rotates
 *   them again at attention time at their rank among retained tokens, queries likewise;
 * - tiers (policy tiered): older tokens re-encoded into a cheaper codec in a second store.
 * The last three kinds of storage (channel keys, pre-RoPE, tiers) attend through a decoded
 * path: retained keys (and, for tiers, values) are decoded into an f32 scratch of nSlots x
 * headDim and the executor attends over that. The scratch is transient working memory, like
 * the score rows of any attention, and is not counted in memory() (the packed, logical bytes);
 * stats().physical counts it with every store at its allocated capacity (issue 16 item 6).
 */
import { ConfigError, ShapeError } from "../errors.ts";
import { countFallback, type Executor } from "../kernels/executor.ts";
import { f32 as f32Codec } from "../quant/f32.ts";
import { type HadamardRotation, sideRotation } from "../quant/hadamard.ts";
import { q8Blocks, quantizeQ8 } from "../quant/q8-query.ts";
import { makeCodec } from "../quant/registry.ts";
import type { Codec, EncodedRows, RowLayout } from "../quant/types.ts";
import { rowBytes } from "../quant/types.ts";
import { addRows, bytesOf, CacheAccount, cacheMemory, emptyParts, physicalMemory } from "./accounting.ts";
import { AttentionMassMeter } from "./attention-mass.ts";
import { type ChannelKeySettings, ChannelKeys } from "./channel-keys.ts";
import { checkAppend, checkAttend, checkLayer, checkLive, checkShape } from "./contract.ts";
import { HeadStore } from "./head-store.ts";
import { shareOf } from "./policies/options.ts";
import { type HeadView, type RetentionPolicy, resolveCount } from "./policy.ts";
import type {
  CacheMemory,
  CacheStats,
  KVCache,
  KVShape,
  PhysicalMemory,
  ResolvedCacheSpec,
} from "./types.ts";
import { ValueResidual } from "./value-residual.ts";

export interface StandardKVCacheOptions {
  seed?: number;
  /** Measure attention mass kept (see attention-mass.ts for its cost). */
  attentionMass?: boolean;
}

const EMPTY_U16 = new Uint16Array(0);
const NO_ROWS: RowLayout = { payloadBytes: 0, nGroups: 0, groupSize: 1, scalesPerRow: 0, zerosPerRow: 0 };

/** f32 rows (n, headDim) seen as EncodedRows of the f32 codec. */
function f32Rows(x: Float32Array, nFloats: number): EncodedRows {
  return {
    payload: new Uint8Array(x.buffer, x.byteOffset, nFloats * 4),
    scales: EMPTY_U16,
    zeros: EMPTY_U16,
  };
}

export class StandardKVCache implements KVCache {
  private readonly heads: HeadStore[]; // (nLayers * nKvHeads)
  private readonly chan: ChannelKeys[] | null; // (nLayers * nKvHeads) channel-axis key storage
  private readonly cold: HeadStore[] | null; // (nLayers * nKvHeads) older tier of policy tiered
  private readonly vres: ValueResidual[] | null; // (nLayers * nKvHeads) KIVI's f32 value window
  private readonly kLayout: RowLayout;
  private readonly vLayout: RowLayout;
  private readonly account: CacheAccount; // counters, eviction ages, per-head seen/newest
  private demoted = 0;
  private readonly rotation: HadamardRotation | null; // keys (and queries)
  private readonly vRotation: HadamardRotation | null; // values (and the attention output, inverted)
  private readonly invFreq: Float32Array | null; // (headDim / 2) when keys are stored pre-RoPE
  private readonly coldK: Codec | null;
  private readonly coldV: Codec | null;
  private readonly meter: AttentionMassMeter | null;
  /** Keys are stored before RoPE (spec.keys.preRope, or policy sinks with positions: cache). */
  readonly storesPreRopeKeys: boolean;
  /** RoPE positions are ranks among retained tokens (StreamingLLM) rather than absolute. */
  private readonly cachePositions: boolean;
  // Scratch reused across calls (no allocation per token once warm).
  // Positions of the GQA group's query rows (nRows), in executor memory so the kernels read
  // them in place instead of copying them in on every attend of every KV head.
  private qPosGroup: Int32Array = new Int32Array(0);
  private qRot = new Float32Array(0);
  private probs = new Float32Array(0);
  private kTmp = new Float32Array(0);
  private vTmp = new Float32Array(0);
  private kScr: Float32Array = new Float32Array(0);
  private vScr: Float32Array = new Float32Array(0);
  private posScr: Int32Array = new Int32Array(0);
  private ropePos = new Int32Array(0);
  // query: q8 (spec.query): the dequantized rows, their int8 codes and block scales (q8-query.ts)
  private q8Hat: Float32Array = new Float32Array(0);
  private q8Codes: Int8Array = new Int8Array(0);
  private q8Scales: Float32Array = new Float32Array(0);
  private disposed = false;

  constructor(
    readonly spec: ResolvedCacheSpec,
    readonly shape: KVShape,
    private readonly kCodec: Codec,
    private readonly vCodec: Codec,
    private readonly policy: RetentionPolicy,
    private readonly exec: Executor,
    options: StandardKVCacheOptions = {},
  ) {
    checkShape(shape); // contract.ts: positive integers, GQA divisibility
    const { headDim } = shape;
    const tiers = policy.tiers;
    const { keys, values } = spec;
    // resolveCacheSpec has validated the combination (integer codec, group >= 1, no tiers).
    const chanSettings: ChannelKeySettings | null =
      keys.axis === "channel"
        ? {
            bits: kCodec.options.type === "int2" ? 2 : kCodec.options.type === "int4" ? 4 : 8,
            symmetric: keys.symmetric,
            group: keys.group as number,
            residual: keys.residual,
          }
        : null;
    this.rotation = keys.rotation === "hadamard" ? sideRotation("keys", headDim, options.seed ?? 0) : null;
    this.vRotation =
      values.rotation === "hadamard" ? sideRotation("values", headDim, options.seed ?? 0) : null;
    this.cachePositions = policy.cachePositions === true;
    this.storesPreRopeKeys = this.cachePositions || keys.preRope;
    if (this.storesPreRopeKeys) {
      if (!shape.rope || shape.rope.invFreq.length !== headDim / 2)
        throw new ConfigError(
          this.cachePositions ? "cache.policy.positions" : "cache.keys.preRope",
          `${this.cachePositions ? "positions: cache" : `${spec.name}: preRope`} stores keys before RoPE and needs the model's RoPE frequencies: pass shape.rope = { invFreq } (headDim/2 = ${headDim / 2} floats) to createCache`,
        );
      this.invFreq = shape.rope.invFreq;
    } else this.invFreq = null;
    this.kLayout = chanSettings ? NO_ROWS : kCodec.layout(headDim);
    this.vLayout = vCodec.layout(headDim);
    this.coldK = tiers ? makeCodec(tiers.keys, "cache.policy.codec.keys") : null;
    this.coldV = tiers ? makeCodec(tiers.values, "cache.policy.codec.values") : null;
    const initial = Math.min(shape.maxTokens, 256);
    const nTotal = shape.nLayers * shape.nKvHeads;
    this.heads = [];
    for (let i = 0; i < nTotal; i++)
      this.heads.push(new HeadStore(exec, this.kLayout, this.vLayout, initial));
    this.chan = chanSettings
      ? this.heads.map((h) => new ChannelKeys(exec, headDim, chanSettings, h.capacity))
      : null;
    this.vres = values.residual
      ? this.heads.map((h) => new ValueResidual(exec, headDim, values.residual, h.capacity))
      : null;
    this.cold =
      this.coldK && this.coldV
        ? this.heads.map(
            () => new HeadStore(exec, this.coldK!.layout(headDim), this.coldV!.layout(headDim), initial),
          )
        : null;
    this.account = new CacheAccount(nTotal);
    this.meter = options.attentionMass ? new AttentionMassMeter(nTotal, headDim) : null;
  }

  /** Whether attention runs over decoded f32 keys rather than the fused encoded path. */
  private get decodedPath(): boolean {
    return this.chan !== null || this.storesPreRopeKeys || this.cold !== null || this.vres !== null;
  }

  private decodeKeys(idx: number, first: number, n: number, dst: Float32Array): void {
    if (this.chan) this.chan[idx]!.decode(first, n, dst);
    else this.exec.decodeRows(this.kCodec, this.heads[idx]!.k, first, n, this.shape.headDim, dst);
  }

  private view(layer: number, kvHead: number): HeadView {
    const idx = layer * this.shape.nKvHeads + kvHead;
    const store = this.heads[idx]!;
    return {
      layer,
      kvHead,
      nSlots: store.nSlots,
      positions: store.positions,
      seen: this.account.seen[idx]!,
      decodeKeys: (dst, first = 0, n = store.nSlots) => this.decodeKeys(idx, first, n, dst),
    };
  }

  private reserve(idx: number, extra: number): void {
    const store = this.heads[idx]!;
    const before = store.capacity;
    store.reserve(extra);
    if (store.capacity === before) return;
    if (this.chan) this.chan[idx]!.grow(store.capacity, store.nSlots);
    if (this.vres) this.vres[idx]!.grow(store.capacity, store.nSlots);
  }

  append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): void {
    checkLive("append", this.disposed);
    const { nKvHeads, headDim: d } = this.shape;
    checkLayer("append", layer, this.shape.nLayers);
    // Every KV head of a layer sees the same appends: head 0 stands for the layer.
    checkAppend(
      this.shape,
      layer,
      k,
      v,
      positions,
      this.account.newest[layer * nKvHeads]!,
      this.account.seen[layer * nKvHeads]!,
    );
    const nNew = positions.length;
    const transform = this.storesPreRopeKeys || this.rotation !== null;
    if (transform && this.kTmp.length < nNew * d) this.kTmp = new Float32Array(nNew * d);
    if (this.vRotation && this.vTmp.length < nNew * d) this.vTmp = new Float32Array(nNew * d);
    if (this.storesPreRopeKeys && this.ropePos.length < nNew) this.ropePos = new Int32Array(nNew);
    let maxPos = Number.NEGATIVE_INFINITY;
    for (const p of positions) if (p > maxPos) maxPos = p;
    for (let h = 0; h < nKvHeads; h++) {
      const idx = layer * nKvHeads + h;
      const store = this.heads[idx]!;
      this.reserve(idx, nNew);
      const first = store.nSlots;
      const off = h * nNew * d;
      let kIn = k.subarray(off, off + nNew * d);
      this.meter?.append(idx, kIn, positions, nNew);
      if (transform) {
        const t = this.kTmp.subarray(0, nNew * d);
        t.set(kIn);
        if (this.storesPreRopeKeys) {
          // Undo the model's RoPE: rotating by -p inverts rotating by p.
          for (let i = 0; i < nNew; i++) this.ropePos[i] = -positions[i]!;
          this.exec.rope(t, this.ropePos, nNew, 1, d, this.invFreq!);
        }
        if (this.rotation) this.rotate(this.rotation, t, nNew, false);
        kIn = t;
      }
      if (this.chan) {
        const nf = this.countNonFinite(kIn);
        this.account.counters.nonFinite += nf;
        this.chan[idx]!.write(kIn, first, nNew);
      } else {
        const ks = this.exec.encodeRows(this.kCodec, kIn, nNew, d, store.k, first);
        this.account.counters.nonFinite += ks.nonFinite;
        this.account.counters.saturated += ks.saturated;
      }
      let vIn = v.subarray(off, off + nNew * d);
      if (this.vRotation) {
        const t = this.vTmp.subarray(0, nNew * d);
        t.set(vIn);
        this.rotate(this.vRotation, t, nNew, false);
        vIn = t;
      }
      if (this.vres) {
        this.account.counters.nonFinite += this.countNonFinite(vIn);
        this.vres[idx]!.write(vIn, first, nNew);
      } else {
        const vs = this.exec.encodeRows(this.vCodec, vIn, nNew, d, store.v, first);
        this.account.counters.nonFinite += vs.nonFinite;
        this.account.counters.saturated += vs.saturated;
      }
      store.positions.set(positions, first);
      store.nSlots += nNew;
      if (this.vres) this.account.counters.saturated += this.vres[idx]!.flush(store, this.vCodec).saturated;
      this.account.appended(idx, nNew, maxPos);
      if (this.chan) {
        this.account.counters.saturated += this.chan[idx]!.flush(store.positions, store.nSlots).saturated;
      }
      this.policy.onAppend(this.view(layer, h), first, nNew);
    }
    this.account.counters.appended += nNew;
    this.trackPeak();
  }

  /**
   * Hadamard rotation runs in TypeScript whatever the executor (no executor op for it yet),
   * so each call is counted as a fallback and results show it.
   */
  private rotate(rot: HadamardRotation, x: Float32Array, nRows: number, inverse: boolean): void {
    countFallback(this.exec, "hadamard");
    if (inverse) rot.invert(x, nRows);
    else rot.apply(x, nRows);
  }

  private countNonFinite(x: Float32Array): number {
    let n = 0;
    for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) n++;
    return n;
  }

  attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): void {
    checkLive("attend", this.disposed);
    checkAttend(this.shape, layer, q, qPositions, out);
    const { nHeads, nKvHeads, headDim: d } = this.shape;
    const nQ = qPositions.length;
    const group = nHeads / nKvHeads;
    const nRows = group * nQ;
    if (this.qPosGroup.length < nRows) {
      this.qRot = new Float32Array(nRows * d);
      this.exec.free(this.qPosGroup);
      this.qPosGroup = this.exec.allocI32(nRows);
    }
    // Query heads h = kvHead * group + g share KV head kvHead; their rows are contiguous in q.
    for (let g = 0; g < group; g++) this.qPosGroup.set(qPositions, g * nQ);
    const qPos = this.qPosGroup.subarray(0, nRows);
    const scale = 1 / Math.sqrt(d);
    for (let kvh = 0; kvh < nKvHeads; kvh++) {
      const idx = layer * nKvHeads + kvh;
      const store = this.heads[idx]!;
      const cold = this.cold ? this.cold[idx]! : null;
      const nTot = store.nSlots + (cold ? cold.nSlots : 0);
      const qOff = kvh * group * nQ * d;
      const qRows = q.subarray(qOff, qOff + nRows * d);
      if (this.meter) this.meter.measure(idx, qRows, qPos, nRows, scale, this.positionSet(store, cold));
      this.policy.onQueries?.(this.view(layer, kvh), qRows, nRows, qPos);
      const wantsProbs = this.policy.wantsAttention;
      if (wantsProbs && this.probs.length < nRows * nTot) this.probs = new Float32Array(nRows * nTot);
      const probs = wantsProbs ? { probs: this.probs.subarray(0, nRows * nTot) } : {};
      const outRows = out.subarray(qOff, qOff + nRows * d);
      if (this.chan && !this.storesPreRopeKeys && !this.rotation && !cold) {
        // Channel-axis keys attended in place (no f32 copy of the keys); values read as stored
        // when the executor can, else decoded to f32 first.
        const vr = this.vres ? this.vres[idx]! : null;
        const a = {
          keys: this.chan[idx]!.rows(),
          opts: this.chan[idx]!.settings,
          headDim: d,
          ...this.queryArgs(qRows, nRows),
          qPos,
          nRows,
          slotPos: store.positions,
          nSlots: store.nSlots,
          scale,
          out: outRows,
          ...probs,
        };
        const values = vr
          ? { codec: this.vCodec, rows: store.v, inResid: vr.inResid, resid: vr.resid }
          : null;
        if (!values || !this.exec.channelAttend({ ...a, values }))
          this.exec.channelAttend({ ...a, v: this.decodeValues(idx, store) });
      } else if (this.decodedPath) {
        const qUse = this.prepareDecoded(idx, store, cold, qRows, qPos, nRows);
        const values =
          cold || this.vres
            ? { vCodec: f32Codec, v: f32Rows(this.vScr, nTot * d) }
            : { vCodec: this.vCodec, v: store.v };
        this.exec.attend({
          kCodec: f32Codec,
          ...values,
          headDim: d,
          ...this.queryArgs(qUse, nRows),
          qPos,
          nRows,
          k: f32Rows(this.kScr, nTot * d),
          slotPos: this.posScr,
          nSlots: nTot,
          scale,
          out: outRows,
          ...probs,
        });
      } else {
        let qUse = qRows;
        if (this.rotation) {
          qUse = this.qRot.subarray(0, nRows * d);
          qUse.set(qRows);
          this.rotate(this.rotation, qUse, nRows, false);
        }
        this.exec.attend({
          kCodec: this.kCodec,
          vCodec: this.vCodec,
          headDim: d,
          ...this.queryArgs(qUse, nRows),
          qPos,
          nRows,
          k: store.k,
          v: store.v,
          slotPos: store.positions,
          nSlots: store.nSlots,
          scale,
          out: outRows,
          ...probs,
        });
      }
      // Rotated values: every path above produced R times the output; bring it back.
      if (this.vRotation) this.rotate(this.vRotation, outRows, nRows, true);
      if (wantsProbs) this.policy.onAttention(this.view(layer, kvh), this.probs, nRows, qPos);
      if (cold) this.tierStep(idx, store, cold);
    }
    // Evictions after every KV head of the layer has been attended and scored, so that a
    // policy may split the layer's budget across heads (policy.ts).
    if (!this.cold)
      for (let kvh = 0; kvh < nKvHeads; kvh++) {
        const idx = layer * nKvHeads + kvh;
        this.evict(idx, this.heads[idx]!, this.view(layer, kvh));
      }
    this.trackPeak();
  }

  /** Values of the hot store decoded into vScr (n, headDim): KIVI's f32 window as stored, others through the codec. */
  private decodeValues(idx: number, store: HeadStore): Float32Array {
    const d = this.shape.headDim;
    const n = store.nSlots;
    if (this.vScr.length < n * d) {
      this.exec.free(this.vScr);
      this.vScr = this.exec.allocF32(Math.max(n, 2 * (this.vScr.length / d)) * d);
    }
    if (this.vres) this.vres[idx]!.decode(store, this.vCodec, n, this.vScr);
    else this.exec.decodeRows(this.vCodec, store.v, 0, n, d, this.vScr);
    return this.vScr.subarray(0, n * d);
  }

  /**
   * Decode retained keys (both tiers) into kScr, values too when tiered, positions into posScr;
   * apply RoPE at cache ranks for pre-RoPE storage. Returns the query rows to attend with.
   */
  /**
   * The query rows an attend call uses: q itself, or with spec.query "q8" its q8_0 form
   * (every executor attends over qHat; `q8` lets one score with integer dot products).
   */
  private queryArgs(
    q: Float32Array,
    nRows: number,
  ): { q: Float32Array; q8?: { codes: Int8Array; scales: Float32Array } } {
    if (this.spec.query !== "q8") return { q };
    const d = this.shape.headDim;
    if (this.q8Hat.length < nRows * d) {
      this.exec.free(this.q8Hat);
      this.exec.free(this.q8Codes);
      this.q8Hat = this.exec.allocF32(nRows * d);
      const u8 = this.exec.allocU8(nRows * d);
      this.q8Codes = new Int8Array(u8.buffer, u8.byteOffset, u8.length);
      this.q8Scales = this.exec.allocF32(nRows * q8Blocks(d));
    }
    const qHat = this.q8Hat.subarray(0, nRows * d);
    const codes = this.q8Codes.subarray(0, nRows * d);
    const scales = this.q8Scales.subarray(0, nRows * q8Blocks(d));
    return quantizeQ8(q, nRows, d, codes, scales, qHat) ? { q: qHat, q8: { codes, scales } } : { q };
  }

  private prepareDecoded(
    idx: number,
    store: HeadStore,
    cold: HeadStore | null,
    qRows: Float32Array, // (nRows, headDim)
    qPos: Int32Array, // (nRows)
    nRows: number,
  ): Float32Array {
    const d = this.shape.headDim;
    const nHot = store.nSlots;
    const nTot = nHot + (cold ? cold.nSlots : 0);
    if (this.kScr.length < nTot * d) {
      // In the executor's memory: kernels decode into and attend from it in place (no copy per call).
      const cap = Math.max(nTot, 2 * (this.kScr.length / d)) * d;
      this.freeScratch();
      this.kScr = this.exec.allocF32(cap);
      if (cold || this.vres) this.vScr = this.exec.allocF32(cap);
      this.posScr = this.exec.allocI32(cap / d);
    }
    if (this.ropePos.length < nTot) this.ropePos = new Int32Array(this.posScr.length);
    this.decodeKeys(idx, 0, nHot, this.kScr);
    this.posScr.set(store.positions.subarray(0, nHot));
    if (this.vres) this.vres[idx]!.decode(store, this.vCodec, nHot, this.vScr);
    if (cold) {
      this.exec.decodeRows(this.vCodec, store.v, 0, nHot, d, this.vScr);
      this.exec.decodeRows(this.coldK!, cold.k, 0, cold.nSlots, d, this.kScr.subarray(nHot * d));
      this.exec.decodeRows(this.coldV!, cold.v, 0, cold.nSlots, d, this.vScr.subarray(nHot * d));
      this.posScr.set(cold.positions.subarray(0, cold.nSlots), nHot);
    }
    if (!this.storesPreRopeKeys) {
      if (!this.rotation) return qRows;
      const qr = this.qRot.subarray(0, nRows * d);
      qr.set(qRows);
      this.rotate(this.rotation, qr, nRows, false);
      return qr;
    }
    // Pre-RoPE keys: back to the unrotated basis, then RoPE at each token's absolute position
    // (KVQuant) or at its rank among the retained tokens (StreamingLLM's positions within the cache).
    const keys = this.kScr.subarray(0, nTot * d);
    if (this.rotation) this.rotate(this.rotation, keys, nTot, true);
    if (!this.cachePositions) {
      this.exec.rope(keys, this.posScr, nTot, 1, d, this.invFreq!);
      return qRows;
    }
    const order = Array.from({ length: nTot }, (_, i) => i);
    const pos = this.posScr;
    order.sort((a, b) => pos[a]! - pos[b]!);
    const sorted = new Int32Array(nTot);
    for (let i = 0; i < nTot; i++) {
      this.ropePos[order[i]!] = i;
      sorted[i] = pos[order[i]!]!;
    }
    this.exec.rope(keys, this.ropePos, nTot, 1, d, this.invFreq!);
    // Queries arrive rotated at their absolute position p; rotating by (rank - p) moves them to rank.
    const qr = this.qRot.subarray(0, nRows * d);
    qr.set(qRows);
    const delta = new Int32Array(nRows);
    for (let r = 0; r < nRows; r++) {
      let lo = 0;
      let hi = nTot;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid]! < qPos[r]!) lo = mid + 1;
        else hi = mid;
      }
      delta[r] = lo - qPos[r]!;
    }
    this.exec.rope(qr, delta, nRows, 1, d, this.invFreq!);
    return qr;
  }

  private freeScratch(): void {
    this.exec.free(this.kScr);
    this.exec.free(this.vScr);
    this.exec.free(this.posScr);
  }

  private positionSet(store: HeadStore, cold: HeadStore | null): Set<number> {
    const s = new Set<number>();
    for (let j = 0; j < store.nSlots; j++) s.add(store.positions[j]!);
    if (cold) for (let j = 0; j < cold.nSlots; j++) s.add(cold.positions[j]!);
    return s;
  }

  /** Free the given slots of one store by swap-remove, largest slot first. */
  private removeSlots(idx: number, store: HeadStore, drop: number[], tellPolicy: boolean, hot: boolean) {
    const chan = hot && this.chan ? this.chan[idx]! : null;
    const vres = hot && this.vres ? this.vres[idx]! : null;
    drop.sort((a, b) => b - a);
    for (const slot of drop) {
      chan?.release(slot);
      vres?.release(slot);
      const last = store.nSlots - 1;
      if (slot !== last) {
        store.moveSlot(last, slot);
        chan?.move(last, slot);
        vres?.move(last, slot);
        if (tellPolicy)
          this.policy.onMove(Math.floor(idx / this.shape.nKvHeads), idx % this.shape.nKvHeads, last, slot);
      }
      store.nSlots--;
    }
  }

  private evict(idx: number, store: HeadStore, view: HeadView): void {
    const drop = this.policy.evictions(view);
    if (drop.length === 0) return;
    for (const slot of drop) this.account.evicted(idx, store.positions[slot]!);
    this.removeSlots(idx, store, drop, true, true);
  }

  /** Policy tiered: demote hot tokens past the recent window (re-encoded once), evict the oldest past budget. */
  private tierStep(idx: number, hot: HeadStore, cold: HeadStore): void {
    const tiers = this.policy.tiers!;
    const d = this.shape.headDim;
    const b = resolveCount(tiers.budget, this.account.seen[idx]!);
    const r = shareOf(tiers.recent, b);
    const nDemote = hot.nSlots - r;
    if (nDemote > 0) {
      const order = Array.from({ length: hot.nSlots }, (_, i) => i);
      order.sort((a, b) => hot.positions[a]! - hot.positions[b]!);
      const demote = order.slice(0, nDemote);
      const kRows = new Float32Array(nDemote * d);
      const vRows = new Float32Array(nDemote * d);
      for (let t = 0; t < nDemote; t++) {
        this.exec.decodeRows(this.kCodec, hot.k, demote[t]!, 1, d, kRows.subarray(t * d));
        this.exec.decodeRows(this.vCodec, hot.v, demote[t]!, 1, d, vRows.subarray(t * d));
      }
      cold.reserve(nDemote);
      const ks = this.exec.encodeRows(this.coldK!, kRows, nDemote, d, cold.k, cold.nSlots);
      const vs = this.exec.encodeRows(this.coldV!, vRows, nDemote, d, cold.v, cold.nSlots);
      this.account.counters.saturated += ks.saturated + vs.saturated;
      for (let t = 0; t < nDemote; t++) cold.positions[cold.nSlots + t] = hot.positions[demote[t]!]!;
      cold.nSlots += nDemote;
      this.removeSlots(idx, hot, demote, false, true);
      this.demoted += nDemote;
    }
    const over = hot.nSlots + cold.nSlots - b;
    if (over > 0) {
      const order = Array.from({ length: cold.nSlots }, (_, i) => i);
      order.sort((a, b) => cold.positions[a]! - cold.positions[b]!);
      const drop = order.slice(0, over);
      for (const slot of drop) this.account.evicted(idx, cold.positions[slot]!);
      this.removeSlots(idx, cold, drop, false, false);
    }
  }

  memory(): CacheMemory {
    checkLive("memory", this.disposed);
    const { headDim } = this.shape;
    const p = emptyParts();
    // Group ids are implicit only while slots stay in append order (no policy eviction).
    const groupIds = this.policy.name !== "full";
    for (let i = 0; i < this.heads.length; i++) {
      const h = this.heads[i]!;
      addRows(p, h.nSlots, this.kLayout, this.vLayout);
      if (this.vres) {
        // Residual values are f32 rows instead of codec rows.
        const nr = this.vres[i]!.nResidual;
        p.payload -= nr * this.vLayout.payloadBytes;
        p.scales -= nr * 2 * this.vLayout.scalesPerRow;
        p.zeros -= nr * 2 * this.vLayout.zerosPerRow;
        p.residual += nr * headDim * 4;
      }
      if (this.chan) {
        const m = this.chan[i]!.memory(h.nSlots, groupIds);
        p.payload += m.payload;
        p.scales += m.scales;
        p.zeros += m.zeros;
        p.residual += m.residual;
        p.indices += m.indices;
      }
      if (this.cold) {
        const c = this.cold[i]!;
        addRows(p, c.nSlots, c.kLayout, c.vLayout);
      }
    }
    if (!this.policy.positionsImplicit) p.indices += p.slots * 4;
    p.policyState = this.policy.stateBytes();
    return cacheMemory(p, headDim);
  }

  /**
   * Absolute positions one (layer, KV head) retains now, ascending (both tiers). For tests,
   * diagnostics and plots; not part of the KVCache interface.
   */
  retainedPositions(layer: number, kvHead: number): Int32Array {
    checkLive("retainedPositions", this.disposed);
    checkLayer("retainedPositions", layer, this.shape.nLayers);
    if (!Number.isInteger(kvHead) || kvHead < 0 || kvHead >= this.shape.nKvHeads)
      throw new ShapeError(
        `retainedPositions: kvHead must be an integer in [0, ${this.shape.nKvHeads}), got ${kvHead}`,
      );
    const idx = layer * this.shape.nKvHeads + kvHead;
    const hot = this.heads[idx]!;
    const cold = this.cold ? this.cold[idx]! : null;
    const out = new Int32Array(hot.nSlots + (cold ? cold.nSlots : 0));
    out.set(hot.positions.subarray(0, hot.nSlots));
    if (cold) out.set(cold.positions.subarray(0, cold.nSlots), hot.nSlots);
    return out.sort();
  }

  /** Bytes per retained token per KV head (K + V rows), for quick estimates (token-axis codecs). */
  bytesPerTokenSlot(): number {
    return rowBytes(this.kLayout) + rowBytes(this.vLayout);
  }

  /** Bytes held as allocated (stats().physical): see PhysicalMemory. */
  physicalMemory(): PhysicalMemory {
    let stores = 0;
    for (const h of this.heads) stores += h.physicalBytes();
    if (this.cold) for (const h of this.cold) stores += h.physicalBytes();
    let residual = 0;
    if (this.chan) for (const c of this.chan) residual += c.physicalBytes();
    if (this.vres) for (const c of this.vres) residual += c.physicalBytes();
    const scratch = bytesOf(
      this.qPosGroup,
      this.qRot,
      this.probs,
      this.kTmp,
      this.vTmp,
      this.kScr,
      this.vScr,
      this.posScr,
      this.ropePos,
    );
    return physicalMemory({
      stores,
      residual,
      scratch,
      diagnostics: this.meter ? this.meter.physicalBytes() : 0,
      policyState: this.policy.stateBytes(),
    });
  }

  private trackPeak(): void {
    if (!this.disposed) this.account.track(this.memory().total, this.physicalMemory());
  }

  stats(): CacheStats {
    return this.account.stats(this.exec.name, {
      ...(this.cold ? { demoted: this.demoted } : {}),
      ...(this.meter ? { attentionMassKept: this.meter.summary() } : {}),
    });
  }

  reset(): void {
    checkLive("reset", this.disposed);
    for (const h of this.heads) h.nSlots = 0;
    if (this.cold) for (const h of this.cold) h.nSlots = 0;
    if (this.chan) for (const c of this.chan) c.clear();
    if (this.vres) for (const c of this.vres) c.clear();
    this.account.reset();
    this.policy.reset();
    this.meter?.reset();
  }

  /** Free executor memory. Idempotent; afterwards every method but stats() throws (contract.ts). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const h of this.heads) h.dispose();
    if (this.cold) for (const h of this.cold) h.dispose();
    if (this.chan) for (const c of this.chan) c.dispose();
    if (this.vres) for (const c of this.vres) c.dispose();
    this.freeScratch();
    this.exec.free(this.qPosGroup);
    this.exec.free(this.q8Hat);
    this.exec.free(this.q8Codes);
    this.exec.free(this.q8Scales);
    this.qPosGroup = new Int32Array(0);
    this.kScr = new Float32Array(0);
    this.vScr = new Float32Array(0);
    this.posScr = new Int32Array(0);
  }
}
