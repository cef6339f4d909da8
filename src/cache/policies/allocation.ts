/**
 * Budget allocation across heads and layers, over any scorer (scorers.ts):
 *
 * - adakv (Feng et al. 2024, Ada-KV, arXiv:2407.11550): a layer's budget is shared by its KV
 *   heads. Each head keeps its protected slots (the scorer's recent window / sinks) and, as the
 *   paper's safeguard, its top `floor` x (uniform share - protected) candidates; the rest of the
 *   layer's budget goes to the highest scores over the flattened candidates of all its heads,
 *   so heads whose attention is concentrated give slots to heads whose attention is spread.
 * - pyramidkv (Cai et al. 2024, PyramidKV, arXiv:2406.02069): every layer keeps the scorer's
 *   protected tokens (its recent / observation window, w); the rest, b - w per layer, is spread
 *   over layers in an arithmetic sequence decreasing from the bottom, (b - w)(2 - 1/beta) at the
 *   bottom to (b - w)/beta at the top (b the uniform per-head budget), so the total is the
 *   uniform one; within a layer the heads split it uniformly or as adakv (`heads`).
 * - heads: shared (TOVA as its paper states it, Oren et al. 2024, arXiv:2401.06104): one token
 *   set per layer, chosen by the scores averaged over every KV head of the layer (each already
 *   the mean of its GQA group), so every head keeps the same positions.
 * - layer-budgets: the same with an explicit list of per-layer weights instead of the
 *   arithmetic sequence (weights [2, 1, 1] on 3 layers: w + 1.5(b - w), w + 0.75(b - w), ...).
 *
 * The budget is the uniform per-KV-head budget (a count, or a fraction of the tokens seen); the
 * model-wide total (layers x KV heads x budget) is what every allocation keeps, so compared at
 * equal `budget` they hold the same number of tokens; a single head may hold more than
 * `budget`, its layer never holds more than its share. Evicted slots are freed (kvpress masks
 * them in its head-wise presses), so memory() stays exact. Per-layer budgets are rounded by
 * largest remainder so that they add up exactly.
 */
import { z } from "zod";
import { ConfigError } from "../../errors.ts";
import { type HeadView, type PolicyContext, type RetentionPolicy, resolveCount } from "../policy.ts";
import { count, numberIn } from "./options.ts";
import type { Scorer } from "./scorer.ts";
import { makeScorer, type ScorerName, scorerSpec } from "./scorers.ts";
import { evictLowest, slotsByPosition } from "./select.ts";

const heads = z.enum(["uniform", "adakv", "shared"]);
/** AdaKV's safeguard: the share of its uniform budget each head keeps by its own ranking. */
const floor = numberIn(0, 1).default(0.2);

export const adakvOptions = z.strictObject({
  type: z.literal("adakv"),
  budget: count(),
  floor,
  /** The scoring policy whose scores are pooled (default snapkv, as the paper). */
  scorer: scorerSpec().prefault("snapkv"),
});

export const pyramidkvOptions = z.strictObject({
  type: z.literal("pyramidkv"),
  budget: count(),
  /** Top layer budget = b / beta (the paper's beta, default 20). */
  beta: numberIn(1, 1e6).default(20),
  heads: heads.default("uniform"),
  floor,
  scorer: scorerSpec().prefault("snapkv"),
});

export const layerBudgetsOptions = z.strictObject({
  type: z.literal("layer-budgets"),
  budget: count(),
  /** One positive weight per layer (bottom first); scaled so the total is the uniform one. */
  ratios: z.array(numberIn(1e-6, 1e6)).min(1),
  heads: heads.default("uniform"),
  floor,
  scorer: scorerSpec().prefault("snapkv"),
});

type ScorerSpec = { type: ScorerName; [k: string]: unknown };

export interface AllocationOptions {
  name: string;
  budget: number;
  /** Per-layer weights (mean-normalised inside), or null for uniform layers. */
  layerWeights: (nLayers: number) => number[] | null;
  heads: "uniform" | "adakv" | "shared";
  floor: number;
  scorer: ScorerSpec;
}

/** Integer budgets proportional to `weights` summing exactly to `total` (largest remainder). */
export function splitBudget(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, i) => [e - Math.floor(e), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k]![1]]!++;
  return out;
}

/** PyramidKV's arithmetic schedule: bottom 2b - b/beta down to top b/beta (as weights, mean 1). */
export function pyramidWeights(nLayers: number, beta: number): number[] {
  if (nLayers === 1) return [1];
  const top = 1 / beta;
  const bottom = 2 - top;
  return Array.from({ length: nLayers }, (_, l) => bottom - ((bottom - top) * l) / (nLayers - 1));
}

export function allocatedPolicy(opts: AllocationOptions, ctx: PolicyContext): RetentionPolicy {
  const { nLayers, nKvHeads } = ctx.shape;
  const weights = opts.layerWeights(nLayers);
  if (weights && weights.length !== nLayers)
    throw new ConfigError(
      "cache.policy.ratios",
      `expected one ratio per layer (${nLayers} layers), got ${weights.length}`,
    );
  const scorer: Scorer = makeScorer(opts.scorer, ctx);
  // Views of every head of a layer, as last handed to a hook; a layer is planned once per step.
  const views: (HeadView | undefined)[] = new Array(nLayers * nKvHeads);
  const dirty = new Uint8Array(nLayers);
  const plan: (number[] | undefined)[] = new Array(nLayers * nKvHeads);

  /**
   * This layer's per-head budget: the uniform b, or the scorer's protected tokens (its recent
   * window, as PyramidKV keeps the observation window in every layer) plus this layer's share of
   * the rest over all layers.
   */
  const layerBudget = (layer: number, seen: number): number => {
    const b = resolveCount(opts.budget, seen);
    if (!weights) return b;
    const { sinks, recent } = scorer.protect(b);
    const p = Math.min(b, sinks + recent);
    return p + splitBudget((b - p) * nLayers, weights)[layer]!;
  };

  const uniformHead = (view: HeadView, b: number): number[] => {
    if (view.nSlots <= b) return [];
    const { sinks, recent } = scorer.protect(b);
    return evictLowest(view, b, sinks, recent, scorer.score(view));
  };

  /** AdaKV over one layer: drops per head (see the header). */
  const adaLayer = (layer: number, b: number): number[][] => {
    const hv = Array.from({ length: nKvHeads }, (_, h) => views[layer * nKvHeads + h]);
    const drops: number[][] = hv.map(() => []);
    let held = 0;
    for (const v of hv) held += v ? v.nSlots : 0;
    const total = b * nKvHeads;
    if (held <= total) return drops;
    const { sinks, recent } = scorer.protect(b);
    let kept = 0;
    const pool: { h: number; slot: number; s: number; pos: number }[] = [];
    for (let h = 0; h < nKvHeads; h++) {
      const v = hv[h];
      if (!v || v.nSlots === 0) continue;
      const order = slotsByPosition(v);
      const n = order.length;
      const lo = Math.min(sinks, n);
      const hi = Math.max(lo, n - recent);
      kept += n - (hi - lo);
      const score = scorer.score(v);
      const cands = order.slice(lo, hi).map((slot) => ({ h, slot, s: score(slot), pos: v.positions[slot]! }));
      // Highest first; on ties the newer token ranks higher (evictLowest drops the older first).
      cands.sort((a, c) => c.s - a.s || c.pos - a.pos);
      const guaranteed = Math.min(cands.length, Math.floor(opts.floor * Math.max(0, b - (n - (hi - lo)))));
      kept += guaranteed;
      for (let i = guaranteed; i < cands.length; i++) pool.push(cands[i]!);
    }
    pool.sort((a, c) => c.s - a.s || c.pos - a.pos || a.h - c.h);
    const quota = Math.max(0, total - kept);
    for (let i = quota; i < pool.length; i++) drops[pool[i]!.h]!.push(pool[i]!.slot);
    return drops;
  };

  /**
   * One token set for the layer: each position's score is the mean over the heads that hold
   * it (all of them: shared heads hold the same positions); the top b positions stay, the
   * scorer's protected oldest/newest first. Ties: the older position goes.
   */
  const sharedLayer = (layer: number, b: number): number[][] => {
    const hv = Array.from({ length: nKvHeads }, (_, h) => views[layer * nKvHeads + h]);
    const sum = new Map<number, number>();
    const holders = new Map<number, number>();
    let n = 0;
    for (const v of hv) {
      if (!v) continue;
      n = Math.max(n, v.nSlots);
      if (v.nSlots <= b) continue;
      const score = scorer.score(v);
      for (let j = 0; j < v.nSlots; j++) {
        const p = v.positions[j]!;
        sum.set(p, (sum.get(p) ?? 0) + score(j));
        holders.set(p, (holders.get(p) ?? 0) + 1);
      }
    }
    if (n <= b) return hv.map(() => []);
    const order = [...sum.keys()].sort((a, c) => a - c);
    const { sinks, recent } = scorer.protect(b);
    const lo = Math.min(sinks, order.length);
    const hi = Math.max(lo, order.length - recent);
    const cands = order.slice(lo, hi);
    const mean = (p: number) => sum.get(p)! / holders.get(p)!;
    cands.sort((a, c) => mean(a) - mean(c) || a - c);
    const go = new Set(cands.slice(0, Math.max(0, order.length - b)));
    return hv.map((v) => {
      const d: number[] = [];
      if (v) for (let j = 0; j < v.nSlots; j++) if (go.has(v.positions[j]!)) d.push(j);
      return d;
    });
  };

  const remember = (view: HeadView) => {
    views[view.layer * nKvHeads + view.kvHead] = view;
    dirty[view.layer] = 1;
  };

  return {
    name: opts.name,
    wantsAttention: scorer.wantsAttention,
    positionsImplicit: false,
    ...(scorer.readsKeys ? { readsKeys: true } : {}),
    onAppend(view, first, n) {
      remember(view);
      scorer.onAppend(view, first, n);
    },
    onAttention(view, probs, nRows, qPos) {
      remember(view);
      scorer.onAttention(view, probs, nRows, qPos);
    },
    ...(scorer.onQueries ? { onQueries: scorer.onQueries } : {}),
    ...(scorer.scoring ? { scoring: scorer.scoring } : {}),
    evictions(view) {
      const { layer, kvHead } = view;
      const b = layerBudget(layer, view.seen);
      let drop: number[];
      if (opts.heads === "uniform") drop = uniformHead(view, b);
      else {
        // Every head of the layer was appended and scored before the first evictions call of
        // the step (policy.ts); plan the layer then, hand each head its share.
        if (dirty[layer]) {
          dirty[layer] = 0;
          (opts.heads === "adakv" ? adaLayer : sharedLayer)(layer, b).forEach((d, h) => {
            plan[layer * nKvHeads + h] = d;
          });
        }
        drop = plan[layer * nKvHeads + kvHead] ?? [];
        plan[layer * nKvHeads + kvHead] = undefined;
      }
      scorer.kept(layer, kvHead, view.nSlots - drop.length);
      return drop;
    },
    onMove: (l, h, from, to) => scorer.onMove(l, h, from, to),
    stateBytes: () => scorer.stateBytes(),
    reset() {
      scorer.reset();
      views.fill(undefined);
      plan.fill(undefined);
      dirty.fill(0);
    },
  };
}
