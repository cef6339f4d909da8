/**
 * What every cache counts and how it states its bytes: one module for the standard cache
 * (kv-cache.ts, where each store adds its own parts: stores/head.ts) and the GPU-resident one
 * (src/gpu/kv-cache.ts), so that both report the same counters, eviction ages and CacheMemory
 * from the same arithmetic.
 */
import type { ExecutorName } from "../kernels/executor.ts";
import type { EncodeStats, RowLayout } from "../quant/types.ts";
import type { CacheMemory, CacheStats, PhysicalMemory } from "./types.ts";

/** Bytes of the typed arrays given (what they hold as allocated). */
export function bytesOf(...arrays: ArrayBufferView[]): number {
  let n = 0;
  for (const a of arrays) n += a.byteLength;
  return n;
}

/** PhysicalMemory from its parts (total filled in). */
export function physicalMemory(p: Omit<PhysicalMemory, "total">): PhysicalMemory {
  return { ...p, total: p.stores + p.residual + p.scratch + p.diagnostics + p.policyState };
}

/** Byte parts of a cache (see CacheMemory) and the token slots, summed as rows and stores are visited. */
export type MemoryParts = Omit<CacheMemory, "total" | "elements" | "bitsPerElement" | "tokenSlots"> & {
  slots: number;
};

export function emptyParts(): MemoryParts {
  return { payload: 0, scales: 0, zeros: 0, residual: 0, indices: 0, policyState: 0, slots: 0 };
}

/** Add the bytes of n rows stored in layout L (one side; tokens are counted by their store). */
export function addRowBytes(p: MemoryParts, n: number, L: RowLayout): void {
  p.payload += n * L.payloadBytes;
  p.scales += n * 2 * L.scalesPerRow;
  p.zeros += n * 2 * L.zerosPerRow;
}

/** Add n retained tokens whose key and value rows are stored in layouts kL and vL. */
export function addRows(p: MemoryParts, n: number, kL: RowLayout, vL: RowLayout): void {
  addRowBytes(p, n, kL);
  addRowBytes(p, n, vL);
  p.slots += n;
}

/** Count of non-finite values in x (inputs kept in f32 windows, where no codec counts them). */
export function nonFinite(x: Float32Array): number {
  let n = 0;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) n++;
  return n;
}

/** CacheMemory of the parts: total, K/V elements (slots x headDim x 2) and bits per element. */
export function cacheMemory(p: MemoryParts, headDim: number): CacheMemory {
  const { slots, ...parts } = p; // parts in CacheMemory's order: payload ... policyState
  const total = p.payload + p.scales + p.zeros + p.residual + p.indices + p.policyState;
  const elements = slots * headDim * 2;
  const bitsPerElement = elements ? (total * 8) / elements : 0;
  return { ...parts, total, elements, bitsPerElement, tokenSlots: slots };
}

/** Running counters of one cache, per (layer, KV head) where they are per head. */
export class CacheAccount {
  readonly counters = { appended: 0, evicted: 0, nonFinite: 0, saturated: 0, peakBytes: 0 };
  private peakPhysical = 0;
  private physical: PhysicalMemory | undefined;
  private readonly ages = { sum: 0, max: 0, hist: [] as number[] };
  /** Tokens appended to each (layer, KV head) since reset: (nLayers * nKvHeads). */
  readonly seen: Int32Array;
  /** Largest position appended to each (layer, KV head): (nLayers * nKvHeads). */
  readonly newest: Float64Array;

  constructor(nHeadsTotal: number) {
    this.seen = new Int32Array(nHeadsTotal);
    this.newest = new Float64Array(nHeadsTotal).fill(Number.NEGATIVE_INFINITY);
  }

  /** Add an encode's non-finite inputs and saturated values. */
  encoded(s: EncodeStats): void {
    this.counters.nonFinite += s.nonFinite;
    this.counters.saturated += s.saturated;
  }

  /** n tokens up to position maxPos were appended to head idx. */
  appended(idx: number, n: number, maxPos: number): void {
    this.seen[idx]! += n;
    if (maxPos > this.newest[idx]!) this.newest[idx] = maxPos;
  }

  /** One token at `position` left head idx: counted, with its age against the newest appended. */
  evicted(idx: number, position: number): void {
    const age = Math.max(0, this.newest[idx]! - position);
    this.ages.sum += age;
    if (age > this.ages.max) this.ages.max = age;
    const bucket = age === 0 ? 0 : Math.floor(Math.log2(age)) + 1;
    while (this.ages.hist.length <= bucket) this.ages.hist.push(0);
    this.ages.hist[bucket]!++;
    this.counters.evicted++;
  }

  /** Keep the peak of memory().total (and of the physical bytes, for caches that measure them). */
  track(total: number, physical?: PhysicalMemory): void {
    if (total > this.counters.peakBytes) this.counters.peakBytes = total;
    if (physical) {
      this.physical = physical;
      if (physical.total > this.peakPhysical) this.peakPhysical = physical.total;
    }
  }

  stats(executor: ExecutorName, extra: Partial<CacheStats> = {}): CacheStats {
    const n = this.counters.evicted;
    return {
      ...this.counters,
      executor,
      evictionAge: {
        mean: n ? this.ages.sum / n : 0,
        max: this.ages.max,
        log2Histogram: [...this.ages.hist],
      },
      ...(this.physical ? { physical: this.physical, peakPhysicalBytes: this.peakPhysical } : {}),
      ...extra,
    };
  }

  /** A new sequence: per-head counts and the peak restart; totals (appended, evicted, ages) run on. */
  reset(): void {
    this.seen.fill(0);
    this.newest.fill(Number.NEGATIVE_INFINITY);
    this.counters.peakBytes = 0;
    this.peakPhysical = 0;
  }
}
