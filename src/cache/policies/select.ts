/**
 * The shared "score, protect, keep the top" step of the scoring policies (as kvpress's
 * ScorerPress): protected slots (sinks, the recent window) always stay; among the others the
 * lowest-scoring slots are evicted until the head holds `keep` tokens. Ties go against the
 * older token, so results are deterministic.
 */
import type { HeadView } from "../policy.ts";

/** Slot indices [0, nSlots) sorted by absolute position, oldest first. */
export function slotsByPosition(view: HeadView): number[] {
  const order = Array.from({ length: view.nSlots }, (_, i) => i);
  const pos = view.positions;
  order.sort((a, b) => pos[a]! - pos[b]!);
  return order;
}

/**
 * Slots to evict so that `keep` remain: never the `sinks` oldest nor the `recent` newest; among
 * the rest the lowest `score` first (older first on ties).
 */
export function evictLowest(
  view: HeadView,
  keep: number,
  sinks: number,
  recent: number,
  score: (slot: number) => number,
): number[] {
  const n = view.nSlots;
  if (n <= keep) return [];
  const order = slotsByPosition(view);
  const candidates = order.slice(Math.min(sinks, n), Math.max(Math.min(sinks, n), n - recent));
  const need = n - keep;
  if (need >= candidates.length) return candidates;
  const pos = view.positions;
  candidates.sort((a, b) => score(a) - score(b) || pos[a]! - pos[b]!);
  return candidates.slice(0, need);
}
