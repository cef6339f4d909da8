/**
 * The token-axis store of one (layer, KV head): encoded K and V rows in slots [0, nSlots), their
 * absolute positions, and growth by doubling in executor memory. Order of slots carries no
 * meaning (softmax is permutation invariant and each slot carries its position), which is what
 * lets eviction free a slot in O(1) by moving the last slot into it. CodecRows is one side (K or
 * V) of it seen as a SideStore: rows encoded on arrival by the side's codec.
 */
import type { Executor } from "../kernels/executor.ts";
import type { Codec, EncodedRows, EncodeStats, RowLayout } from "../quant/types.ts";
import { addRowBytes, bytesOf, type MemoryParts } from "./accounting.ts";
import type { SideStore } from "./stores/head.ts";

/** `next` (a larger executor array) holding old's first `keep` elements; old is freed. */
export function regrow<T extends Float32Array | Uint8Array | Uint16Array | Int32Array>(
  exec: Executor,
  old: T,
  next: T,
  keep: number,
): T {
  next.set(old.subarray(0, keep));
  exec.free(old);
  return next;
}

/** The layout of a side a HeadStore does not hold (channel-axis keys, the meter's values). */
export const NO_ROWS: RowLayout = {
  payloadBytes: 0,
  nGroups: 0,
  groupSize: 1,
  scalesPerRow: 0,
  zerosPerRow: 0,
};

export class HeadStore {
  k: EncodedRows;
  v: EncodedRows;
  positions: Int32Array; // (capacity)
  nSlots = 0;
  capacity: number;

  constructor(
    private readonly exec: Executor,
    readonly kLayout: RowLayout,
    readonly vLayout: RowLayout,
    initialCapacity: number,
  ) {
    this.capacity = Math.max(1, initialCapacity);
    const rows = (L: RowLayout, n: number): EncodedRows => ({
      payload: exec.allocU8(L.payloadBytes * n),
      scales: exec.allocU16(L.scalesPerRow * n),
      zeros: exec.allocU16(L.zerosPerRow * n),
    });
    this.k = rows(kLayout, this.capacity);
    this.v = rows(vLayout, this.capacity);
    this.positions = exec.allocI32(this.capacity);
  }

  /** Bytes allocated (capacity slots of K and V rows and positions). */
  physicalBytes(): number {
    const { k, v } = this;
    return bytesOf(k.payload, k.scales, k.zeros, v.payload, v.scales, v.zeros, this.positions);
  }

  /** Make room for `extra` more slots, doubling capacity as needed. */
  reserve(extra: number): void {
    const need = this.nSlots + extra;
    if (need <= this.capacity) return;
    let cap = this.capacity;
    while (cap < need) cap *= 2;
    const { exec, nSlots: n } = this;
    const grow = (old: EncodedRows, L: RowLayout): EncodedRows => ({
      payload: regrow(exec, old.payload, exec.allocU8(cap * L.payloadBytes), n * L.payloadBytes),
      scales: regrow(exec, old.scales, exec.allocU16(cap * L.scalesPerRow), n * L.scalesPerRow),
      zeros: regrow(exec, old.zeros, exec.allocU16(cap * L.zerosPerRow), n * L.zerosPerRow),
    });
    this.k = grow(this.k, this.kLayout);
    this.v = grow(this.v, this.vLayout);
    this.positions = regrow(exec, this.positions, exec.allocI32(cap), n);
    this.capacity = cap;
  }

  /** Move slot `from` into slot `to` (K, V, position). */
  moveSlot(from: number, to: number): void {
    const mv = (rows: EncodedRows, L: RowLayout) => {
      rows.payload.copyWithin(to * L.payloadBytes, from * L.payloadBytes, (from + 1) * L.payloadBytes);
      rows.scales.copyWithin(to * L.scalesPerRow, from * L.scalesPerRow, (from + 1) * L.scalesPerRow);
      rows.zeros.copyWithin(to * L.zerosPerRow, from * L.zerosPerRow, (from + 1) * L.zerosPerRow);
    };
    mv(this.k, this.kLayout);
    mv(this.v, this.vLayout);
    this.positions[to] = this.positions[from]!;
  }

  dispose(): void {
    const { k, v } = this;
    for (const a of [k.payload, k.scales, k.zeros, v.payload, v.scales, v.zeros, this.positions])
      this.exec.free(a);
    this.nSlots = 0;
  }
}

const NONE: EncodeStats = Object.freeze({ nonFinite: 0, saturated: 0 });

/** One side of a HeadStore (its K or its V rows) in a token-axis codec, encoded on arrival. */
export class CodecRows implements SideStore {
  constructor(
    private readonly exec: Executor,
    readonly codec: Codec,
    private readonly slots: HeadStore,
    private readonly side: "k" | "v",
    private readonly headDim: number,
  ) {}

  write(src: Float32Array, first: number, n: number): EncodeStats {
    return this.exec.encodeRows(this.codec, src, n, this.headDim, this.slots[this.side], first);
  }

  rewrite(slot: number, row: Float32Array): EncodeStats {
    return this.write(row, slot, 1);
  }

  decode(first: number, n: number, dst: Float32Array): void {
    this.exec.decodeRows(this.codec, this.slots[this.side], first, n, this.headDim, dst);
  }

  addMemory(p: MemoryParts, nSlots: number): void {
    addRowBytes(p, nSlots, this.side === "k" ? this.slots.kLayout : this.slots.vLayout);
  }

  // The rows live in the HeadStore, which grows, moves and frees them.
  flush = () => NONE;
  physicalBytes = () => 0;
  grow(): void {}
  release(): void {}
  move(): void {}
  clear(): void {}
  dispose(): void {}
}
