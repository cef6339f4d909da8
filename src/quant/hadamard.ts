/**
 * Randomized Hadamard rotation of key and query rows before quantization (QuaRot, Ashkboos et
 * al. 2024, arXiv:2404.00456; the same idea as llama.cpp's rotated KV cache and TurboQuant,
 * Zandieh et al. 2025, arXiv:2504.19874). R = H D / sqrt(n), H the n x n Walsh-Hadamard matrix
 * (n a power of two), D a diagonal of seeded random signs. R is orthogonal, so
 * (R q) . (R k) = q . k: attention scores are unchanged while an outlier channel's energy is
 * spread over all channels, which is what a per-token integer grid needs.
 * Cost: n log2 n additions per row (fast Walsh-Hadamard transform), no stored matrix.
 */
import { ShapeError } from "../errors.ts";
import { mulberry32 } from "../rng.ts";

/** In-place unnormalized fast Walsh-Hadamard transform of x[off, off + n). */
function fwht(x: Float32Array, off: number, n: number): void {
  for (let h = 1; h < n; h *= 2) {
    for (let i = 0; i < n; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[off + j]!;
        const b = x[off + j + h]!;
        x[off + j] = a + b;
        x[off + j + h] = a - b;
      }
    }
  }
}

export class HadamardRotation {
  readonly signs: Float32Array; // (n) ±1
  private readonly norm: number;

  constructor(
    readonly n: number,
    seed: number,
  ) {
    if (n < 1 || (n & (n - 1)) !== 0)
      throw new ShapeError(
        `Hadamard rotation needs headDim to be a power of two, got ${n}; drop the rotation for this model`,
      );
    const rnd = mulberry32(seed ^ 0x9e3779b9);
    this.signs = new Float32Array(n);
    for (let i = 0; i < n; i++) this.signs[i] = rnd() < 0.5 ? -1 : 1;
    this.norm = 1 / Math.sqrt(n);
  }

  /** x (nRows, n) <- rows of x times R^T, i.e. each row r <- H D r / sqrt(n). In place. */
  apply(x: Float32Array, nRows: number): void {
    const { n, signs, norm } = this;
    for (let r = 0; r < nRows; r++) {
      const off = r * n;
      for (let i = 0; i < n; i++) x[off + i]! *= signs[i]!;
      fwht(x, off, n);
      for (let i = 0; i < n; i++) x[off + i]! *= norm;
    }
  }

  /** Inverse of apply: each row r <- D H r / sqrt(n) (H is symmetric and H H = n I). In place. */
  invert(x: Float32Array, nRows: number): void {
    const { n, signs, norm } = this;
    for (let r = 0; r < nRows; r++) {
      const off = r * n;
      fwht(x, off, n);
      for (let i = 0; i < n; i++) x[off + i] = x[off + i]! * norm * signs[i]!;
    }
  }
}
