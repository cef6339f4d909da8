/**
 * Lloyd-Max codebooks for TurboQuant (Zandieh et al. 2025, arXiv:2504.19874, section 3.1):
 * after a random rotation, each coordinate x of a unit vector in R^d follows
 *
 *   f_d(x) = Γ(d/2) / (√π Γ((d-1)/2)) · (1 - x²)^((d-3)/2)   on [-1, 1]
 *
 * (a shifted Beta((d-1)/2, (d-1)/2); about N(0, 1/d) for large d). The optimal b-bit scalar
 * quantizer of that density (Lloyd 1982, Max 1960) minimizes E[(x - c(x))²]: its 2^b centroids
 * are the conditional means of their cells and the cell boundaries the midpoints of adjacent
 * centroids. This file computes it; nothing is copied from the paper's tables
 * (test/quant/turboquant-codebook.test.ts checks both conditions independently, the closed
 * forms at d = 3 and b = 1, and the paper's distortion figures).
 *
 * Numerics: the cell masses come from the CDF tabulated in θ (x = sin θ, so
 * f_d(x) dx ∝ cos^(d-2) θ dθ, smooth for every d >= 2; trapezoid rule on 2^16 intervals, which
 * is spectrally accurate for this integrand) and interpolated linearly; the first moments are
 * closed form, ∫ x (1-x²)^a dx = -(1-x²)^(a+1) / (2(a+1)). d = 1 (the coordinate is ±1) uses
 * d = 2's codebook. Codebooks are computed once per (d, b) and kept.
 */

const N_THETA = 1 << 16;

/** CDF of f_d on an equally spaced θ grid: cdf[i] = P(x <= sin θ_i), θ_i = -π/2 + i π / N. */
function tabulateCdf(d: number): Float64Array {
  const h = Math.PI / N_THETA;
  const w = new Float64Array(N_THETA + 1);
  for (let i = 0; i <= N_THETA; i++) w[i] = Math.cos(-Math.PI / 2 + i * h) ** (d - 2);
  // d = 2 has weight 1 everywhere (cos^0), including the end points.
  const cdf = new Float64Array(N_THETA + 1);
  for (let i = 1; i <= N_THETA; i++) cdf[i] = cdf[i - 1]! + ((w[i - 1]! + w[i]!) * h) / 2;
  const total = cdf[N_THETA]!;
  for (let i = 0; i <= N_THETA; i++) cdf[i]! /= total;
  return cdf;
}

interface Density {
  d: number;
  cdf: Float64Array;
  /** Normalizing constant of f_d, from the same quadrature as cdf (so masses and moments agree). */
  norm: number;
}

function density(d: number): Density {
  const cdf = tabulateCdf(d);
  // ∫ (1-x²)^((d-3)/2) dx over [-1, 1] = ∫ cos^(d-2) θ dθ over [-π/2, π/2]; recompute its value.
  const h = Math.PI / N_THETA;
  let total = 0;
  for (let i = 0; i <= N_THETA; i++) {
    const wi = Math.cos(-Math.PI / 2 + i * h) ** (d - 2);
    total += i === 0 || i === N_THETA ? wi / 2 : wi;
  }
  return { d, cdf, norm: 1 / (total * h) };
}

/** P(x <= t) under f_d. */
function cdfAt(D: Density, t: number): number {
  if (t <= -1) return 0;
  if (t >= 1) return 1;
  const pos = ((Math.asin(t) + Math.PI / 2) / Math.PI) * N_THETA;
  const i = Math.min(N_THETA - 1, Math.floor(pos));
  const f = pos - i;
  return D.cdf[i]! * (1 - f) + D.cdf[i + 1]! * f;
}

/** ∫_a^b x f_d(x) dx, closed form. */
function firstMoment(D: Density, a: number, b: number): number {
  const e = (D.d - 1) / 2; // exponent a + 1 with a = (d-3)/2
  const g = (t: number) => (t <= -1 || t >= 1 ? 0 : (1 - t * t) ** e);
  return (D.norm * (g(a) - g(b))) / (2 * e);
}

/** Conditional mean of f_d on [a, b] (its midpoint when the cell has no mass). */
function cellMean(D: Density, a: number, b: number): number {
  const m = cdfAt(D, b) - cdfAt(D, a);
  return m > 1e-300 ? firstMoment(D, a, b) / m : (a + b) / 2;
}

export interface Codebook {
  /** Centroids, ascending, as f32 (what encode compares against and decode multiplies). */
  centroids: Float32Array; // (2^bits)
  /** Boundaries between adjacent centroids (their midpoints), ascending, f32. */
  boundaries: Float32Array; // (2^bits - 1)
  /** Mean squared error per coordinate of a rotated unit vector, E[(x - c(x))²] (f64). */
  mse: number;
}

/** The Lloyd-Max iteration on f_d in f64, from the equal-mass start, to a fixed point. */
export function lloydMax(dim: number, bits: number): { centroids: Float64Array; mse: number } {
  const D = density(Math.max(dim, 2));
  const k = 2 ** bits;
  // Start: centroids of the k equal-mass cells (quantiles by bisection on the CDF).
  const quantile = (p: number) => {
    let lo = -1;
    let hi = 1;
    for (let it = 0; it < 100; it++) {
      const mid = (lo + hi) / 2;
      if (cdfAt(D, mid) < p) lo = mid;
      else hi = mid;
    }
    return (lo + hi) / 2;
  };
  const edges = Array.from({ length: k + 1 }, (_, i) => (i === 0 ? -1 : i === k ? 1 : quantile(i / k)));
  const c = Float64Array.from({ length: k }, (_, i) => cellMean(D, edges[i]!, edges[i + 1]!));
  for (let it = 0; it < 20000; it++) {
    let moved = 0;
    for (let i = 0; i < k; i++) {
      const a = i === 0 ? -1 : (c[i - 1]! + c[i]!) / 2;
      const b = i === k - 1 ? 1 : (c[i]! + c[i + 1]!) / 2;
      const next = cellMean(D, a, b);
      moved = Math.max(moved, Math.abs(next - c[i]!));
      c[i] = next;
    }
    if (moved < 1e-14) break;
  }
  // Symmetric density: average each centroid with its mirror so the book is exactly symmetric.
  for (let i = 0; i < k / 2; i++) {
    const m = (c[k - 1 - i]! - c[i]!) / 2;
    c[i] = -m;
    c[k - 1 - i] = m;
  }
  // MSE = E[x²] - Σ_i c_i² P(cell i) for centroids at the cell means; E[x²] = 1/d (d >= 2).
  let explained = 0;
  for (let i = 0; i < k; i++) {
    const a = i === 0 ? -1 : (c[i - 1]! + c[i]!) / 2;
    const b = i === k - 1 ? 1 : (c[i]! + c[i + 1]!) / 2;
    explained += c[i]! ** 2 * (cdfAt(D, b) - cdfAt(D, a));
  }
  return { centroids: c, mse: 1 / D.d - explained };
}

const cache = new Map<string, Codebook>();

/** The b-bit codebook for rotated coordinates of a d-dimensional unit vector (cached). */
export function turboCodebook(dim: number, bits: number): Codebook {
  const key = `${dim}:${bits}`;
  let book = cache.get(key);
  if (!book) {
    const { centroids, mse } = lloydMax(dim, bits);
    const c32 = Float32Array.from(centroids);
    const b32 = Float32Array.from({ length: c32.length - 1 }, (_, i) => (c32[i]! + c32[i + 1]!) / 2);
    book = { centroids: c32, boundaries: b32, mse };
    cache.set(key, book);
  }
  return book;
}
