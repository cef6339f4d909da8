/**
 * The standard KV cache as composed stores, each chosen once here from the ResolvedCacheSpec:
 * per (layer, KV head) a Head (stores/head.ts: HeadStore + a SideStore per side), policy tiered's
 * older Head (stores/tier.ts), a Transform (stores/transform.ts: rotation, pre-RoPE), an attention
 * path (fused: rows attended encoded; channel: channel-axis keys attended in place; decoded:
 * rows decoded into f32 scratch, stores/scratch.ts, then attended) and who frees slots (the
 * policy, or the tier step). Each call then reads top to bottom:
 *   append: checks -> key/value transform -> stores append -> policy.onAppend -> accounting
 *   attend: checks -> attend over the stores -> output transform -> policy sees the weights ->
 *           policy (or tier step) decides live slots -> accounting
 * memory() sums the bytes each store states; stats().physical counts them as allocated.
 */
import { ConfigError, ShapeError } from "../errors.ts";
import type { AttendArgs, Executor } from "../kernels/executor.ts";
import { f32 as f32Codec } from "../quant/f32.ts";
import { sideRotation } from "../quant/hadamard.ts";
import type { Codec, EncodedRows } from "../quant/types.ts";
import { CacheAccount, physicalMemory } from "./accounting.ts";
import { AttentionMassMeter } from "./attention-mass.ts";
import { type ChannelKeySettings, ChannelKeys } from "./channel-keys.ts";
import { checkAppend, checkAttend, checkLayer, checkLive, checkShape } from "./contract.ts";
import { CodecRows, HeadStore, NO_ROWS } from "./head-store.ts";
import { type Merger, mergerOf } from "./merge.ts";
import type { HeadView, RetentionPolicy } from "./policy.ts";
import { evictFrom, Head, headsMemory, headView } from "./stores/head.ts";
import { Scratch } from "./stores/scratch.ts";
import { coldHeads, tierStep } from "./stores/tier.ts";
import { Transform } from "./stores/transform.ts";
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

/** The part of an attend call every path shares for one KV head's query rows. */
type Shared = Pick<AttendArgs, "headDim" | "qPos" | "nRows" | "scale" | "out" | "probs">;

const EMPTY_U16 = new Uint16Array(0);

/** f32 rows (n, headDim) seen as EncodedRows of the f32 codec. */
function f32Rows(x: Float32Array, nFloats: number): EncodedRows {
  return {
    payload: new Uint8Array(x.buffer, x.byteOffset, nFloats * 4),
    scales: EMPTY_U16,
    zeros: EMPTY_U16,
  };
}

export class StandardKVCache implements KVCache {
  private readonly heads: Head[][]; // (nLayers * nKvHeads) x tiers: [hot], or [hot, older] (policy tiered)
  private readonly transform: Transform;
  private readonly path: (tiers: Head[], s: Shared, q: Float32Array) => void;
  private readonly retain: (idx: number, tiers: Head[], view: HeadView) => void;
  private readonly scratch: Scratch;
  private readonly account: CacheAccount; // counters, eviction ages, per-head seen/newest
  private readonly meter: AttentionMassMeter | undefined; // opt-in diagnostic
  private readonly merger: Merger | undefined; // the policy's merge on eviction (merge.ts)
  private demoted = 0;
  /** Keys are stored before RoPE (spec.keys.preRope, or policy sinks with positions: cache). */
  readonly storesPreRopeKeys: boolean;
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
    const { headDim: d } = shape;
    const { keys, values } = spec;
    const { tiers } = policy;
    const nTotal = shape.nLayers * shape.nKvHeads;
    this.scratch = new Scratch(exec, d, spec.query !== undefined); // q8 or q8w
    this.account = new CacheAccount(nTotal);
    this.meter = options.attentionMass ? new AttentionMassMeter(exec, nTotal, d) : undefined;

    // Transform: seeded rotation per side; pre-RoPE keys with the model's frequencies.
    const rot = (side: "keys" | "values") =>
      spec[side].rotation === "hadamard" ? sideRotation(side, d, options.seed ?? 0) : undefined;
    const ranks = policy.cachePositions === true;
    this.storesPreRopeKeys = ranks || keys.preRope;
    if (this.storesPreRopeKeys && shape.rope?.invFreq.length !== d / 2)
      throw new ConfigError(
        ranks ? "cache.policy.positions" : "cache.keys.preRope",
        `${ranks ? "positions: cache" : `${spec.name}: preRope`} stores keys before RoPE and needs the model's RoPE frequencies: pass shape.rope = { invFreq } (headDim/2 = ${d / 2} floats) to createCache`,
      );
    const preRope = this.storesPreRopeKeys ? { invFreq: shape.rope!.invFreq, ranks } : undefined;
    const rotations = { keys: rot("keys"), values: rot("values") };
    this.transform = new Transform(exec, this.scratch, d, rotations, preRope);

    // Stores (resolveCacheSpec has validated the combination: integer codec, group >= 1, no tiers).
    const channel = keys.axis === "channel";
    const t = kCodec.options.type;
    const chan: ChannelKeySettings = {
      bits: t === "int2" ? 2 : t === "int4" ? 4 : 8,
      symmetric: keys.symmetric,
      group: keys.group as number,
      residual: keys.residual,
    };
    const initial = Math.min(shape.maxTokens, 256);
    const older = tiers ? coldHeads(exec, tiers, d, initial, nTotal) : [];
    this.heads = Array.from({ length: nTotal }, (_, idx) => {
      const slots = new HeadStore(exec, channel ? NO_ROWS : kCodec.layout(d), vCodec.layout(d), initial);
      const hot = new Head(
        slots,
        channel ? new ChannelKeys(exec, d, chan, slots.capacity) : new CodecRows(exec, kCodec, slots, "k", d),
        values.residual
          ? new ValueResidual(exec, vCodec, slots, d, values.residual)
          : new CodecRows(exec, vCodec, slots, "v", d),
      );
      return tiers ? [hot, older[idx]!] : [hot];
    });

    // Attention path, and who decides live slots.
    if (channel && !preRope && keys.rotation === "none" && !tiers)
      this.path = ([head], s, q) => this.attendChannel(head!, s, q);
    else {
      const decoded = channel || preRope !== undefined || tiers !== undefined || values.residual > 0;
      const decodedValues = tiers !== undefined || values.residual > 0;
      this.path = (heads, s, q) => this.attendRows(heads, s, q, decoded, decodedValues);
    }
    this.merger = mergerOf(policy);
    const head0 = this.heads[0]![0]!;
    if (this.merger && (tiers || !head0.values.rewrite))
      throw new ConfigError(
        "cache.policy.merge",
        `cache "${spec.name}": merge: nearest re-encodes a kept value row in place, which ${tiers ? "a tiered policy" : "these values' store"} cannot do; use merge: none`,
      );
    this.retain = tiers
      ? (idx, [hot, cold]) => {
          this.demoted += tierStep(idx, hot!, cold!, tiers, this.account, d);
        }
      : (idx, [head], view) => evictFrom(head!, view, idx, policy, this.account, this.merger);
  }

  private view(layer: number, kvHead: number): HeadView {
    const idx = layer * this.shape.nKvHeads + kvHead;
    return headView(this.heads[idx]![0]!, layer, kvHead, this.account.seen[idx]!);
  }

  append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): void {
    checkLive("append", this.disposed);
    const { nKvHeads, headDim: d } = this.shape;
    checkLayer("append", layer, this.shape.nLayers);
    // Every KV head of a layer sees the same appends: head 0 stands for the layer.
    const h0 = layer * nKvHeads;
    checkAppend(this.shape, layer, k, v, positions, this.account.newest[h0]!, this.account.seen[h0]!);
    const n = positions.length;
    let maxPos = Number.NEGATIVE_INFINITY;
    for (const p of positions) if (p > maxPos) maxPos = p;
    for (let h = 0; h < nKvHeads; h++) {
      const kIn = k.subarray(h * n * d, (h + 1) * n * d);
      this.meter?.append(h0 + h, kIn, positions, n);
      const kStored = this.transform.keys(kIn, positions, n);
      const vStored = this.transform.values(v.subarray(h * n * d, (h + 1) * n * d), n);
      const first = this.heads[h0 + h]![0]!.append(kStored, vStored, positions, n, this.account);
      this.account.appended(h0 + h, n, maxPos);
      this.policy.onAppend(this.view(layer, h), first, n);
    }
    this.account.counters.appended += n;
    this.trackPeak();
  }

  attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): void {
    checkLive("attend", this.disposed);
    checkAttend(this.shape, layer, q, qPositions, out);
    const { nHeads, nKvHeads, headDim: d } = this.shape;
    // Query heads h = kvHead * group + g share KV head kvHead; their rows are contiguous in q.
    const qPos = this.scratch.queries(qPositions, nHeads / nKvHeads);
    const nRows = qPos.length;
    const scale = 1 / Math.sqrt(d);
    for (let kvh = 0; kvh < nKvHeads; kvh++) {
      const tiers = this.heads[layer * nKvHeads + kvh]!;
      const qRows = q.subarray(kvh * nRows * d, (kvh + 1) * nRows * d);
      const outRows = out.subarray(kvh * nRows * d, (kvh + 1) * nRows * d);
      this.meter?.measure(layer * nKvHeads + kvh, qRows, qPos, nRows, scale, new Set(this.positions(tiers)));
      this.policy.onQueries?.(this.view(layer, kvh), qRows, nRows, qPos);
      const wants = this.policy.wantsAttention;
      const probs = wants ? { probs: this.scratch.probsFor(nRows * slotCount(tiers)) } : {};
      this.path(tiers, { headDim: d, qPos, nRows, scale, out: outRows, ...probs }, qRows);
      this.transform.output(outRows, nRows);
      if (wants) this.policy.onAttention(this.view(layer, kvh), this.scratch.probs, nRows, qPos);
    }
    // After every KV head of the layer has been attended and scored, so that a policy may
    // split the layer's budget across heads (policy.ts).
    for (let kvh = 0; kvh < nKvHeads; kvh++)
      this.retain(layer * nKvHeads + kvh, this.heads[layer * nKvHeads + kvh]!, this.view(layer, kvh));
    this.trackPeak();
  }

  /** Channel-axis keys attended in place; values as stored when the executor reads them, else decoded. */
  private attendChannel(head: Head, s: Shared, q: Float32Array): void {
    const { slots } = head;
    const keys = head.keys as ChannelKeys; // this path is chosen only for channel-axis keys
    const a = {
      ...s,
      ...this.scratch.query(q, s.nRows),
      keys: keys.rows(),
      opts: keys.settings,
      slotPos: slots.positions,
      nSlots: slots.nSlots,
    };
    const values = head.values instanceof ValueResidual ? head.values.attendRows() : null;
    if (!values || !this.exec.channelAttend({ ...a, values })) {
      const v = this.scratch.values(slots.nSlots);
      head.values.decode(0, slots.nSlots, v);
      this.exec.channelAttend({ ...a, v });
    }
  }

  /**
   * Attention over the stored rows in their encoded form (queries rotated like the keys), or,
   * `decoded`, over every tier's keys decoded into f32 scratch (values too when `values`).
   */
  private attendRows(tiers: Head[], s: Shared, q: Float32Array, decoded: boolean, values: boolean): void {
    const { slots } = tiers[0]!;
    const d = this.shape.headDim;
    const { kScr, vScr, posScr } = decoded ? this.scratch.decoded(slotCount(tiers), values) : this.scratch;
    let n = 0;
    if (decoded)
      for (const { slots: t, keys, values: vals } of tiers) {
        keys.decode(0, t.nSlots, kScr.subarray(n * d));
        if (values) vals.decode(0, t.nSlots, vScr.subarray(n * d));
        posScr.set(t.positions.subarray(0, t.nSlots), n);
        n += t.nSlots;
      }
    const qUse = decoded
      ? this.transform.decoded(kScr.subarray(0, n * d), posScr, n, q, s.qPos)
      : this.transform.query(q, s.nRows);
    this.exec.attend({
      ...s,
      ...this.q8wWeights(this.scratch.query(qUse, s.nRows)),
      ...(decoded
        ? { kCodec: f32Codec, k: f32Rows(kScr, n * d), slotPos: posScr, nSlots: n }
        : { kCodec: this.kCodec, k: slots.k, slotPos: slots.positions, nSlots: slots.nSlots }),
      ...(values ? { vCodec: f32Codec, v: f32Rows(vScr, n * d) } : { vCodec: this.vCodec, v: slots.v }),
    });
  }

  /** query: q8w marks the q8 rows so the attend call also rounds the weights (src/quant/q8-weights.ts). */
  private q8wWeights<T extends { q8?: AttendArgs["q8"] }>(x: T): T {
    return this.spec.query === "q8w" && x.q8 ? { ...x, q8: { ...x.q8, weights: true } } : x;
  }

  /** Retained positions of every tier, in slot order. */
  private positions = (tiers: Head[]) =>
    Int32Array.from(tiers.flatMap(({ slots }) => [...slots.positions.subarray(0, slots.nSlots)]));

  memory(): CacheMemory {
    checkLive("memory", this.disposed);
    return headsMemory(this.heads.flat(), this.policy, this.shape.headDim);
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
    return this.positions(this.heads[layer * this.shape.nKvHeads + kvHead]!).sort();
  }

  /** Bytes held as allocated (stats().physical): see PhysicalMemory. */
  physicalMemory(): PhysicalMemory {
    const p = { stores: 0, residual: 0 };
    for (const tiers of this.heads) for (const h of tiers) h.addPhysical(p);
    return physicalMemory({
      ...p,
      scratch: this.scratch.bytes(),
      diagnostics: this.meter ? this.meter.physicalBytes() : 0,
      policyState: this.policy.stateBytes(),
    });
  }

  private trackPeak(): void {
    if (!this.disposed) this.account.track(this.memory().total, this.physicalMemory());
  }

  stats(): CacheStats {
    return this.account.stats(this.exec.name, {
      ...(this.policy.tiers ? { demoted: this.demoted } : {}),
      ...(this.meter ? { attentionMassKept: this.meter.summary() } : {}),
    });
  }

  reset(): void {
    checkLive("reset", this.disposed);
    for (const tiers of this.heads) for (const h of tiers) h.clear();
    this.account.reset();
    this.policy.reset();
    this.meter?.reset();
  }

  /** Free executor memory. Idempotent; afterwards every method but stats() throws (contract.ts). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const tiers of this.heads) for (const h of tiers) h.dispose();
    this.scratch.dispose();
    this.meter?.dispose();
  }
}

const slotCount = (tiers: Head[]) => tiers.reduce((n, t) => n + t.slots.nSlots, 0);
