/**
 * Merging on eviction, an option of every eviction policy (`merge: nearest`; default `none`,
 * the value is dropped). After D2O (Wan et al. 2024, "D2O: Dynamic Discriminative Operations for
 * Efficient Generative Inference of LLMs", arXiv:2406.13035, section 3.2) and CaM (Zhang et al.
 * 2024, "CaM: Cache Merging for Memory-efficient LLMs Inference", ICML 2024): an evicted token's
 * value is folded into a kept token instead of being lost.
 *
 * The rule kvlab implements, per (layer, KV head), each time the policy drops slots D from the
 * slots S it holds (kept K = S \ D):
 *   1. target(i) for i in D: the kept slot j in K whose stored key (decoded, as the cache holds
 *      it: post-RoPE, or pre-RoPE / Hadamard-rotated when the cache stores it so) has the
 *      highest cosine similarity with i's stored key; ties go to the lower slot index; a zero
 *      key has similarity 0 with every key. All targets are chosen against K before any merge.
 *   2. Each slot carries w = the number of tokens its value stands for (1 when appended). For
 *      every kept j that receives merges M_j = { i in D : target(i) = j }:
 *        v_j <- (w_j v_j + sum_{i in M_j} w_i v_i) / (w_j + sum_{i in M_j} w_i)
 *        w_j <- w_j + sum_{i in M_j} w_i
 *      in float64 over the decoded (stored) values, then v_j is re-encoded in place by its
 *      side's store. Keys are not changed.
 * Where it differs from the papers: D2O merges only when the similarity passes an EMA
 * threshold and weights by exp(similarity) and merges keys too; CaM merges values into several
 * kept tokens with weights from attention scores (sampled). Here every evicted value is merged
 * (no threshold), into one kept token, weighted by token counts, keys untouched, so the kept
 * token's value is exactly the mean of the values it stands for (a cluster mean).
 * The counts are per-slot policy state (4 bytes a slot: a u32 count), moved with the cache's
 * swap-remove and counted in memory().
 */
import type { EncodeStats } from "../quant/types.ts";
import { SlotState } from "./policies/slot-state.ts";
import type { PolicyContext, RetentionPolicy } from "./policy.ts";
import type { Head } from "./stores/head.ts";

export type MergeMode = "none" | "nearest";

/** Bytes of declared state per retained slot: the count of tokens its value stands for (u32). */
export const MERGE_STATE_BYTES = 4;

/** The merge step a merging policy hands the cache (read through `policy.mergeOnEvict`). */
export interface Merger {
  /** Fold the values of `drop` into their nearest kept slots of `head` (before the head removes them). */
  merge(layer: number, kvHead: number, head: Head, drop: readonly number[]): EncodeStats;
  /** The head now retains nSlots slots (after the removal). */
  kept(layer: number, kvHead: number, nSlots: number): void;
}

/** The merger a policy carries, if it merges on eviction. */
export function mergerOf(policy: RetentionPolicy): Merger | undefined {
  return (policy as { mergeOnEvict?: Merger }).mergeOnEvict;
}

/** Cosine similarity of rows a and b of x (n, d); 0 when either is the zero vector. */
function cosine(x: Float32Array, a: number, b: number, d: number, norms: Float64Array): number {
  const na = norms[a]!;
  const nb = norms[b]!;
  if (na === 0 || nb === 0) return 0;
  let dot = 0;
  for (let c = 0; c < d; c++) dot += x[a * d + c]! * x[b * d + c]!;
  return dot / (na * nb);
}

/**
 * The merge rule over plain arrays (exported for tests): keys, values (n, d) as stored, w (n)
 * token counts. Returns the kept slots whose value changed; values and w are updated in place
 * for them (values rounded to f32 once, from the float64 mean).
 */
export function mergeNearest(
  keys: Float32Array,
  values: Float32Array,
  w: Float64Array,
  n: number,
  d: number,
  drop: readonly number[],
): number[] {
  const dropped = new Uint8Array(n);
  for (const i of drop) dropped[i] = 1;
  const kept: number[] = [];
  for (let j = 0; j < n; j++) if (!dropped[j]) kept.push(j);
  if (kept.length === 0 || drop.length === 0) return [];
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += keys[j * d + c]! * keys[j * d + c]!;
    norms[j] = Math.sqrt(s);
  }
  // Targets against the kept set as it was before any merge.
  const into = new Map<number, number[]>();
  for (const i of drop) {
    let best = kept[0]!;
    let bestSim = cosine(keys, i, best, d, norms);
    for (let t = 1; t < kept.length; t++) {
      const sim = cosine(keys, i, kept[t]!, d, norms);
      if (sim > bestSim) {
        bestSim = sim;
        best = kept[t]!;
      }
    }
    const list = into.get(best);
    if (list) list.push(i);
    else into.set(best, [i]);
  }
  const acc = new Float64Array(d);
  const changed = [...into.keys()].sort((a, b) => a - b);
  for (const j of changed) {
    let wSum = w[j]!;
    for (let c = 0; c < d; c++) acc[c] = w[j]! * values[j * d + c]!;
    for (const i of into.get(j)!) {
      wSum += w[i]!;
      for (let c = 0; c < d; c++) acc[c]! += w[i]! * values[i * d + c]!;
    }
    for (let c = 0; c < d; c++) values[j * d + c] = acc[c]! / wSum;
    w[j] = wSum;
  }
  return changed;
}

/**
 * `policy`, also merging the values it evicts (merge: nearest). Everything else is the policy's
 * own; its hooks are wrapped only to keep the per-slot counts in step with the slots.
 */
export function withMerge(policy: RetentionPolicy, ctx: PolicyContext): RetentionPolicy {
  const d = ctx.shape.headDim;
  const counts = new SlotState(ctx.shape, MERGE_STATE_BYTES);
  const merger: Merger = {
    merge(layer, kvHead, head, drop) {
      const n = head.slots.nSlots;
      const w = counts.at(layer, kvHead, n);
      const keys = new Float32Array(n * d);
      const values = new Float32Array(n * d);
      head.keys.decode(0, n, keys);
      head.values.decode(0, n, values);
      const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
      for (const j of mergeNearest(keys, values, w, n, d, drop)) {
        const s = head.values.rewrite!(j, values.subarray(j * d, (j + 1) * d));
        stats.nonFinite += s.nonFinite;
        stats.saturated += s.saturated;
      }
      return stats;
    },
    kept: (layer, kvHead, nSlots) => counts.setCount(layer, kvHead, nSlots),
  };
  const hooks: Partial<RetentionPolicy> & { mergeOnEvict: Merger } = {
    mergeOnEvict: merger,
    onAppend(view, first, n) {
      counts.at(view.layer, view.kvHead, view.nSlots).fill(1, first, first + n);
      policy.onAppend(view, first, n);
    },
    onMove(layer, kvHead, from, to) {
      counts.move(layer, kvHead, from, to);
      policy.onMove(layer, kvHead, from, to);
    },
    stateBytes: () => policy.stateBytes() + counts.bytes(),
    reset() {
      counts.reset();
      policy.reset();
    },
  };
  return new Proxy(policy, {
    get(target, key) {
      if (Object.hasOwn(hooks, key)) return hooks[key as keyof typeof hooks];
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
