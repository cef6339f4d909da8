/**
 * The scoring half of a scoring policy (kvpress's ScorerPress): a Scorer keeps per-slot state
 * and says how much each retained slot is worth; which slots go is decided apart from it,
 * either per KV head against a uniform budget (`scoredPolicy`, every scoring policy by itself)
 * or across the heads and layers of the model (the budget allocations of allocation.ts: AdaKV,
 * PyramidKV, per-layer ratios), so that any scorer combines with any allocation.
 */
import { type HeadView, type RetentionPolicy, resolveCount, type ScoringRequest } from "../policy.ts";
import { shareOf } from "./options.ts";
import { evictLowest } from "./select.ts";
import type { SlotState } from "./slot-state.ts";

export interface Scorer {
  readonly name: string;
  readonly wantsAttention: boolean;
  /** The scorer reads decoded keys when tokens arrive (the GPU cache then passes host keys). */
  readonly readsKeys?: boolean;
  onAppend(view: HeadView, firstSlot: number, n: number): void;
  onAttention(view: HeadView, probs: Float32Array, nRows: number, qPos: Int32Array): void;
  /** Optional: the query rows of each attend (RetentionPolicy.onQueries). */
  onQueries?(view: HeadView, q: Float32Array, nRows: number, qPos: Int32Array): void;
  /** Optional: the scorer's scores come from a scoring forward (RetentionPolicy.scoring). */
  readonly scoring?: ScoringRequest;
  /**
   * Score of each retained slot now, higher = keep (valid until the next hook). Called only
   * when the head has to give up slots; a scorer may prepare the scores here.
   */
  score(view: HeadView): (slot: number) => number;
  /** Slots that never go when the head keeps `keep`: the `sinks` oldest and the `recent` newest. */
  protect(keep: number): { sinks: number; recent: number };
  /** The head now holds n slots (after its evictions). */
  kept(layer: number, kvHead: number, n: number): void;
  onMove(layer: number, kvHead: number, from: number, to: number): void;
  stateBytes(): number;
  reset(): void;
}

/**
 * The members of a scorer whose slot scores are its SlotState (negated with sign -1) and which
 * protects the `recent` newest tokens (a count or a share of the budget): the state follows the
 * head's kept count, moves and resets, and is its policy state.
 */
export function stateScorer(
  state: SlotState,
  recent: number,
  sign: 1 | -1 = 1,
): Pick<Scorer, "score" | "protect" | "kept" | "onMove" | "stateBytes" | "reset"> {
  return {
    score(view) {
      const s = state.at(view.layer, view.kvHead, view.nSlots);
      return sign > 0 ? (j) => s[j]! : (j) => -s[j]!;
    },
    protect: (b) => ({ sinks: 0, recent: shareOf(recent, b) }),
    kept: (l, h, n) => state.setCount(l, h, n),
    onMove: (l, h, from, to) => state.move(l, h, from, to),
    stateBytes: () => state.bytes(),
    reset: () => state.reset(),
  };
}

/** A scorer with one uniform budget per KV head: the policy each scoring policy is by itself. */
export function scoredPolicy(scorer: Scorer, budget: number): RetentionPolicy {
  return {
    name: scorer.name,
    wantsAttention: scorer.wantsAttention,
    positionsImplicit: false,
    ...(scorer.readsKeys ? { readsKeys: true } : {}),
    onAppend: (view, first, n) => scorer.onAppend(view, first, n),
    onAttention: (view, probs, nRows, qPos) => scorer.onAttention(view, probs, nRows, qPos),
    ...(scorer.onQueries ? { onQueries: scorer.onQueries } : {}),
    ...(scorer.scoring ? { scoring: scorer.scoring } : {}),
    evictions(view) {
      const b = resolveCount(budget, view.seen);
      if (view.nSlots <= b) {
        scorer.kept(view.layer, view.kvHead, view.nSlots);
        return [];
      }
      const { sinks, recent } = scorer.protect(b);
      const drop = evictLowest(view, b, sinks, recent, scorer.score(view));
      scorer.kept(view.layer, view.kvHead, view.nSlots - drop.length);
      return drop;
    },
    onMove: (l, h, from, to) => scorer.onMove(l, h, from, to),
    stateBytes: () => scorer.stateBytes(),
    reset: () => scorer.reset(),
  };
}
