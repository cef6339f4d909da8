/**
 * expected-attention (Devoto, Jeblick, Jégou 2025, "Expected Attention: KV Cache Compression
 * by Estimating Attention from Future Queries Distribution", arXiv:2510.00636): future queries
 * are modelled as a Gaussian, q ~ N(mu, Sigma), from the statistics of the queries seen so far
 * (before RoPE); RoPE for the next `future` positions is averaged into one matrix Rbar, so the
 * future query is N(Rbar mu, Rbar Sigma Rbar^T). Under that model the expected unnormalised
 * attention of a key k is exp(mu'^T k / sqrt(d) + k^T Sigma' k / (2d)) (the Gaussian moment
 * generating function at k / sqrt(d)); normalised over the head's keys (softmax) and averaged
 * over the query heads of the GQA group, it is each key's score. The first `sinks` tokens are
 * kept (the paper's n_sink: their queries are outliers and excluded from the statistics too).
 *
 * As the paper/kvpress, with these differences (documented, measured nowhere else):
 * - statistics are running (Welford) over every query a head has seen since reset, excluding
 *   positions < sinks, so the scorer works while streaming and decoding (kvpress computes them
 *   once over the prefill's hidden states projected by W_q; the queries are the same vectors);
 * - no value-norm rescaling (kvpress's use_vnorm): the retention seam sees keys, not values;
 *   this is kvpress's `use_vnorm=False` variant;
 * - a recent window (default a quarter of the budget, as kvlab's other attention-free scorers):
 *   averaging RoPE over `future` positions removes the recency the model's own attention has.
 * Keys are read as stored (post-RoPE); the spec refuses rotated or pre-RoPE key storage.
 * State: per query head the mean (d) and the co-moment matrix (d x d) in f32, counted in memory().
 */
import { z } from "zod";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import { count, countOrZero, intAtLeast, shareOf } from "./options.ts";
import { type Scorer, scoredPolicy } from "./scorer.ts";

export const expectedAttentionOptions = z.strictObject({
  type: z.literal("expected-attention"),
  budget: count(),
  /** Future positions RoPE is averaged over (kvpress n_future_positions). */
  future: intAtLeast(1).default(512),
  /** First tokens always kept and left out of the query statistics (kvpress n_sink). */
  sinks: intAtLeast(0).default(4),
  /** Use the query covariance (false: the mean only, kvpress use_covariance). */
  covariance: z.boolean().default(true),
  /** Newest tokens always kept: a count or a share (< 1) of the budget (see the header). */
  recent: countOrZero().default(0.25),
});
export type ExpectedAttentionOptions = z.output<typeof expectedAttentionOptions>;

export function expectedAttentionScorer(
  opts: Omit<ExpectedAttentionOptions, "budget" | "type">,
  ctx: PolicyContext,
): Scorer {
  const { nLayers, nHeads, nKvHeads, headDim: d } = ctx.shape;
  const invFreq = ctx.shape.rope?.invFreq;
  if (!invFreq) throw new Error("expected-attention needs the model's RoPE frequencies (KVShape.rope)");
  const half = d / 2;
  const group = nHeads / nKvHeads;
  // Per (layer, query head): query count, mean (d) and co-moment sum (d x d), f64 while summing.
  const nq = new Float64Array(nLayers * nHeads);
  const mean = Array.from({ length: nLayers * nHeads }, () => new Float64Array(d));
  const m2 = Array.from({ length: nLayers * nHeads }, () => new Float64Array(d * d));
  const lastPos = new Int32Array(nLayers).fill(-1);
  const x = new Float64Array(d);
  const delta = new Float64Array(d);
  let keys = new Float32Array(0);

  /** Mean cos and sin of p * invFreq[i] over p in [from, from + future). */
  const averagedRope = (from: number) => {
    const c = new Float64Array(half);
    const s = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      let sc = 0;
      let ss = 0;
      for (let p = from; p < from + opts.future; p++) {
        sc += Math.cos(p * invFreq[i]!);
        ss += Math.sin(p * invFreq[i]!);
      }
      c[i] = sc / opts.future;
      s[i] = ss / opts.future;
    }
    return { c, s };
  };

  return {
    name: "expected-attention",
    wantsAttention: false,
    onAppend() {},
    onAttention() {},
    onQueries(view, q, nRows, qPos) {
      const nQ = nRows / group;
      for (let r = 0; r < nRows; r++) {
        const pos = qPos[r]!;
        if (pos > lastPos[view.layer]!) lastPos[view.layer] = pos;
        if (pos < opts.sinks) continue;
        const head = view.layer * nHeads + view.kvHead * group + Math.floor(r / nQ);
        // Back to the query before RoPE: rotate each (i, i + d/2) pair by -pos * invFreq[i].
        for (let i = 0; i < half; i++) {
          const a = pos * invFreq[i]!;
          const co = Math.cos(a);
          const si = Math.sin(a);
          const u = q[r * d + i]!;
          const w = q[r * d + i + half]!;
          x[i] = u * co + w * si;
          x[i + half] = w * co - u * si;
        }
        // Welford: mean and co-moment sum of the pre-RoPE queries.
        const n = ++nq[head]!;
        const mu = mean[head]!;
        const c2 = m2[head]!;
        for (let i = 0; i < d; i++) {
          delta[i] = x[i]! - mu[i]!;
          mu[i]! += delta[i]! / n;
        }
        for (let i = 0; i < d; i++) {
          const after = x[i]! - mu[i]!;
          for (let j = 0; j < d; j++) c2[i * d + j]! += after * delta[j]!;
        }
      }
    },
    score(view) {
      const n = view.nSlots;
      if (keys.length < n * d) keys = new Float32Array(n * d);
      view.decodeKeys(keys, 0, n);
      const out = new Float64Array(n);
      const { c, s } = averagedRope(lastPos[view.layer]! + 1);
      const muR = new Float64Array(d);
      const sig = new Float64Array(d * d);
      const tmp = new Float64Array(d * d);
      const z = new Float64Array(n);
      const u = new Float64Array(d);
      for (let g = 0; g < group; g++) {
        const head = view.layer * nHeads + view.kvHead * group + g;
        const cnt = nq[head]!;
        if (cnt === 0) continue; // no queries yet: every key scores 0 (oldest go first)
        const mu = mean[head]!;
        // Rbar acts on each (i, i + d/2) pair as [[c, -s], [s, c]].
        for (let i = 0; i < half; i++) {
          muR[i] = c[i]! * mu[i]! - s[i]! * mu[i + half]!;
          muR[i + half] = s[i]! * mu[i]! + c[i]! * mu[i + half]!;
        }
        const useCov = opts.covariance && cnt > 1;
        if (useCov) {
          const c2 = m2[head]!;
          // tmp = Rbar Sigma (rows mixed), then sig = tmp Rbar^T (columns mixed).
          for (let i = 0; i < half; i++)
            for (let j = 0; j < d; j++) {
              const a = c2[i * d + j]! / cnt;
              const b = c2[(i + half) * d + j]! / cnt;
              tmp[i * d + j] = c[i]! * a - s[i]! * b;
              tmp[(i + half) * d + j] = s[i]! * a + c[i]! * b;
            }
          for (let r = 0; r < d; r++)
            for (let j = 0; j < half; j++) {
              const a = tmp[r * d + j]!;
              const b = tmp[r * d + j + half]!;
              sig[r * d + j] = c[j]! * a - s[j]! * b;
              sig[r * d + j + half] = s[j]! * a + c[j]! * b;
            }
        }
        let max = Number.NEGATIVE_INFINITY;
        for (let t = 0; t < n; t++) {
          const k = keys.subarray(t * d, (t + 1) * d);
          let lin = 0;
          for (let i = 0; i < d; i++) lin += muR[i]! * k[i]!;
          let quad = 0;
          if (useCov) {
            for (let i = 0; i < d; i++) {
              let acc = 0;
              for (let j = 0; j < d; j++) acc += sig[i * d + j]! * k[j]!;
              u[i] = acc;
            }
            for (let i = 0; i < d; i++) quad += k[i]! * u[i]!;
          }
          z[t] = lin / Math.sqrt(d) + quad / (2 * d);
          if (!Number.isFinite(z[t]!)) z[t] = Number.NEGATIVE_INFINITY; // non-finite keys go first
          if (z[t]! > max) max = z[t]!;
        }
        let sum = 0;
        for (let t = 0; t < n; t++) sum += z[t] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(z[t]! - max);
        for (let t = 0; t < n; t++)
          out[t]! += (z[t] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(z[t]! - max) / sum) / group;
      }
      return (j) => out[j]!;
    },
    protect(b) {
      const sinks = Math.min(opts.sinks, b);
      return { sinks, recent: Math.min(b - sinks, shareOf(opts.recent, b)) };
    },
    kept() {},
    onMove() {},
    // Per query head: mean (d) and covariance (d x d) in f32, plus a count, once queries arrived.
    stateBytes: () => {
      let heads = 0;
      for (const n of nq) if (n > 0) heads++;
      return heads * (d + (opts.covariance ? d * d : 0) + 1) * 4;
    },
    reset() {
      nq.fill(0);
      for (const a of mean) a.fill(0);
      for (const a of m2) a.fill(0);
      lastPos.fill(-1);
    },
  };
}

export function expectedAttentionPolicy(
  opts: Omit<ExpectedAttentionOptions, "type">,
  ctx: PolicyContext,
): RetentionPolicy {
  return scoredPolicy(expectedAttentionScorer(opts, ctx), opts.budget);
}
