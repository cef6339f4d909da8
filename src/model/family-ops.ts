/**
 * The elementwise pieces some model families add to the Llama block, in plain TypeScript on
 * the executor's arrays (every executor's arrays are ordinary typed arrays, so these run the
 * same everywhere; they are O(n * dim) next to the O(n * dim^2) matmuls the executor runs).
 */

/** Subtract each row's mean, in place: x (rows, dim). LayerNorm is rmsnorm of the centred row. */
export function centerRows(x: Float32Array, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) s += x[o + i]!;
    const mean = s / dim;
    for (let i = 0; i < dim; i++) x[o + i] = x[o + i]! - mean;
  }
}

/** x (rows, dim) += b (dim) on every row. */
export function addRowBias(x: Float32Array, b: Float32Array, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let i = 0; i < dim; i++) x[o + i] = x[o + i]! + b[i]!;
  }
}

/**
 * GELU with the tanh approximation GPT-2 was trained with (HF "gelu_new"):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place over x (n).
 */
export function geluTanh(x: Float32Array, n: number): void {
  const c = Math.sqrt(2 / Math.PI);
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    x[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
  }
}

/** Gemma's GeGLU: gate (n) = gelu_tanh(gate) * up, in place over gate. */
export function geglu(gate: Float32Array, up: Float32Array, n: number): void {
  geluTanh(gate, n);
  for (let i = 0; i < n; i++) gate[i] = gate[i]! * up[i]!;
}

/** Soft-capping (Gemma 2's final logits): x = cap * tanh(x / cap), in place over x (n). */
export function softcap(x: Float32Array, n: number, cap: number): void {
  for (let i = 0; i < n; i++) x[i] = cap * Math.tanh(x[i]! / cap);
}
