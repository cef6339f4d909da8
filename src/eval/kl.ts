/**
 * KL divergence and top-1 agreement against a baseline distribution, with llama.cpp's
 * `--kl-divergence` definitions: per scored token KL(P_base || P_run) = sum_i P_base(i) *
 * (log P_base(i) - log P_run(i)) in nats; report the mean, the 99th percentile, and the
 * fraction of tokens where argmax P_base == argmax P_run ("same top p").
 *
 * The baseline is stored as its top-k log-probabilities plus the rest mass (see
 * kl-baseline.ts). Lumping the tail into one bucket can only lower the KL (log-sum
 * inequality / data processing), so klFromTopK is a lower bound on the exact KL; the gap is
 * the KL restricted to the tail, which is at most P_rest * max_tail |log P_base - log P_run|
 * and in practice tiny when P_rest is small. Runs record the baseline's mean rest mass so
 * the size of the lumped part is visible next to every KL number.
 */

/** Log-softmax of logits (vocab) into out (vocab), accumulated in f64. */
export function logSoftmax(logits: ArrayLike<number>, out: Float64Array): void {
  const n = logits.length;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = logits[i]! - lse;
}

/** Index of the largest value; the lowest index wins ties (as std::max_element does). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** One baseline token: the k most likely ids (descending) with their log-probs, and the rest. */
export interface TopKEntry {
  ids: Int32Array; // (k)
  logp: Float32Array; // (k)
  /** sum(exp(logp)) over the ids NOT kept (summed directly, see tailMass), in [0, 1]. */
  restMass: number;
}

/** The k most likely ids of a log-prob vector (vocab), descending; ties broken by lower id. */
export function topK(logp: Float64Array, k: number): TopKEntry {
  const n = Math.min(k, logp.length);
  const ids = new Int32Array(n);
  const vals = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  let filled = 0;
  // Insertion into a small sorted buffer: O(vocab * k) worst case but k is small (<= 256)
  // and most candidates fail the first comparison against the current minimum.
  for (let i = 0; i < logp.length; i++) {
    const v = logp[i]!;
    if (filled === n && v <= vals[n - 1]!) continue;
    let j = filled < n ? filled++ : n - 1;
    while (j > 0 && vals[j - 1]! < v) {
      vals[j] = vals[j - 1]!;
      ids[j] = ids[j - 1]!;
      j--;
    }
    vals[j] = v;
    ids[j] = i;
  }
  return { ids, logp: Float32Array.from(vals), restMass: Math.min(1, tailMass(logp, ids)) };
}

let keptMask = new Uint8Array(0); // (vocab) reused: 1 where an id is among the kept ones

/**
 * sum(exp(logp[i])) over the ids i not in `kept`, summed over the tail itself. Computing it
 * as 1 - sum(kept) cancels catastrophically when the tail is tiny (a confident distribution:
 * a 1e-12 tail keeps only ~4 digits), which made the lumped KL exceed the exact one. One pass
 * over the vocabulary, the same order of work as the log-softmax that produced logp.
 */
function tailMass(logp: Float64Array, kept: Int32Array): number {
  if (keptMask.length < logp.length) keptMask = new Uint8Array(logp.length);
  for (let j = 0; j < kept.length; j++) keptMask[kept[j]!] = 1;
  let rest = 0;
  for (let i = 0; i < logp.length; i++) if (keptMask[i] === 0) rest += Math.exp(logp[i]!);
  for (let j = 0; j < kept.length; j++) keptMask[kept[j]!] = 0;
  return rest;
}

/**
 * KL(P_base || P_run) with P_base given by its top-k and rest mass, P_run in full (vocab log-probs).
 * The tail of both distributions is lumped into one bucket (a lower bound on the exact KL).
 */
export function klFromTopK(base: TopKEntry, runLogp: Float64Array): number {
  let kl = 0;
  for (let j = 0; j < base.ids.length; j++) {
    const lp = base.logp[j]!;
    const lq = runLogp[base.ids[j]!]!;
    if (lp === Number.NEGATIVE_INFINITY) continue;
    kl += Math.exp(lp) * (lp - lq);
  }
  const pRest = base.restMass;
  if (pRest > 0) {
    // Floor the run's rest mass so a run that put everything on the kept ids gives a large
    // finite KL instead of Infinity (f64 cannot represent the exact value anyway).
    const qRest = Math.max(tailMass(runLogp, base.ids), 1e-300);
    kl += pRest * (Math.log(pRest) - Math.log(qRest));
  }
  return kl;
}

/** Exact KL(P || Q) from two full log-prob vectors (vocab). Used by tests and small vocabularies. */
export function klExact(baseLogp: Float64Array, runLogp: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < baseLogp.length; i++) {
    const lp = baseLogp[i]!;
    if (lp === Number.NEGATIVE_INFINITY) continue;
    kl += Math.exp(lp) * (lp - runLogp[i]!);
  }
  return kl;
}

/**
 * The p-quantile (p in [0, 1]) of values by linear interpolation between the order statistics
 * at rank p * (n - 1) (numpy's default). NaN for an empty list.
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const r = p * (n - 1);
  const lo = Math.floor(r);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (r - lo);
}

/** Accumulates per-token KL and top-1 agreement for one run. */
export class KlAccumulator {
  private readonly kls: number[] = [];
  private sameTop1 = 0;
  private restSum = 0;

  add(base: TopKEntry, runLogp: Float64Array): void {
    this.kls.push(klFromTopK(base, runLogp));
    if (argmax(runLogp) === base.ids[0]) this.sameTop1++;
    this.restSum += base.restMass;
  }

  get count(): number {
    return this.kls.length;
  }

  summary(): KlSummary {
    const n = this.kls.length;
    let sum = 0;
    for (const k of this.kls) sum += k;
    return {
      klMean: n ? sum / n : Number.NaN,
      klP99: percentile(this.kls, 0.99),
      klMax: n ? this.kls.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY) : Number.NaN,
      sameTop1: n ? this.sameTop1 / n : Number.NaN,
      klTokens: n,
      baselineRestMassMean: n ? this.restSum / n : Number.NaN,
    };
  }
}

export interface KlSummary {
  /** Mean KL(P_base || P_run) over scored tokens, nats. */
  klMean: number;
  /** 99th percentile of the per-token KL. */
  klP99: number;
  klMax: number;
  /** Fraction of scored tokens whose argmax agrees with the baseline's. */
  sameTop1: number;
  klTokens: number;
  /** Mean probability mass outside the stored top-k of the baseline (the lumped part). */
  baselineRestMassMean: number;
}
