/**
 * Channel-axis keys of one (layer, KV head) (KIVI / KVQuant, src/quant/channel.ts), a SideStore
 * (stores/head.ts): new keys wait in an f32 residual; once `residual` of them have gathered, the
 * oldest whole groups of G tokens are quantized together, each channel with its own scale (and
 * zero-point). Slot-addressed like every store, so eviction is the same swap-remove; a group's
 * scales are freed when its last token leaves. Per slot: a code row (or an f32 residual row) and
 * its group id (-1 = residual), counted as indices when slots are not in append order.
 */
import type { ChannelKeyRows, Executor } from "../kernels/executor.ts";
import { type ChannelQuantOptions, channelCodeBytes } from "../quant/channel.ts";
import type { EncodeStats } from "../quant/types.ts";
import { bytesOf, type MemoryParts, nonFinite } from "./accounting.ts";
import { regrow } from "./head-store.ts";
import type { SideStore } from "./stores/head.ts";

export interface ChannelKeySettings extends ChannelQuantOptions {
  /** Tokens per quantization group (along tokens). */
  group: number;
  /** Full-precision tokens gathered before groups are quantized (>= group). */
  residual: number;
}

export class ChannelKeys implements SideStore {
  readonly codeBytes: number;
  codes: Uint8Array; // (capacity, codeBytes)
  groupOf: Int32Array; // (capacity) group id, -1 = still in the residual
  resid: Float32Array; // (capacity, headDim) f32 rows of residual slots
  gScales: Uint16Array = new Uint16Array(0); // (groupCapacity, headDim) f16
  gZeros: Uint16Array = new Uint16Array(0); // (groupCapacity, headDim) f16 (asymmetric only)
  gRefs = new Int32Array(0); // (groupCapacity) tokens still in each group
  private freeGroups: number[] = [];
  private groupCap = 0;
  private highWater = 0; // group ids ever handed out (free ones are reused first)
  // Flush scratch in the executor's memory (reused; kernels read it in place).
  private block: Float32Array = new Float32Array(0); // (group, headDim)
  private offs: Int32Array = new Int32Array(0); // (group) byte offset of each token's code row
  nResidual = 0;
  nGroups = 0;

  constructor(
    private readonly exec: Executor,
    readonly headDim: number,
    readonly settings: ChannelKeySettings,
    capacity: number,
  ) {
    this.codeBytes = channelCodeBytes(settings.bits, headDim);
    this.codes = exec.allocU8(capacity * this.codeBytes);
    this.groupOf = exec.allocI32(capacity);
    this.resid = exec.allocF32(capacity * headDim);
  }

  /** Grow to `cap` slots, keeping the first nSlots. */
  grow(cap: number, nSlots: number): void {
    const { exec, codeBytes: cb, headDim: d } = this;
    this.codes = regrow(exec, this.codes, exec.allocU8(cap * cb), nSlots * cb);
    this.groupOf = regrow(exec, this.groupOf, exec.allocI32(cap), nSlots);
    this.resid = regrow(exec, this.resid, exec.allocF32(cap * d), nSlots * d);
  }

  /** Store n new keys src (n, headDim) at slots [first, first + n) in the residual (counted there: no codec sees them yet). */
  write(src: Float32Array, first: number, n: number): EncodeStats {
    this.resid.set(src.subarray(0, n * this.headDim), first * this.headDim);
    this.groupOf.fill(-1, first, first + n);
    this.nResidual += n;
    return { nonFinite: nonFinite(src.subarray(0, n * this.headDim)), saturated: 0 };
  }

  /**
   * Quantize the oldest whole groups of the residual once it holds `residual` tokens (KIVI
   * flushes its residual block this way). positions: (nSlots) to order tokens by age.
   */
  flush(positions: Int32Array, nSlots: number): EncodeStats {
    const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
    const { group: G, residual: R } = this.settings;
    if (this.nResidual < Math.max(R, G)) return stats;
    const slots: number[] = [];
    for (let j = 0; j < nSlots; j++) if (this.groupOf[j] === -1) slots.push(j);
    slots.sort((a, b) => positions[a]! - positions[b]!);
    const nFlush = Math.floor(slots.length / G) * G;
    const d = this.headDim;
    if (nFlush > 0 && this.offs.length < G) {
      this.exec.free(this.block);
      this.exec.free(this.offs);
      this.block = this.exec.allocF32(G * d);
      this.offs = this.exec.allocI32(G);
    }
    const { block, offs, exec, settings, codes } = this;
    for (let g0 = 0; g0 < nFlush; g0 += G) {
      const gid = this.newGroup();
      for (let t = 0; t < G; t++) {
        const slot = slots[g0 + t]!;
        block.set(this.resid.subarray(slot * d, (slot + 1) * d), t * d);
        offs[t] = slot * this.codeBytes;
        this.groupOf[slot] = gid;
      }
      const s = exec.channelQuantize(block, G, d, settings, codes, offs, this.gScales, this.gZeros, gid * d);
      stats.nonFinite += s.nonFinite;
      stats.saturated += s.saturated;
      this.gRefs[gid] = G;
    }
    this.nResidual -= nFlush;
    return stats;
  }

  /** Bytes allocated: codes, group ids, f32 residual rows, group scales/zeros/refs, flush scratch. */
  physicalBytes(): number {
    const { codes, groupOf, resid, gScales, gZeros, gRefs, block, offs } = this;
    return bytesOf(codes, groupOf, resid, gScales, gZeros, gRefs, block, offs);
  }

  private newGroup(): number {
    this.nGroups++;
    const free = this.freeGroups.pop();
    if (free !== undefined) return free;
    if (this.highWater >= this.groupCap) {
      const cap = Math.max(4, this.groupCap * 2);
      const { exec, headDim: d } = this;
      this.gScales = regrow(exec, this.gScales, exec.allocU16(cap * d), this.gScales.length);
      this.gZeros = regrow(exec, this.gZeros, exec.allocU16(cap * d), this.gZeros.length);
      const r = new Int32Array(cap);
      r.set(this.gRefs);
      this.gRefs = r;
      this.groupCap = cap;
    }
    return this.highWater++;
  }

  /** A slot is being evicted: release its group's reference (before the store moves slots). */
  release(slot: number): void {
    const g = this.groupOf[slot]!;
    if (g === -1) this.nResidual--;
    else if (--this.gRefs[g]! === 0) {
      this.freeGroups.push(g);
      this.nGroups--;
    }
  }

  move(from: number, to: number): void {
    const { codeBytes: cb, headDim: d } = this;
    this.codes.copyWithin(to * cb, from * cb, (from + 1) * cb);
    this.resid.copyWithin(to * d, from * d, (from + 1) * d);
    this.groupOf[to] = this.groupOf[from]!;
  }

  /** The storage as the executor's channel ops take it. */
  rows(): ChannelKeyRows {
    const { codes, codeBytes, groupOf, resid, gScales: scales, gZeros: zeros } = this;
    return { codes, codeBytes, groupOf, resid, scales, zeros };
  }

  /** Decode slots [first, first + n) into dst (n, headDim). */
  decode(first: number, n: number, dst: Float32Array): void {
    this.exec.channelDecode(this.rows(), this.headDim, this.settings, first, n, dst);
  }

  /** Exact bytes of the retained slots, by part. groupIds: whether group ids are stored. */
  addMemory(p: MemoryParts, nSlots: number, groupIds: boolean): void {
    const nQuant = nSlots - this.nResidual;
    const d = this.headDim;
    p.payload += nQuant * this.codeBytes;
    p.scales += this.nGroups * d * 2;
    p.zeros += this.settings.symmetric ? 0 : this.nGroups * d * 2;
    p.residual += this.nResidual * d * 4;
    p.indices += groupIds ? nQuant * 4 : 0;
  }

  clear(): void {
    this.nResidual = 0;
    this.nGroups = 0;
    this.freeGroups = [];
    this.groupCap = 0;
    this.highWater = 0;
    this.exec.free(this.gScales);
    this.exec.free(this.gZeros);
    this.gScales = new Uint16Array(0);
    this.gZeros = new Uint16Array(0);
    this.gRefs = new Int32Array(0);
  }

  dispose(): void {
    const { codes, groupOf, resid, gScales, gZeros, block, offs } = this;
    for (const a of [codes, groupOf, resid, gScales, gZeros, block, offs]) this.exec.free(a);
  }
}
