/**
 * Per-slot policy state (scores, counters, last-use times) for every (layer, KV head), kept in
 * step with the cache's slots: grown on append, moved on the cache's swap-remove, and counted
 * in stateBytes() at the size a real implementation would store (`bytesPerSlot`).
 */
import type { KVShape } from "../types.ts";

export class SlotState {
  private readonly data: Float64Array[] = []; // per head: (capacity)
  private readonly counts: Int32Array; // per head: retained slots
  private readonly nKvHeads: number;

  constructor(
    shape: KVShape,
    readonly bytesPerSlot: number,
  ) {
    this.nKvHeads = shape.nKvHeads;
    for (let i = 0; i < shape.nLayers * shape.nKvHeads; i++) this.data.push(new Float64Array(16));
    this.counts = new Int32Array(shape.nLayers * shape.nKvHeads);
  }

  /** The state of one head, grown to hold at least n slots; records n as its slot count. */
  at(layer: number, kvHead: number, n: number): Float64Array {
    const idx = layer * this.nKvHeads + kvHead;
    let a = this.data[idx]!;
    if (a.length < n) {
      let cap = a.length;
      while (cap < n) cap *= 2;
      const next = new Float64Array(cap);
      next.set(a);
      this.data[idx] = a = next;
    }
    this.counts[idx] = n;
    return a;
  }

  /** Record that a head now retains n slots (after evictions). */
  setCount(layer: number, kvHead: number, n: number): void {
    this.counts[layer * this.nKvHeads + kvHead] = n;
  }

  move(layer: number, kvHead: number, from: number, to: number): void {
    const a = this.data[layer * this.nKvHeads + kvHead]!;
    a[to] = a[from]!;
  }

  bytes(): number {
    let n = 0;
    for (const c of this.counts) n += c;
    return n * this.bytesPerSlot;
  }

  reset(): void {
    this.counts.fill(0);
  }
}
