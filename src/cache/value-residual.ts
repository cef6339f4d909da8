/**
 * KIVI's full-precision window for values (Liu et al. 2024, arXiv:2402.02750, Alg. 1), a
 * SideStore over a HeadStore's slots: the newest `residual` values of a KV head stay f32; older
 * ones are encoded per token by the value codec into the V rows. addMemory counts the window at
 * f32 (part residual), the rest at the codec's size.
 */
import type { ChannelAttendArgs, Executor } from "../kernels/executor.ts";
import type { Codec, EncodeStats } from "../quant/types.ts";
import { addRowBytes, type MemoryParts, nonFinite } from "./accounting.ts";
import { type HeadStore, regrow } from "./head-store.ts";
import type { SideStore } from "./stores/head.ts";

export class ValueResidual implements SideStore {
  resid: Float32Array; // (capacity, headDim) f32 rows of residual slots
  inResid: Uint8Array; // (capacity) 1 while the slot's value is in the residual
  nResidual = 0;

  constructor(
    private readonly exec: Executor,
    readonly codec: Codec,
    private readonly slots: HeadStore,
    readonly headDim: number,
    readonly residual: number,
  ) {
    this.resid = exec.allocF32(slots.capacity * headDim);
    this.inResid = exec.allocU8(slots.capacity);
  }

  grow(cap: number, nSlots: number): void {
    const { exec, headDim: d } = this;
    this.resid = regrow(exec, this.resid, exec.allocF32(cap * d), nSlots * d);
    this.inResid = regrow(exec, this.inResid, exec.allocU8(cap), nSlots);
  }

  /** Bytes allocated: the f32 rows at capacity and the per-slot flags. */
  physicalBytes = () => this.resid.byteLength + this.inResid.byteLength;

  /** Store n new values src (n, headDim) at slots [first, first + n), in the window. */
  write(src: Float32Array, first: number, n: number): EncodeStats {
    this.resid.set(src.subarray(0, n * this.headDim), first * this.headDim);
    this.inResid.fill(1, first, first + n);
    this.nResidual += n;
    return { nonFinite: nonFinite(src.subarray(0, n * this.headDim)), saturated: 0 };
  }

  /** Encode the values of window slots beyond the newest `residual` into the V rows. */
  flush(positions: Int32Array, nSlots: number): EncodeStats {
    const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
    const over = this.nResidual - this.residual;
    if (over <= 0) return stats;
    const order: number[] = [];
    for (let j = 0; j < nSlots; j++) if (this.inResid[j]) order.push(j);
    order.sort((a, b) => positions[a]! - positions[b]!);
    const d = this.headDim;
    for (const slot of order.slice(0, over)) {
      const row = this.resid.subarray(slot * d, (slot + 1) * d);
      const s = this.exec.encodeRows(this.codec, row, 1, d, this.slots.v, slot);
      stats.nonFinite += s.nonFinite;
      stats.saturated += s.saturated;
      this.inResid[slot] = 0;
    }
    this.nResidual -= over;
    return stats;
  }

  /** Replace slot's value: in the window as f32, else encoded into the V rows (merge.ts). */
  rewrite(slot: number, row: Float32Array): EncodeStats {
    const d = this.headDim;
    if (!this.inResid[slot]) return this.exec.encodeRows(this.codec, row, 1, d, this.slots.v, slot);
    this.resid.set(row.subarray(0, d), slot * d);
    return { nonFinite: nonFinite(row.subarray(0, d)), saturated: 0 };
  }

  release(slot: number): void {
    if (this.inResid[slot]) this.nResidual--;
  }

  move(from: number, to: number): void {
    const d = this.headDim;
    this.resid.copyWithin(to * d, from * d, (from + 1) * d);
    this.inResid[to] = this.inResid[from]!;
  }

  /** The values as the executor's channel attention reads them in place (no f32 copy). */
  attendRows(): NonNullable<ChannelAttendArgs["values"]> {
    return { codec: this.codec, rows: this.slots.v, inResid: this.inResid, resid: this.resid };
  }

  /** Decode slots [first, first + n) into dst (n, headDim): window rows as stored, others through the codec. */
  decode(first: number, n: number, dst: Float32Array): void {
    const d = this.headDim;
    // One kernel call for all rows (codecs decode row by row), then the window's rows over theirs.
    this.exec.decodeRows(this.codec, this.slots.v, first, n, d, dst);
    for (let j = first; j < first + n; j++)
      if (this.inResid[j]) dst.set(this.resid.subarray(j * d, (j + 1) * d), (j - first) * d);
  }

  addMemory(p: MemoryParts, nSlots: number): void {
    addRowBytes(p, nSlots - this.nResidual, this.slots.vLayout);
    p.residual += this.nResidual * this.headDim * 4;
  }

  clear(): void {
    this.nResidual = 0;
  }

  dispose(): void {
    this.exec.free(this.resid);
    this.exec.free(this.inResid);
  }
}
