/**
 * KIVI's full-precision window for values (Liu et al. 2024, arXiv:2402.02750, Alg. 1): the
 * newest `residual` tokens of a KV head keep their values in f32; a token's value row is
 * quantized per token (the cache's value codec) once it is no longer among them. Slot-addressed
 * like the rest of the store, so eviction and swap-remove work unchanged; memory() counts
 * residual rows at f32 (part `residual`) and only the other rows at the codec's size.
 */
import type { Executor } from "../kernels/executor.ts";
import type { Codec, EncodeStats } from "../quant/types.ts";
import type { HeadStore } from "./head-store.ts";

export class ValueResidual {
  resid: Float32Array; // (capacity, headDim) f32 rows of residual slots
  inResid: Uint8Array; // (capacity) 1 while the slot's value is in the residual
  nResidual = 0;

  constructor(
    private readonly exec: Executor,
    readonly headDim: number,
    readonly residual: number,
    capacity: number,
  ) {
    this.resid = exec.allocF32(capacity * headDim);
    this.inResid = exec.allocU8(capacity);
  }

  grow(cap: number, nSlots: number): void {
    const resid = this.exec.allocF32(cap * this.headDim);
    resid.set(this.resid.subarray(0, nSlots * this.headDim));
    const flags = this.exec.allocU8(cap);
    flags.set(this.inResid.subarray(0, nSlots));
    this.dispose();
    this.resid = resid;
    this.inResid = flags;
  }

  /** Store n new values src (n, headDim) at slots [first, first + n). */
  /** Bytes allocated: the f32 rows at capacity and the per-slot flags. */
  physicalBytes(): number {
    return this.resid.byteLength + this.inResid.byteLength;
  }

  write(src: Float32Array, first: number, n: number): void {
    this.resid.set(src.subarray(0, n * this.headDim), first * this.headDim);
    this.inResid.fill(1, first, first + n);
    this.nResidual += n;
  }

  /** Encode the values of residual slots beyond the newest `residual` into store.v. */
  flush(store: HeadStore, vCodec: Codec): EncodeStats {
    const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
    const over = this.nResidual - this.residual;
    if (over <= 0) return stats;
    const slots: number[] = [];
    for (let j = 0; j < store.nSlots; j++) if (this.inResid[j]) slots.push(j);
    slots.sort((a, b) => store.positions[a]! - store.positions[b]!);
    const d = this.headDim;
    for (const slot of slots.slice(0, over)) {
      const s = this.exec.encodeRows(
        vCodec,
        this.resid.subarray(slot * d, (slot + 1) * d),
        1,
        d,
        store.v,
        slot,
      );
      stats.nonFinite += s.nonFinite;
      stats.saturated += s.saturated;
      this.inResid[slot] = 0;
    }
    this.nResidual -= over;
    return stats;
  }

  release(slot: number): void {
    if (this.inResid[slot]) this.nResidual--;
  }

  move(from: number, to: number): void {
    const d = this.headDim;
    this.resid.copyWithin(to * d, from * d, (from + 1) * d);
    this.inResid[to] = this.inResid[from]!;
  }

  /** Decode slots [0, n) into dst (n, headDim): residual rows as stored, others through the codec. */
  decode(store: HeadStore, vCodec: Codec, n: number, dst: Float32Array): void {
    const d = this.headDim;
    // Runs of consecutive codec rows go to the executor in one call (one kernel call per run,
    // not per row: in append order that is a single run of everything older than the window).
    let j = 0;
    while (j < n) {
      if (this.inResid[j]) {
        dst.set(this.resid.subarray(j * d, (j + 1) * d), j * d);
        j++;
        continue;
      }
      let end = j + 1;
      while (end < n && !this.inResid[end]) end++;
      this.exec.decodeRows(vCodec, store.v, j, end - j, d, dst.subarray(j * d, end * d));
      j = end;
    }
  }

  clear(): void {
    this.nResidual = 0;
  }

  dispose(): void {
    this.exec.free(this.resid);
    this.exec.free(this.inResid);
  }
}
