/**
 * Policy tiered's older tier (policies/tiered.ts; cf. KVQuant's dense-and-sparse, MiKV
 * arXiv:2402.18096): a second Head per (layer, KV head) in a cheaper codec. After each attend,
 * hot tokens past the recent window are re-encoded into it once; past the budget its oldest go.
 */
import type { Executor } from "../../kernels/executor.ts";
import { makeCodec } from "../../quant/registry.ts";
import type { CacheAccount } from "../accounting.ts";
import { CodecRows, HeadStore } from "../head-store.ts";
import { shareOf } from "../policies/options.ts";
import { resolveCount, type TierSpec } from "../policy.ts";
import { Head } from "./head.ts";

/** The older tier: n Heads (one per (layer, KV head)) sharing the tier's codecs. */
export function coldHeads(exec: Executor, tiers: TierSpec, d: number, initial: number, n: number): Head[] {
  const k = makeCodec(tiers.keys, "cache.policy.codec.keys");
  const v = makeCodec(tiers.values, "cache.policy.codec.values");
  return Array.from({ length: n }, () => {
    const s = new HeadStore(exec, k.layout(d), v.layout(d), initial);
    return new Head(s, new CodecRows(exec, k, s, "k", d), new CodecRows(exec, v, s, "v", d));
  });
}

/** The n slots of `store` with the smallest positions, oldest first. */
function oldest(store: HeadStore, n: number): number[] {
  const order = Array.from({ length: store.nSlots }, (_, i) => i);
  order.sort((a, b) => store.positions[a]! - store.positions[b]!);
  return order.slice(0, n);
}

/**
 * Demote hot tokens past the recent window into `cold` (decoded, re-encoded once), then evict
 * cold's oldest past the budget. Returns the number of tokens demoted.
 */
export function tierStep(
  idx: number,
  hot: Head,
  cold: Head,
  tiers: TierSpec,
  acc: CacheAccount,
  d: number,
): number {
  const h = hot.slots;
  const c = cold.slots;
  const b = resolveCount(tiers.budget, acc.seen[idx]!);
  const nDemote = h.nSlots - shareOf(tiers.recent, b);
  if (nDemote > 0) {
    const demote = oldest(h, nDemote);
    const kRows = new Float32Array(nDemote * d);
    const vRows = new Float32Array(nDemote * d);
    for (let t = 0; t < nDemote; t++) {
      hot.keys.decode(demote[t]!, 1, kRows.subarray(t * d));
      hot.values.decode(demote[t]!, 1, vRows.subarray(t * d));
    }
    c.reserve(nDemote);
    // Saturation only: a non-finite input was counted when it first arrived.
    acc.counters.saturated +=
      cold.keys.write(kRows, c.nSlots, nDemote).saturated +
      cold.values.write(vRows, c.nSlots, nDemote).saturated;
    for (let t = 0; t < nDemote; t++) c.positions[c.nSlots + t] = h.positions[demote[t]!]!;
    c.nSlots += nDemote;
    hot.remove(demote);
  }
  const over = h.nSlots + c.nSlots - b;
  if (over > 0) {
    const drop = oldest(c, over);
    for (const slot of drop) acc.evicted(idx, c.positions[slot]!);
    cold.remove(drop);
  }
  return Math.max(0, nDemote);
}
