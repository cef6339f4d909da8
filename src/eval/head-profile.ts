/**
 * The head profile behind policy `duo` (DuoAttention, Xiao et al. 2024, arXiv:2410.10819):
 * which KV heads need the whole context (retrieval heads) and which do with attention sinks and
 * recent tokens (streaming heads).
 *
 * The paper learns a gate alpha per head: the head's output is alpha x full attention +
 * (1 - alpha) x sink-and-window attention, the gates are optimised to reproduce the full
 * model's last hidden states on synthetic pass-key contexts with an L1 penalty on the gates,
 * and the heads with the largest alpha become retrieval heads. That needs gradients; kvlab uses
 * a cheap proxy instead, measured in one forward of a calibration text with a full f32 cache:
 *
 *   score(layer, KV head) = mean over the query rows (the GQA group's query heads x the
 *   calibration positions q >= sinks + recent) of the softmax mass that row puts on positions
 *   outside the sinks (p < sinks) and the recent window (p > q - recent),
 *
 * i.e. the share of the head's attention a streaming head would lose. A head that attends
 * mostly to sinks and neighbours scores near 0; a head that looks far back scores high. The
 * mass lost is what the paper's gate trades against too (its distillation loss is the output
 * error of dropping that mass), but the proxy ignores what the lost mass carries (the values)
 * and is measured on ordinary text, not pass-key data.
 */
import type { LanguageModel } from "../model/llama.ts";
import { ScratchCache } from "./scratch-cache.ts";

export interface HeadProfileOptions {
  /** Sinks of a streaming head (default 4). */
  sinks?: number;
  /** Recent window of a streaming head (default 32). */
  recent?: number;
  /** Tokens per forward call (default 256). */
  chunk?: number;
}

export interface HeadProfile {
  /** Per layer, per KV head: mean attention mass outside sinks + recent window. */
  scores: number[][];
  /** Query rows averaged per KV head. */
  rows: number;
  sinks: number;
  recent: number;
  tokens: number;
}

/** Profile every KV head of `model` on `ids` (the calibration text, BOS first if the vocab uses one). */
export async function profileHeads(
  model: LanguageModel,
  ids: readonly number[],
  opts: HeadProfileOptions = {},
): Promise<HeadProfile> {
  const sinks = opts.sinks ?? 4;
  const recent = opts.recent ?? 32;
  const chunk = opts.chunk ?? 256;
  const cache = new ScratchCache(model.kvShape(ids.length));
  const { nLayers, nKvHeads } = cache.shape;
  const sum = new Float64Array(nLayers * nKvHeads);
  const rows = new Float64Array(nLayers * nKvHeads);
  cache.observer = (layer, kvHead, probs, nRows, n, positions, qPos) => {
    const nQ = qPos.length;
    for (let r = 0; r < nRows; r++) {
      const q = qPos[r % nQ]!;
      if (q < sinks + recent) continue; // nothing lies outside yet
      let outside = 0;
      for (let j = 0; j < n; j++) {
        const p = positions[j]!;
        if (p >= sinks && p <= q - recent) outside += probs[r * n + j]!;
      }
      sum[layer * nKvHeads + kvHead]! += outside;
      rows[layer * nKvHeads + kvHead]!++;
    }
  };
  for (let a = 0; a < ids.length; a += chunk) {
    const b = Math.min(ids.length, a + chunk);
    const pos = Int32Array.from({ length: b - a }, (_, i) => a + i);
    await model.forward(ids.slice(a, b), pos, cache, { firstLogit: b - a - 1 });
  }
  const scores = Array.from({ length: nLayers }, (_, l) =>
    Array.from({ length: nKvHeads }, (_, h) => {
      const i = l * nKvHeads + h;
      return rows[i]! > 0 ? sum[i]! / rows[i]! : 0;
    }),
  );
  return { scores, rows: rows[0]!, sinks, recent, tokens: ids.length };
}
