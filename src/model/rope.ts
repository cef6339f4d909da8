/**
 * RoPE inverse frequencies, including Llama-3 frequency-dependent scaling. The executor's
 * `rope` op applies them with the rotate-half (GPT-NeoX / HF) pairing: element i pairs with
 * i + headDim/2, which is why loaders of interleaved-layout checkpoints permute q/k rows.
 */
import type { ModelConfig } from "./config.ts";

/** invFreq (headDim/2): theta^(-2i/headDim), scaled as HF's `_compute_llama3_parameters` does. */
export function ropeInvFreq(
  cfg: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling" | "ropeFreqFactors">,
): Float32Array {
  const half = cfg.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / cfg.ropeTheta ** ((2 * i) / cfg.headDim);
  const s = cfg.ropeScaling;
  if (s?.type === "linear") for (let i = 0; i < half; i++) inv[i] = inv[i]! / s.factor;
  else if (s) {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) continue; // high frequencies unchanged
      if (wavelen > lowWavelen) inv[i] = f / s.factor;
      else {
        const smooth =
          (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
  }
  if (cfg.ropeFreqFactors) for (let i = 0; i < half; i++) inv[i] = inv[i]! / cfg.ropeFreqFactors[i]!;
  return inv;
}

/**
 * Permute projection rows from the interleaved RoPE layout (pairs (2i, 2i+1), Meta / llama2.c /
 * GGUF) to rotate-half (pairs (i, i + headDim/2), HF). w: (nHeads * headDim, dIn), in place
 * (dIn: array elements per row, e.g. bytes for Q8_0 blocks).
 * This is the inverse of HF's `permute` in convert_llama_weights_to_hf.py.
 */
export function interleavedToRotateHalf(
  w: Float32Array | Uint16Array | Uint8Array, // f32, or weights kept as stored: rows move as they are
  nHeads: number,
  headDim: number,
  dIn: number,
): void {
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim * dIn;
    const head = w.slice(base, base + headDim * dIn);
    for (let i = 0; i < half; i++)
      for (let p = 0; p < 2; p++) {
        const src = (2 * i + p) * dIn;
        const dst = base + (p * half + i) * dIn;
        w.set(head.subarray(src, src + dIn) as never, dst);
      }
  }
}
