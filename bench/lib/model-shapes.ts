/**
 * The model shapes of the forward and peer benchmarks, from their published HF configs
 * (qwen2.5-1.5b and llama-3.2-1b: the 1-2B shapes of bench/sections/forward-large.ts; the
 * GGUF written for llama.cpp omits Llama 3.2's RoPE scaling, which does not change speed).
 * The bench writes a GGUF of the same shape for llama.cpp (bench/peers/gguf-writer.ts); when
 * `kvlab synth-model` exists its own output is what kvlab runs, and the forward section checks
 * the two agree.
 */

export interface ModelShape {
  name: string;
  /** llama.cpp architecture name. */
  arch: "llama" | "qwen2";
  vocabSize: number;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ropeTheta: number;
  rmsEps: number;
  /** q/k/v projections carry a bias (Qwen2). */
  qkvBias: boolean;
  /** Output projection shares the embedding matrix. */
  tiedEmbeddings: boolean;
}

export const MODEL_SHAPES: Record<string, ModelShape> = {
  "smollm2-135m": {
    name: "smollm2-135m",
    arch: "llama",
    vocabSize: 49152,
    dim: 576,
    hiddenDim: 1536,
    nLayers: 30,
    nHeads: 9,
    nKvHeads: 3,
    headDim: 64,
    ropeTheta: 100000,
    rmsEps: 1e-5,
    qkvBias: false,
    tiedEmbeddings: true,
  },
  "qwen2.5-0.5b": {
    name: "qwen2.5-0.5b",
    arch: "qwen2",
    vocabSize: 151936,
    dim: 896,
    hiddenDim: 4864,
    nLayers: 24,
    nHeads: 14,
    nKvHeads: 2,
    headDim: 64,
    ropeTheta: 1000000,
    rmsEps: 1e-6,
    qkvBias: true,
    tiedEmbeddings: true,
  },
  "qwen2.5-1.5b": {
    name: "qwen2.5-1.5b",
    arch: "qwen2",
    vocabSize: 151936,
    dim: 1536,
    hiddenDim: 8960,
    nLayers: 28,
    nHeads: 12,
    nKvHeads: 2,
    headDim: 128,
    ropeTheta: 1000000,
    rmsEps: 1e-6,
    qkvBias: true,
    tiedEmbeddings: true,
  },
  "llama-3.2-1b": {
    name: "llama-3.2-1b",
    arch: "llama",
    vocabSize: 128256,
    dim: 2048,
    hiddenDim: 8192,
    nLayers: 16,
    nHeads: 32,
    nKvHeads: 8,
    headDim: 64,
    ropeTheta: 500000,
    rmsEps: 1e-5,
    qkvBias: false,
    tiedEmbeddings: true,
  },
};

/** Parameters of a shape (tied embeddings counted once). */
export function paramCount(s: ModelShape): number {
  const attn = s.dim * s.nHeads * s.headDim * 2 + s.dim * s.nKvHeads * s.headDim * 2;
  const bias = s.qkvBias ? (s.nHeads + 2 * s.nKvHeads) * s.headDim : 0;
  const mlp = 3 * s.dim * s.hiddenDim;
  const layer = attn + bias + mlp + 2 * s.dim;
  return s.vocabSize * s.dim * (s.tiedEmbeddings ? 1 : 2) + s.nLayers * layer + s.dim;
}
