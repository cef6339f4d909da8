/**
 * TurboQuant's Lloyd-Max codebooks (src/quant/turboquant-codebook.ts), checked against what
 * defines them, computed here by other means:
 * - the two Lloyd-Max conditions: boundaries at midpoints of adjacent centroids, and each
 *   centroid the conditional mean of f_d(x) ∝ (1 - x²)^((d-3)/2) on its cell (Simpson's rule
 *   in x here, not the module's θ-grid CDF and closed-form moment);
 * - closed forms: d = 3 is the uniform density on [-1, 1], whose b-bit Lloyd-Max quantizer is
 *   the uniform one (centroids (2i + 1) / 2^b - 1); b = 1 has centroids ±E|x| =
 *   ±Γ(d/2) / (√π Γ((d+1)/2));
 * - the paper's distortion (Zandieh et al. 2025, arXiv:2504.19874, Theorem 1): total MSE of a
 *   unit vector D_mse ≈ 0.36, 0.117, 0.03, 0.009 for b = 1..4 at large d.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { lloydMax, turboCodebook } from "../../src/quant/turboquant-codebook.ts";

/** ∫_a^b g(x) (1-x²)^((d-3)/2) dx by composite Simpson (d >= 3: bounded integrand). */
function simpson(d: number, a: number, b: number, g: (x: number) => number, n = 20000): number {
  const f = (x: number) => g(x) * Math.max(0, 1 - x * x) ** ((d - 3) / 2);
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

/** ln Γ by the Lanczos approximation (g = 7, n = 9), for the b = 1 closed form. */
function lnGamma(z: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  z -= 1;
  let x = c[0]!;
  for (let i = 1; i < 9; i++) x += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

test("Lloyd-Max conditions: boundaries are midpoints, centroids are their cells' conditional means", () => {
  for (const d of [3, 8, 64, 128])
    for (const bits of [1, 2, 3, 4]) {
      const { centroids: c } = lloydMax(d, bits);
      const k = c.length;
      assert.equal(k, 2 ** bits);
      for (let i = 0; i < k; i++) {
        if (i > 0) assert.ok(c[i]! > c[i - 1]!, `d=${d} b=${bits}: ascending`);
        assert.ok(Math.abs(c[i]! + c[k - 1 - i]!) < 1e-15, `d=${d} b=${bits}: symmetric`);
        const a = i === 0 ? -1 : (c[i - 1]! + c[i]!) / 2;
        const b = i === k - 1 ? 1 : (c[i]! + c[i + 1]!) / 2;
        const mean = simpson(d, a, b, (x) => x) / simpson(d, a, b, () => 1);
        // Relative to the density's spread 1/sqrt(d): 1e-5 of a standard deviation (the module
        // interpolates a tabulated CDF; an algorithmic error is orders of magnitude larger).
        assert.ok(
          Math.abs(mean - c[i]!) < 1e-5 / Math.sqrt(d),
          `d=${d} b=${bits} centroid ${i}: ${c[i]} vs conditional mean ${mean}`,
        );
      }
      // The f32 book the codec uses: boundaries are the midpoints of its f32 centroids.
      const book = turboCodebook(d, bits);
      for (let i = 0; i + 1 < k; i++)
        assert.equal(book.boundaries[i], Math.fround((book.centroids[i]! + book.centroids[i + 1]!) / 2));
    }
});

test("closed forms: uniform density at d = 3, E|x| at b = 1", () => {
  for (const bits of [1, 2, 3, 4]) {
    const { centroids, mse } = lloydMax(3, bits);
    const k = 2 ** bits;
    for (let i = 0; i < k; i++)
      assert.ok(Math.abs(centroids[i]! - ((2 * i + 1) / k - 1)) < 1e-7, `b=${bits} c${i}`);
    // Uniform quantizer of U[-1, 1] with step 2/k: MSE = step² / 12.
    assert.ok(Math.abs(mse - (2 / k) ** 2 / 12) < 1e-7, `b=${bits} mse ${mse}`);
  }
  for (const d of [2, 4, 5, 16, 64, 128, 256]) {
    const eAbs = Math.exp(lnGamma(d / 2) - lnGamma((d + 1) / 2)) / Math.sqrt(Math.PI);
    const c = lloydMax(d, 1).centroids[1]!;
    assert.ok(Math.abs(c - eAbs) < 1e-7, `d=${d}: centroid ${c} vs E|x| ${eAbs}`);
  }
});

test("distortion matches the paper's D_mse at d = 128 (0.36, 0.117, 0.03, 0.009)", () => {
  const paper = [0.36, 0.117, 0.03, 0.009];
  for (const [i, want] of paper.entries()) {
    const total = lloydMax(128, i + 1).mse * 128;
    // The paper quotes two significant figures: agree within 15%.
    assert.ok(Math.abs(total - want) / want < 0.15, `b=${i + 1}: D_mse ${total} vs paper ${want}`);
  }
});
