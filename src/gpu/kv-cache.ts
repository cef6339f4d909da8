/**
 * A KV cache resident in GPU buffers (executor "webgpu"): token-axis codecs x any retention
 * policy that works from positions and attention probabilities (full, window, sinks with
 * absolute positions, h2o, tova, lru, lfu, snapkv, random; knorm through the append hook).
 *
 * The standard cache's composition (src/cache/stores/head.ts) with the rows on the device: per
 * (layer, KV head) a Head whose HeadStore holds the slots' positions on the host and whose
 * sides are DeviceRows, so the policy's view, eviction (evictFrom: the same swap-remove, each
 * move forwarded to the device) and memory() (headsMemory) are the standard cache's code. The
 * rows: per layer two storage buffers, K records (nKvHeads, cap, kRowWords + 1) = the encoded
 * key row followed by its token position, and V records (nKvHeads, cap, vRowWords), encoded for
 * every head of the layer by one kernel; capacity doubles as needed (copy of each head's prefix).
 *
 * What crosses the bus per attend step (measured by `bus()`):
 *   host -> device: q (nHeads * nQ * headDim * 4) + qPos (group * nQ * 4); for append, K and V
 *                   f32 rows (2 * nKvHeads * nNew * headDim * 4) + positions (nNew * 4);
 *                   for evictions, 8 bytes per moved slot.
 *   device -> host: out (nHeads * nQ * headDim * 4) + 8 bytes of encode statistics (read after
 *                   each host-path append and attend; once per forward on the device path), and, only
 *                   for policies that read attention (wantsAttention), the probabilities
 *                   (nKvHeads * group * nQ * maxSlots * 4). Policy state itself stays on the
 *                   host (it is small: a score or counter per slot).
 * memory() is the CPU cache's exact accounting (codec bytes, positions, policy state), not
 * the word padding of odd head sizes on the device (see layout.ts).
 *
 * Rotation (spec keys/values `rotation: hadamard`, src/quant/hadamard.ts) runs on the device,
 * bit-identical to the reference (kernels/hadamard.ts): appended rows are copied into a staging
 * buffer and rotated there before encoding (the caller's rows are left as they were); rotated
 * keys get rotated queries (a staged copy of q), rotated values get the attention output
 * rotated back in place. Nothing extra crosses the bus.
 */

import { addRowBytes, CacheAccount, type MemoryParts } from "../cache/accounting.ts";
import { checkAppend, checkAttend, checkLayer, checkLive, checkShape } from "../cache/contract.ts";
import { HeadStore, NO_ROWS } from "../cache/head-store.ts";
import type { HeadView, RetentionPolicy } from "../cache/policy.ts";
import { softcapOf } from "../cache/softcap.ts";
import { evictFrom, Head, headsMemory, headView, type SideStore } from "../cache/stores/head.ts";
import type { CacheMemory, CacheStats, KVCache, KVShape, ResolvedCacheSpec } from "../cache/types.ts";
import { ConfigError, ShapeError } from "../errors.ts";
import { createRefExecutor } from "../kernels/ref.ts";
import { sideRotation } from "../quant/hadamard.ts";
import type { Codec, EncodeStats, RowLayout } from "../quant/types.ts";
import { allocRows } from "../quant/types.ts";
import type { Kernel } from "./kernel.ts";
import {
  attendCombineKernel,
  attendCombineParams,
  attendKernel,
  attendParams,
  attendSplitKernel,
  attendSplitParams,
  MAX_HEAD_DIM,
  moveKernel,
  moveParams,
} from "./kernels/attention.ts";
import { encodeParams, groupsFor, MAX_HEADS, NO_POSITIONS } from "./kernels/codec.ts";
import { rotationGroups, rotationKernel, rotationParams } from "./kernels/hadamard.ts";
import { type GpuRowLayout, gpuRowLayout } from "./layout.ts";
import type { GpuOps } from "./ops.ts";
import { hasWgslCodec } from "./wgsl/codec.ts";

/**
 * Why the GPU cache cannot hold this spec, or null when it can. createCache then builds the
 * standard cache, whose ops run through the executor's counted ref fallbacks.
 */
export function gpuCacheUnsupported(spec: ResolvedCacheSpec, policy: RetentionPolicy): string | null {
  const { keys, values } = spec;
  for (const side of [keys, values]) if (!hasWgslCodec(side.type)) return `codec ${side.type}`;
  if (keys.axis === "channel") return "channel-axis keys";
  if (keys.residual || values.residual) return "residual windows";
  // Rotated keys are stored rotated: a policy reading decoded keys would need them rotated back.
  if (keys.rotation !== "none" && policy.readsKeys) return "rotated keys read by the policy";
  if (keys.preRope) return "pre-RoPE keys";
  if (policy.tiers) return "tiers";
  if (policy.cachePositions) return "cache positions";
  if (policy.onQueries) return "policy reads queries";
  return null;
}

interface LayerStore {
  k: GPUBuffer; // (nKvHeads, cap, kStride) u32
  v: GPUBuffer; // (nKvHeads, cap, vStride) u32
  cap: number;
}

/** Bytes moved between host and device by one cache (the bus traffic). */
export interface BusTraffic {
  uploaded: number;
  downloaded: number;
  /** Of `downloaded`: attention probabilities read back for the policy. */
  probsDownloaded: number;
  attends: number;
  appends: number;
}

/** The host arrays of the heads' HeadStores (positions only: NO_ROWS on both sides). */
const HOST = createRefExecutor();

const NO_STATS: EncodeStats = Object.freeze({ nonFinite: 0, saturated: 0 });

/**
 * One side of a GPU cache head as the standard cache's SideStore: its rows live in the layer's
 * record buffer, written for every head of the layer at once by the encode kernel, so this
 * store counts their bytes (the CPU layout's, as the standard cache does), passes slot moves
 * to the device (`move`) and serves decoded keys to a policy (`decode`).
 */
class DeviceRows implements SideStore {
  constructor(
    private readonly layout: RowLayout,
    private readonly onMove?: (from: number, to: number) => void,
    private readonly decoder?: (first: number, n: number, dst: Float32Array) => void,
  ) {}

  write(): EncodeStats {
    throw new ShapeError("GPU cache rows are written by its encode kernel, not through a SideStore");
  }

  decode(first: number, n: number, dst: Float32Array): void {
    if (!this.decoder) throw new ShapeError("the GPU cache serves decoded keys only");
    this.decoder(first, n, dst);
  }

  addMemory(p: MemoryParts, nSlots: number): void {
    addRowBytes(p, nSlots, this.layout);
  }

  move(from: number, to: number): void {
    this.onMove?.(from, to);
  }

  flush = () => NO_STATS;
  physicalBytes = () => 0;
  release(): void {}
  grow(): void {}
  clear(): void {}
  dispose(): void {}
}

/** Most f32 partials the split attention keeps (64 MiB); fewer splits beyond that. */
const SPLIT_SCRATCH_FLOATS = 16 * 1024 * 1024;

export class GpuKVCache implements KVCache {
  /** Slots per workgroup of the split attention (a tuning knob; tests lower it to exercise splits). */
  static splitSlots = 256;
  private readonly kL: GpuRowLayout;
  private readonly vL: GpuRowLayout;
  private readonly kStride: number;
  private readonly vStride: number;
  private readonly layers: LayerStore[];
  /**
   * Per (layer, KV head) the standard cache's Head (src/cache/stores/head.ts) over a host
   * HeadStore that holds the slots' positions only; its sides are DeviceRows, whose rows live
   * in the layer's record buffers. Views, eviction and memory() are the standard cache's own.
   */
  private readonly heads: Head[]; // (nLayers * nKvHeads)
  /** Record moves (from, to) queued by the evictions of the layer in progress, for applyMoves. */
  private moves: number[] = [];
  private readonly account: CacheAccount; // counters, eviction ages, per-head seen/newest (as the CPU cache)
  private readonly encK: Kernel;
  private readonly encV: Kernel;
  private readonly att: Kernel;
  private readonly attSplit: Kernel;
  private readonly attCombine: Kernel;
  private scratch: GPUBuffer;
  private readonly move: Kernel;
  private input: GPUBuffer;
  private output: GPUBuffer;
  private readonly statsBuf: GPUBuffer;
  private movesBuf: GPUBuffer;
  /** Rotation kernels of each rotated side (null: stored as given). */
  private readonly rotK: Kernel | null;
  private readonly rotV: { fwd: Kernel; inv: Kernel } | null;
  /** Staging of appended rows to rotate (K, V, positions) and of rotated queries (q, positions). */
  private rotRows: GPUBuffer | null = null;
  private rotQ: GPUBuffer | null = null;
  private qPosGroup = new Int32Array(0);
  private probs = new Float32Array(0);
  private disposed = false;
  /** Attention soft-cap of the model's shape (Gemma 2, src/cache/softcap.ts), 0 for none. */
  private readonly softcap: number;
  /** Host f32 keys of the append in progress, for policies that read decoded keys (knorm). */
  private pendingKeys: { k: Float32Array; nNew: number; first: Int32Array } | null = null;
  readonly traffic: BusTraffic = { uploaded: 0, downloaded: 0, probsDownloaded: 0, attends: 0, appends: 0 };

  constructor(
    readonly spec: ResolvedCacheSpec,
    readonly shape: KVShape,
    private readonly kCodec: Codec,
    private readonly vCodec: Codec,
    private readonly policy: RetentionPolicy,
    private readonly ops: GpuOps,
    /** The cache's seed (createCache options.seed): the rotations' signs, as the standard cache's. */
    seed = 0,
  ) {
    checkShape(shape); // src/cache/contract.ts
    const { nLayers, nKvHeads, headDim } = shape;
    if (nKvHeads > MAX_HEADS)
      throw new ShapeError(`the webgpu cache handles up to ${MAX_HEADS} KV heads, got ${nKvHeads}`);
    if (headDim > MAX_HEAD_DIM)
      throw new ShapeError(`the webgpu cache handles headDim up to ${MAX_HEAD_DIM}, got ${headDim}`);
    if (policy.tiers || policy.cachePositions)
      throw new ConfigError(
        "cache.policy",
        `policy ${policy.name} moves tokens between codecs or re-ropes keys, which the webgpu cache does not do; createCache routes it to the standard cache`,
      );
    this.softcap = softcapOf(shape) ?? 0;
    this.kL = gpuRowLayout(kCodec, headDim);
    this.vL = gpuRowLayout(vCodec, headDim);
    this.kStride = this.kL.rowWords + 1;
    this.vStride = this.vL.rowWords;
    this.encK = ops.encodeKernel(kCodec, headDim).kernel;
    this.encV = ops.encodeKernel(vCodec, headDim).kernel;
    this.att = ops.kernel(
      () => attendKernel(kCodec, this.kL, vCodec, this.vL),
      `att:${JSON.stringify(kCodec.options)}:${JSON.stringify(vCodec.options)}:${headDim}`,
    );
    this.move = ops.kernel(moveKernel, "move");
    this.attSplit = ops.kernel(
      () => attendSplitKernel(kCodec, this.kL, vCodec, this.vL),
      `att-split:${JSON.stringify(kCodec.options)}:${JSON.stringify(vCodec.options)}:${headDim}`,
    );
    this.attCombine = ops.kernel(() => attendCombineKernel(headDim), `att-combine:${headDim}`);
    const rotKeys = spec.keys.rotation === "hadamard" ? sideRotation("keys", headDim, seed) : null;
    const rotValues = spec.values.rotation === "hadamard" ? sideRotation("values", headDim, seed) : null;
    this.rotK = rotKeys
      ? ops.kernel(() => rotationKernel(rotKeys, false), `rot:keys:${headDim}:${seed}`)
      : null;
    this.rotV = rotValues
      ? {
          fwd: ops.kernel(() => rotationKernel(rotValues, false), `rot:values:${headDim}:${seed}`),
          inv: ops.kernel(() => rotationKernel(rotValues, true), `rot-inv:values:${headDim}:${seed}`),
        }
      : null;
    const rt = ops.rt;
    const cap = Math.max(1, Math.min(shape.maxTokens, 256));
    this.layers = [];
    for (let l = 0; l < nLayers; l++) this.layers.push(this.allocLayer(cap));
    const n = nLayers * nKvHeads;
    this.account = new CacheAccount(n);
    this.heads = Array.from({ length: n }, (_, idx) => {
      const layer = Math.floor(idx / nKvHeads);
      const h = idx % nKvHeads;
      // Slot moves go to the device as record moves (K and V records move together).
      const move = (from: number, to: number) => {
        const c = this.layers[layer]!.cap;
        this.moves.push(h * c + from, h * c + to);
      };
      const decode = (first: number, count: number, dst: Float32Array) =>
        this.decodeKeys(h, dst, first, count);
      return new Head(
        new HeadStore(HOST, NO_ROWS, NO_ROWS, cap),
        new DeviceRows(this.kL.cpu, move, decode),
        new DeviceRows(this.vL.cpu),
      );
    });
    this.input = rt.buffer(1024, "cache input");
    this.output = rt.buffer(1024, "cache output");
    this.scratch = rt.buffer(1024, "cache attention scratch");
    this.statsBuf = rt.buffer(16, "cache encode stats");
    rt.upload(this.statsBuf, new Uint32Array(4));
    this.movesBuf = rt.buffer(256, "cache moves");
  }

  private allocLayer(cap: number): LayerStore {
    const { nKvHeads } = this.shape;
    const rt = this.ops.rt;
    return {
      k: rt.buffer(nKvHeads * cap * this.kStride * 4, "cache K"),
      v: rt.buffer(nKvHeads * cap * this.vStride * 4, "cache V"),
      cap,
    };
  }

  private ensureBuffer(
    which: "input" | "output" | "scratch" | "movesBuf" | "rotRows" | "rotQ",
    bytes: number,
  ): GPUBuffer {
    const buf = this[which];
    if (buf && buf.size >= bytes) return buf;
    buf?.destroy();
    const next = this.ops.rt.buffer(Math.max(bytes, (buf?.size ?? 0) * 2), `cache ${which}`);
    this[which] = next;
    return next;
  }

  /**
   * Appended rows in the stored basis: K (nKvHeads * nNew rows at kBase), V (at vBase) and the
   * positions (posBase) copied into the staging buffer, the rotated sides rotated there.
   */
  private rotatedRows(src: GPUBuffer, kBase: number, vBase: number, posBase: number, nNew: number) {
    const { nKvHeads, headDim: d } = this.shape;
    const rows = nKvHeads * nNew;
    const kvFloats = rows * d;
    const buf = this.ensureBuffer("rotRows", (2 * kvFloats + nNew) * 4);
    const rt = this.ops.rt;
    rt.copy(src, kBase * 4, buf, 0, kvFloats * 4);
    rt.copy(src, vBase * 4, buf, kvFloats * 4, kvFloats * 4);
    rt.copy(src, posBase * 4, buf, 2 * kvFloats * 4, nNew * 4);
    const batch = [];
    if (this.rotK)
      batch.push({
        kernel: this.rotK,
        params: rotationParams(rows, 0),
        buffers: [buf],
        groups: rotationGroups(rows),
      });
    if (this.rotV)
      batch.push({
        kernel: this.rotV.fwd,
        params: rotationParams(rows, kvFloats),
        buffers: [buf],
        groups: rotationGroups(rows),
      });
    rt.run(batch);
    return { src: buf, kBase: 0, vBase: kvFloats, posBase: 2 * kvFloats };
  }

  /** Grow layer `layer` so every head can hold `need` slots (copies each head's prefix). */
  private reserve(layer: number, need: number): void {
    const old = this.layers[layer]!;
    if (need <= old.cap) return;
    let cap = old.cap;
    while (cap < need) cap *= 2;
    const next = this.allocLayer(cap);
    const { nKvHeads } = this.shape;
    const rt = this.ops.rt;
    for (let h = 0; h < nKvHeads; h++) {
      const n = this.heads[layer * nKvHeads + h]!.slots.nSlots;
      rt.copy(
        old.k,
        h * old.cap * this.kStride * 4,
        next.k,
        h * cap * this.kStride * 4,
        n * this.kStride * 4,
      );
      rt.copy(
        old.v,
        h * old.cap * this.vStride * 4,
        next.v,
        h * cap * this.vStride * 4,
        n * this.vStride * 4,
      );
    }
    old.k.destroy();
    old.v.destroy();
    this.layers[layer] = next;
  }

  /** Retained slots of each KV head of `layer`: (nKvHeads). */
  private slotCounts(layer: number): Int32Array {
    const { nKvHeads } = this.shape;
    return Int32Array.from({ length: nKvHeads }, (_, h) => this.heads[layer * nKvHeads + h]!.slots.nSlots);
  }

  private view(layer: number, kvHead: number): HeadView {
    const idx = layer * this.shape.nKvHeads + kvHead;
    return headView(this.heads[idx]!, layer, kvHead, this.account.seen[idx]!);
  }

  /**
   * Decoded keys for a policy. Keys live on the device and reading them back synchronously is
   * impossible, so only the rows of the append in progress are served: the reference codec
   * encodes the host f32 rows, giving the very codes the GPU stored (bit-identical), then
   * decodes them. That is what knorm asks for (its score is fixed at append time).
   */
  private decodeKeys(kvHead: number, dst: Float32Array, first: number, n: number): void {
    const p = this.pendingKeys;
    const d = this.shape.headDim;
    const start = p ? p.first[kvHead]! : 0;
    if (!p || first < start || first + n > start + p.nNew)
      throw new ConfigError(
        "cache.policy",
        `policy ${this.policy.name} reads stored keys outside the append hook; the webgpu cache keeps keys on the device: use executor wasm or ref for this policy`,
      );
    const rows = allocRows(this.kCodec.layout(d), n);
    const off = (kvHead * p.nNew + (first - start)) * d;
    this.kCodec.encode(p.k.subarray(off, off + n * d), n, d, rows, 0);
    this.kCodec.decode(rows, 0, n, d, dst);
  }

  async append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): Promise<void> {
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
    if (nNew === 0) return;
    const rt = this.ops.rt;
    const kvFloats = nKvHeads * nNew * d;
    const input = this.ensureBuffer("input", (2 * kvFloats + nNew) * 4);
    rt.upload(input, k, 0);
    rt.upload(input, v, kvFloats * 4);
    rt.upload(input, positions, 2 * kvFloats * 4);
    this.traffic.uploaded += (2 * kvFloats + nNew) * 4;
    this.pendingKeys = { k, nNew, first: new Int32Array(0) };
    try {
      this.appendDevice(layer, input, 0, kvFloats, 2 * kvFloats, positions);
    } finally {
      this.pendingKeys = null;
    }
    // stats() is synchronous, so the host path keeps it current by reading the 8-byte encode
    // counters now (the device path, appendDevice, leaves that to the caller's next read-back).
    const [st] = await rt.read([this.statsRange()]);
    this.takeStats(st!);
  }

  /**
   * Append rows already on the device: `src` holds K (nKvHeads, nNew, headDim) f32 at word
   * kBase, V at vBase and the nNew i32 positions at posBase; `positions` is their host copy
   * (policies and the host position mirror need it). Nothing is read back.
   */
  appendDevice(
    layer: number,
    src: GPUBuffer,
    kBase: number,
    vBase: number,
    posBase: number,
    positions: Int32Array,
    /** The K rows on the host, (nKvHeads, nNew, headDim), when `needsHostKeys` (see there). */
    hostKeys?: Float32Array,
  ): void {
    if (hostKeys && !this.pendingKeys)
      this.pendingKeys = { k: hostKeys, nNew: positions.length, first: new Int32Array(0) };
    try {
      this.appendEncoded(layer, src, kBase, vBase, posBase, positions);
    } finally {
      if (hostKeys) this.pendingKeys = null;
    }
  }

  /** Whether the policy reads decoded keys when tokens arrive: device-path callers pass hostKeys. */
  get needsHostKeys(): boolean {
    return this.policy.readsKeys === true;
  }

  private appendEncoded(
    layer: number,
    src: GPUBuffer,
    kBase: number,
    vBase: number,
    posBase: number,
    positions: Int32Array,
  ): void {
    const { nKvHeads } = this.shape;
    const nNew = positions.length;
    if (this.rotK || this.rotV)
      ({ src, kBase, vBase, posBase } = this.rotatedRows(src, kBase, vBase, posBase, nNew));
    const base = layer * nKvHeads;
    const first = this.slotCounts(layer);
    this.reserve(layer, Math.max(...first) + nNew);
    const L = this.layers[layer]!;
    if (this.pendingKeys) this.pendingKeys.first = first;
    const common = { nHeadsIn: nKvHeads, nNew, headStride: L.cap, first };
    this.ops.rt.run([
      {
        kernel: this.encK,
        params: encodeParams({ ...common, srcBase: kBase, dstStride: this.kStride, posBase }),
        buffers: [src, L.k, this.statsBuf],
        groups: groupsFor(nKvHeads * nNew),
      },
      {
        kernel: this.encV,
        params: encodeParams({ ...common, srcBase: vBase, dstStride: this.vStride, posBase: NO_POSITIONS }),
        buffers: [src, L.v, this.statsBuf],
        groups: groupsFor(nKvHeads * nNew),
      },
    ]);
    this.traffic.appends++;
    let maxPos = Number.NEGATIVE_INFINITY;
    for (const p of positions) if (p > maxPos) maxPos = p;
    for (let h = 0; h < nKvHeads; h++) {
      const idx = base + h;
      // The rows were encoded into the layer's buffers above; the host store takes the positions.
      const { slots } = this.heads[idx]!;
      slots.reserve(nNew);
      slots.positions.set(positions, first[h]!);
      slots.nSlots += nNew;
      this.account.appended(idx, nNew, maxPos);
      this.policy.onAppend(this.view(layer, h), first[h]!, nNew);
    }
    this.account.counters.appended += nNew;
    this.trackPeak();
  }

  async attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): Promise<void> {
    checkLive("attend", this.disposed);
    checkAttend(this.shape, layer, q, qPositions, out);
    const { nHeads, nKvHeads, headDim: d } = this.shape;
    const nQ = qPositions.length;
    if (nQ === 0) return;
    const group = nHeads / nKvHeads;
    const nRows = group * nQ;
    const qPos = this.groupPositions(qPositions);
    const rt = this.ops.rt;
    const qFloats = nHeads * nQ * d;
    const input = this.ensureBuffer("input", (qFloats + nRows) * 4);
    rt.upload(input, q, 0);
    rt.upload(input, qPos, qFloats * 4);
    this.traffic.uploaded += (qFloats + nRows) * 4;
    const probStride = this.dispatchAttend(layer, input, qFloats, nQ, this.outputFor(qFloats, layer, nRows));
    const probFloats = nKvHeads * nRows * probStride;
    const [o, st] = await rt.read([
      { buf: this.output, bytes: (qFloats + probFloats) * 4 },
      { buf: this.statsBuf, bytes: 8 },
    ]);
    this.traffic.downloaded += (qFloats + probFloats) * 4 + 8;
    this.traffic.probsDownloaded += probFloats * 4;
    const all = new Float32Array(o!);
    out.set(all.subarray(0, qFloats));
    this.applyStats(st!);
    this.afterAttend(layer, all, qFloats, probStride, nRows, qPos);
  }

  /** (nQ) query positions -> (group * nQ), the positions of a KV head's query rows. */
  private groupPositions(qPositions: Int32Array): Int32Array {
    const { nHeads, nKvHeads } = this.shape;
    const group = nHeads / nKvHeads;
    const nQ = qPositions.length;
    if (this.qPosGroup.length < group * nQ) this.qPosGroup = new Int32Array(group * nQ);
    for (let g = 0; g < group; g++) this.qPosGroup.set(qPositions, g * nQ);
    return this.qPosGroup.subarray(0, group * nQ);
  }

  private probStrideFor(layer: number): number {
    if (!this.policy.wantsAttention) return 0;
    return Math.max(...this.slotCounts(layer));
  }

  /** The cache's own output buffer, big enough for out + probabilities of this layer. */
  private outputFor(qFloats: number, layer: number, nRows: number): GPUBuffer {
    const probFloats = this.shape.nKvHeads * nRows * this.probStrideFor(layer);
    return this.ensureBuffer("output", (qFloats + probFloats) * 4);
  }

  /** Record the attention dispatch; returns the probabilities' row stride (0: none). */
  private dispatchAttend(
    layer: number,
    qin: GPUBuffer,
    qPosBase: number,
    nQ: number,
    target: GPUBuffer,
  ): number {
    const { nHeads, nKvHeads, headDim: d } = this.shape;
    const group = nHeads / nKvHeads;
    const probStride = this.probStrideFor(layer);
    const qFloats = nHeads * nQ * d;
    const L = this.layers[layer]!;
    const nSlots = this.slotCounts(layer);
    const args = {
      nQ,
      group,
      scale: 1 / Math.sqrt(d),
      probStride,
      kStride: this.kStride,
      vStride: this.vStride,
      cap: L.cap,
      qPosBase,
      probBase: qFloats,
      nSlots,
      softcap: this.softcap,
    };
    const nRows = group * nQ;
    if (this.rotK) {
      // Rotated keys meet rotated queries: q (nHeads * nQ rows) and the row positions, staged.
      const rq = this.ensureBuffer("rotQ", (qFloats + nRows) * 4);
      this.ops.rt.copy(qin, 0, rq, 0, qFloats * 4);
      this.ops.rt.copy(qin, qPosBase * 4, rq, qFloats * 4, nRows * 4);
      const nq = nHeads * nQ;
      this.ops.rt.run([
        { kernel: this.rotK, params: rotationParams(nq, 0), buffers: [rq], groups: rotationGroups(nq) },
      ]);
      qin = rq;
      qPosBase = qFloats;
      args.qPosBase = qFloats;
    }
    this.dispatchAttendRows(args, layer, qin, target, nRows, probStride, nQ);
    // Rotated values give the rotated output: rotate it back, in place.
    if (this.rotV) {
      const nq = nHeads * nQ;
      this.ops.rt.run([
        {
          kernel: this.rotV.inv,
          params: rotationParams(nq, 0),
          buffers: [target],
          groups: rotationGroups(nq),
        },
      ]);
    }
    return probStride;
  }

  private dispatchAttendRows(
    args: Parameters<typeof attendParams>[0] & { nSlots: Int32Array },
    layer: number,
    qin: GPUBuffer,
    target: GPUBuffer,
    nRows: number,
    probStride: number,
    nQ: number,
  ): void {
    const { nHeads, nKvHeads, headDim: d } = this.shape;
    const qFloats = nHeads * nQ * d;
    const L = this.layers[layer]!;
    const nSlots = args.nSlots;
    let most = 0;
    for (const n of nSlots) most = Math.max(most, n);
    // Split the slots over workgroups when there are many (see attendSplitKernel), keeping the
    // partials within SPLIT_SCRATCH_FLOATS.
    const want = Math.ceil(most / GpuKVCache.splitSlots);
    const room = Math.floor(SPLIT_SCRATCH_FLOATS / (nKvHeads * nRows * (d + 2)));
    const nSplit = Math.max(1, Math.min(want, room));
    this.traffic.attends++;
    if (nSplit === 1) {
      this.ops.rt.run([
        {
          kernel: this.att,
          params: attendParams(args),
          buffers: [qin, L.k, L.v, target],
          groups: [nRows, nKvHeads],
        },
      ]);
      return;
    }
    const splitSlots = Math.ceil(most / nSplit / 64) * 64;
    const partFloats = nKvHeads * nRows * nSplit * (d + 2);
    const probFloats = nKvHeads * nRows * probStride;
    const scratch = this.ensureBuffer("scratch", (partFloats + probFloats) * 4);
    const split = { ...args, probBase: partFloats, nSplit, splitSlots };
    this.ops.rt.run([
      {
        kernel: this.attSplit,
        params: attendSplitParams(split),
        buffers: [qin, L.k, L.v, scratch],
        groups: [nRows, nKvHeads, nSplit],
      },
      {
        kernel: this.attCombine,
        params: attendCombineParams(split),
        buffers: [scratch, target],
        groups: [nRows, nKvHeads],
      },
    ]);
    // Callers find the probabilities after the output, as the single-pass kernel leaves them.
    if (probFloats > 0) this.ops.rt.copy(scratch, partFloats * 4, target, qFloats * 4, probFloats * 4);
  }

  private applyStats(st: ArrayBuffer): void {
    const s = new Uint32Array(st);
    this.account.counters.nonFinite = s[0]!;
    this.account.counters.saturated = s[1]!;
  }

  /** The 8 bytes of encode statistics, for a caller batching its own read-back (see applyStats). */
  statsRange(): { buf: GPUBuffer; bytes: number } {
    return { buf: this.statsBuf, bytes: 8 };
  }

  /** Take encode statistics read through statsRange(). */
  takeStats(st: ArrayBuffer): void {
    this.traffic.downloaded += 8;
    this.applyStats(st);
  }

  /**
   * Attention on the device: `qin` holds q (nHeads, nQ, headDim) f32 at word 0 and the
   * (group * nQ) i32 query-row positions at qPosBase (see groupPositions); the output
   * (nHeads, nQ, headDim) goes to word 0 of `out`. Reads back only the probabilities, and only
   * for policies that want them; otherwise resolves without waiting on the device.
   */
  async attendDevice(
    layer: number,
    qin: GPUBuffer,
    qPosBase: number,
    qPositions: Int32Array,
    out: GPUBuffer,
  ): Promise<void> {
    checkLive("attend", this.disposed);
    checkLayer("attend", layer, this.shape.nLayers);
    const { nHeads, headDim: d, nKvHeads } = this.shape;
    const nQ = qPositions.length;
    const qFloats = nHeads * nQ * d;
    const nRows = (nHeads / nKvHeads) * nQ;
    if (!this.policy.wantsAttention) {
      this.dispatchAttend(layer, qin, qPosBase, nQ, out);
      this.evictLayer(layer);
      return;
    }
    const qPos = this.groupPositions(qPositions).slice();
    const output = this.outputFor(qFloats, layer, nRows);
    const probStride = this.dispatchAttend(layer, qin, qPosBase, nQ, output);
    this.ops.rt.copy(output, 0, out, 0, qFloats * 4);
    const probFloats = nKvHeads * nRows * probStride;
    const [pr] = await this.ops.rt.read([{ buf: output, offset: qFloats * 4, bytes: probFloats * 4 }]);
    this.traffic.downloaded += probFloats * 4;
    this.traffic.probsDownloaded += probFloats * 4;
    // afterAttend indexes probabilities from qFloats: shift by building the same layout.
    const all = new Float32Array(qFloats + probFloats);
    all.set(new Float32Array(pr!), qFloats);
    this.afterAttend(layer, all, qFloats, probStride, nRows, qPos);
  }

  /** Policy hooks after attention (probabilities at `all[probBase..]`), then eviction on the device. */
  private afterAttend(
    layer: number,
    all: Float32Array,
    probBase: number,
    probStride: number,
    nRows: number,
    qPos: Int32Array,
  ): void {
    const { nKvHeads } = this.shape;
    const base = layer * nKvHeads;
    for (let h = 0; h < nKvHeads; h++) {
      if (this.policy.wantsAttention) {
        const n = this.heads[base + h]!.slots.nSlots;
        if (this.probs.length < nRows * n) this.probs = new Float32Array(nRows * n);
        const pr = this.probs.subarray(0, nRows * n);
        for (let r = 0; r < nRows; r++) {
          const from = probBase + (h * nRows + r) * probStride;
          pr.set(all.subarray(from, from + n), r * n);
        }
        this.policy.onAttention(this.view(layer, h), pr, nRows, qPos);
      }
    }
    this.evictLayer(layer);
  }

  /**
   * Evictions once every head of the layer is scored, as the standard cache (policy.ts): its
   * evictFrom per head (the keys' DeviceRows queue each slot move), then the moves on the device.
   */
  private evictLayer(layer: number): void {
    const { nKvHeads } = this.shape;
    for (let h = 0; h < nKvHeads; h++) {
      const idx = layer * nKvHeads + h;
      evictFrom(this.heads[idx]!, this.view(layer, h), idx, this.policy, this.account);
    }
    this.applyMoves(layer, this.moves);
    this.moves = [];
  }

  private applyMoves(layer: number, moves: number[]): void {
    if (moves.length === 0) return;
    const L = this.layers[layer]!;
    const rt = this.ops.rt;
    const mb = this.ensureBuffer("movesBuf", moves.length * 4);
    rt.upload(mb, new Uint32Array(moves));
    this.traffic.uploaded += moves.length * 4;
    rt.run([
      {
        kernel: this.move,
        params: moveParams(moves.length / 2, this.kStride, this.vStride),
        buffers: [L.k, L.v, mb],
        groups: groupsFor(Math.max(this.kStride, this.vStride)),
      },
    ]);
  }

  memory(): CacheMemory {
    checkLive("memory", this.disposed);
    return headsMemory(this.heads, this.policy, this.shape.headDim);
  }

  private trackPeak(): void {
    if (!this.disposed) this.account.track(this.memory().total);
  }

  /** Bus traffic of this cache so far (see the file comment for what each step moves). */
  bus(): BusTraffic {
    return { ...this.traffic };
  }

  stats(): CacheStats {
    return this.account.stats("webgpu");
  }

  reset(): void {
    checkLive("reset", this.disposed);
    for (const h of this.heads) h.clear();
    this.account.reset();
    this.policy.reset();
  }

  /** Free the GPU buffers. Idempotent; afterwards every method but stats() throws (contract.ts). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const L of this.layers) {
      L.k.destroy();
      L.v.destroy();
    }
    for (const b of [this.input, this.output, this.scratch, this.statsBuf, this.movesBuf]) b.destroy();
    this.rotRows?.destroy();
    this.rotQ?.destroy();
    for (const h of this.heads) h.dispose();
  }
}
