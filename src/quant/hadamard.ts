/**
 * Randomized Hadamard rotation of key/value (and query) rows before quantization (QuaRot,
 * Ashkboos et al. 2024, arXiv:2404.00456; the same idea as llama.cpp's rotated KV cache and
 * TurboQuant, Zandieh et al. 2025, arXiv:2504.19874). R = H D / sqrt(n), H the n x n
 * Walsh-Hadamard matrix, D a diagonal of seeded random signs. R is orthogonal, so
 * (R q) . (R k) = q . k (attention scores unchanged) and sum_j p_j R v_j = R sum_j p_j v_j
 * (rotated values give the rotated output, which R^T brings back), while an outlier channel's
 * energy is spread over all channels, which is what a per-token integer grid needs.
 *
 * A head size that is not a power of two is split into power-of-two blocks along its binary
 * digits (65 = 64 + 1, 96 = 64 + 32), each rotated on its own: R stays orthogonal, exact and
 * matrix-free for every head size; energy spreads only within a block.
 * Cost: n log2 n additions per row (fast Walsh-Hadamard transform), no stored matrix.
 */
import { mulberry32 } from "../rng.ts";

/** In-place unnormalized fast Walsh-Hadamard transform of x[off, off + n), n a power of two. */
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

/** Power-of-two blocks covering [0, n): the binary digits of n, largest first. */
export function blocksOf(n: number): { start: number; size: number }[] {
  const blocks: { start: number; size: number }[] = [];
  let start = 0;
  for (let size = 2 ** Math.floor(Math.log2(Math.max(n, 1))); size >= 1; size /= 2)
    if (n - start >= size) {
      blocks.push({ start, size });
      start += size;
    }
  return blocks;
}

/**
 * Rows x (nRows, n) times R^T in place (R = H D / sqrt(block) per power-of-two block, D the
 * diagonal of `signs`), or times R (`inverse`). The executors' `hadamard` op computes this (ref
 * here; wasm in assembly/hadamard.ts, WGSL in src/gpu/kernels/hadamard.ts, both bit for bit).
 */
export function hadamardRows(
  x: Float32Array,
  nRows: number,
  n: number,
  signs: Float32Array,
  inverse: boolean,
): void {
  const blocks = blocksOf(n);
  for (let r = 0; r < nRows; r++) {
    const off = r * n;
    if (!inverse) for (let i = 0; i < n; i++) x[off + i]! *= signs[i]!;
    for (const b of blocks) {
      const norm = 1 / Math.sqrt(b.size);
      fwht(x, off + b.start, b.size);
      if (inverse)
        for (let i = b.start; i < b.start + b.size; i++) x[off + i] = x[off + i]! * norm * signs[i]!;
      else for (let i = b.start; i < b.start + b.size; i++) x[off + i]! *= norm;
    }
  }
}

export class HadamardRotation {
  readonly signs: Float32Array; // (n) ±1

  constructor(
    readonly n: number,
    seed: number,
  ) {
    const rnd = mulberry32(seed ^ 0x9e3779b9);
    this.signs = new Float32Array(n);
    for (let i = 0; i < n; i++) this.signs[i] = rnd() < 0.5 ? -1 : 1;
  }

  /** x (nRows, n) <- rows of x times R^T, i.e. each row r <- H D r / sqrt(n) per block. In place. */
  apply(x: Float32Array, nRows: number): void {
    hadamardRows(x, nRows, this.n, this.signs, false);
  }

  /** Inverse of apply: each row r <- D H r / sqrt(n) per block (H symmetric, H H = n I). In place. */
  invert(x: Float32Array, nRows: number): void {
    hadamardRows(x, nRows, this.n, this.signs, true);
  }
}

/**
 * The rotation of one side of a cache created with `seed`: keys use the seed itself (as before
 * values could be rotated, so rotated-key results keep their signs), values an independent
 * stream (seed + 0x51ed27), so keys and values never share a sign pattern.
 */
export function sideRotation(side: "keys" | "values", headDim: number, seed: number): HadamardRotation {
  return new HadamardRotation(headDim, side === "keys" ? seed : (seed + 0x51ed27) | 0);
}
