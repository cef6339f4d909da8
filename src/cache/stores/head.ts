/**
 * One (layer, KV head) as composed stores (like transformers' list of per-layer cache objects):
 * the token-axis HeadStore and one SideStore per side over its slots, chosen once per cache:
 * CodecRows (head-store.ts), ChannelKeys (channel-keys.ts, KIVI keys) or ValueResidual
 * (value-residual.ts, KIVI's value window). Growth, swap-remove, bytes and reset go through
 * here, so the cache never asks which kind a side is. Each store states its own bytes.
 */
import type { EncodeStats } from "../../quant/types.ts";
import { type CacheAccount, cacheMemory, emptyParts, type MemoryParts } from "../accounting.ts";
import type { HeadStore } from "../head-store.ts";
import type { Merger } from "../merge.ts";
import type { HeadView, RetentionPolicy } from "../policy.ts";
import type { CacheMemory } from "../types.ts";

/** How one side (keys or values) of a Head is held over its HeadStore's slots. */
export interface SideStore {
  /** Store rows src (n, headDim) at slots [first, first + n) (reserved, not yet counted in nSlots). */
  write(src: Float32Array, first: number, n: number): EncodeStats;
  /** After new slots are counted: quantize what left a full-precision window (oldest by position first). */
  flush(positions: Int32Array, nSlots: number): EncodeStats;
  /**
   * Optional: replace the row of retained slot `slot` by row (headDim), encoded as the side
   * stores that slot now (merging on eviction, merge.ts). A side without it cannot merge.
   */
  rewrite?(slot: number, row: Float32Array): EncodeStats;
  /** Decode slots [first, first + n) into dst (n, headDim), as stored. */
  decode(first: number, n: number, dst: Float32Array): void;
  /** Add this side's exact bytes for nSlots retained slots, by part. groupIds: slots not in append order. */
  addMemory(p: MemoryParts, nSlots: number, groupIds: boolean): void;
  /** Slot `slot` is being evicted (called before any slot moves into it). */
  release(slot: number): void;
  /** Slot `from` moved into slot `to` (swap-remove). */
  move(from: number, to: number): void;
  /** Bytes allocated beyond the HeadStore's rows (f32 windows, channel codes). */
  physicalBytes(): number;
  /** The HeadStore grew to `cap` slots, of which nSlots are in use. */
  grow(cap: number, nSlots: number): void;
  clear(): void;
  dispose(): void;
}

export class Head {
  private readonly sides: SideStore[]; // keys, values

  constructor(
    readonly slots: HeadStore,
    readonly keys: SideStore,
    readonly values: SideStore,
  ) {
    this.sides = [keys, values];
  }

  /** Store n tokens: keys and values (n, headDim) in their stored form, positions (n). Returns the first slot. */
  append(k: Float32Array, v: Float32Array, positions: Int32Array, n: number, account: CacheAccount): number {
    const { slots } = this;
    const before = slots.capacity;
    slots.reserve(n);
    if (slots.capacity !== before) for (const s of this.sides) s.grow(slots.capacity, slots.nSlots);
    const first = slots.nSlots;
    account.encoded(this.keys.write(k, first, n));
    account.encoded(this.values.write(v, first, n));
    slots.positions.set(positions, first);
    slots.nSlots += n;
    account.encoded(this.values.flush(slots.positions, slots.nSlots));
    account.encoded(this.keys.flush(slots.positions, slots.nSlots));
    return first;
  }

  /** Free slots by swap-remove, largest first; onMove is told of each move (the policy's slot state). */
  remove(drop: number[], onMove?: (from: number, to: number) => void): void {
    const { slots, sides } = this;
    drop.sort((a, b) => b - a);
    for (const slot of drop) {
      for (const s of sides) s.release(slot);
      const last = slots.nSlots - 1;
      if (slot !== last) {
        slots.moveSlot(last, slot);
        for (const s of sides) s.move(last, slot);
        onMove?.(last, slot);
      }
      slots.nSlots--;
    }
  }

  /** Exact bytes of the retained tokens, by part (tokens counted as slots). */
  addMemory(p: MemoryParts, groupIds: boolean): void {
    p.slots += this.slots.nSlots;
    for (const s of this.sides) s.addMemory(p, this.slots.nSlots, groupIds);
  }

  /** Allocated bytes: the HeadStore's rows (part stores) and what the sides hold beside them (residual). */
  addPhysical(p: { stores: number; residual: number }): void {
    p.stores += this.slots.physicalBytes();
    p.residual += this.keys.physicalBytes() + this.values.physicalBytes();
  }

  clear(): void {
    this.slots.nSlots = 0;
    for (const s of this.sides) s.clear();
  }

  dispose(): void {
    this.slots.dispose();
    for (const s of this.sides) s.dispose();
  }
}

/** What a policy sees of one (layer, KV head): its slots, positions, tokens seen and decoded keys. */
export function headView(head: Head, layer: number, kvHead: number, seen: number): HeadView {
  const { slots, keys } = head;
  return {
    layer,
    kvHead,
    nSlots: slots.nSlots,
    positions: slots.positions,
    seen,
    decodeKeys: (dst, first = 0, n = slots.nSlots) => keys.decode(first, n, dst),
  };
}

/**
 * Drop what the policy evicts from one head (head `idx` in the account): ages counted, dropped
 * values merged into kept slots where the policy merges (merge.ts), then swap-remove with the
 * policy told of each move. Every cache's eviction (standard and GPU) is this.
 */
export function evictFrom(
  head: Head,
  view: HeadView,
  idx: number,
  policy: RetentionPolicy,
  account: CacheAccount,
  merger?: Merger,
): void {
  const drop = policy.evictions(view);
  if (drop.length === 0) return;
  for (const slot of drop) account.evicted(idx, head.slots.positions[slot]!);
  if (merger) account.encoded(merger.merge(view.layer, view.kvHead, head, drop));
  head.remove(drop, (from, to) => policy.onMove(view.layer, view.kvHead, from, to));
  merger?.kept(view.layer, view.kvHead, head.slots.nSlots);
}

/** Exact bytes of the tokens the heads retain, by part (CacheMemory), for a cache with `policy`. */
export function headsMemory(heads: Iterable<Head>, policy: RetentionPolicy, headDim: number): CacheMemory {
  const p = emptyParts();
  // Group ids are implicit only while slots stay in append order (no policy eviction).
  const groupIds = policy.name !== "full";
  for (const h of heads) h.addMemory(p, groupIds);
  if (!policy.positionsImplicit) p.indices += p.slots * 4;
  p.policyState = policy.stateBytes();
  return cacheMemory(p, headDim);
}
