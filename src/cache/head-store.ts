/**
 * Storage of one (layer, KV head): encoded K and V rows in slots [0, nSlots), their absolute
 * positions, and growth by doubling in executor memory. Order of slots carries no meaning
 * (softmax is permutation invariant and each slot carries its position), which is what lets
 * eviction free a slot in O(1) by moving the last slot into it.
 */
import type { Executor } from "../kernels/executor.ts";
import type { EncodedRows, RowLayout } from "../quant/types.ts";

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
    this.k = this.allocRows(kLayout, this.capacity);
    this.v = this.allocRows(vLayout, this.capacity);
    this.positions = exec.allocI32(this.capacity);
  }

  /** Bytes allocated (capacity slots of K and V rows and positions). */
  physicalBytes(): number {
    const { k, v } = this;
    return (
      k.payload.byteLength +
      k.scales.byteLength +
      k.zeros.byteLength +
      v.payload.byteLength +
      v.scales.byteLength +
      v.zeros.byteLength +
      this.positions.byteLength
    );
  }

  private allocRows(layout: RowLayout, n: number): EncodedRows {
    return {
      payload: this.exec.allocU8(layout.payloadBytes * n),
      scales: this.exec.allocU16(layout.scalesPerRow * n),
      zeros: this.exec.allocU16(layout.zerosPerRow * n),
    };
  }

  private freeRows(rows: EncodedRows): void {
    this.exec.free(rows.payload);
    this.exec.free(rows.scales);
    this.exec.free(rows.zeros);
  }

  /** Make room for `extra` more slots, doubling capacity as needed. */
  reserve(extra: number): void {
    const need = this.nSlots + extra;
    if (need <= this.capacity) return;
    let cap = this.capacity;
    while (cap < need) cap *= 2;
    const grow = (old: EncodedRows, layout: RowLayout): EncodedRows => {
      const next = this.allocRows(layout, cap);
      next.payload.set(old.payload.subarray(0, this.nSlots * layout.payloadBytes));
      next.scales.set(old.scales.subarray(0, this.nSlots * layout.scalesPerRow));
      next.zeros.set(old.zeros.subarray(0, this.nSlots * layout.zerosPerRow));
      this.freeRows(old);
      return next;
    };
    this.k = grow(this.k, this.kLayout);
    this.v = grow(this.v, this.vLayout);
    const pos = this.exec.allocI32(cap);
    pos.set(this.positions.subarray(0, this.nSlots));
    this.exec.free(this.positions);
    this.positions = pos;
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
    this.freeRows(this.k);
    this.freeRows(this.v);
    this.exec.free(this.positions);
    this.nSlots = 0;
  }
}
