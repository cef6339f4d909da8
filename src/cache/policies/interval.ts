/**
 * interval: compression at an interval during decoding (kvpress's DecodingPress; Devoto et al.
 * 2025, Expected Attention, arXiv:2510.00636, evaluates compression while decoding long
 * reasoning traces this way): the wrapped policy is asked for evictions only once at least
 * `every` tokens have reached a KV head since its last compression; between compressions the
 * head grows, so it holds at most the wrapped policy's budget + every - 1 tokens (peak memory
 * counts it). Scoring hooks (append, attention) are forwarded on every step, so accumulated
 * scores (h2o) see every query.
 */
import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { intAtLeast } from "./options.ts";

export const intervalOptions = z.strictObject({
  type: z.literal("interval"),
  /** Compress once this many tokens have arrived since the last compression. */
  every: intAtLeast(1),
  /** The policy that compresses (any but tiered and interval), with its own budget. */
  policy: z.looseObject({ type: z.string() }),
});

export function intervalPolicy(inner: RetentionPolicy, every: number, ctx: PolicyContext): RetentionPolicy {
  const { nLayers, nKvHeads } = ctx.shape;
  const last = new Int32Array(nLayers * nKvHeads); // tokens seen at each head's last compression
  return {
    ...inner,
    onAppend: (view, first, n) => inner.onAppend(view, first, n),
    onAttention: (view, probs, nRows, qPos) => inner.onAttention(view, probs, nRows, qPos),
    ...(inner.onQueries ? { onQueries: inner.onQueries } : {}),
    evictions(view) {
      const idx = view.layer * nKvHeads + view.kvHead;
      if (view.seen - last[idx]! < every) return [];
      last[idx] = view.seen;
      return inner.evictions(view);
    },
    onMove: (l, h, from, to) => inner.onMove(l, h, from, to),
    stateBytes: () => inner.stateBytes(),
    reset() {
      last.fill(0);
      inner.reset();
    },
  };
}
