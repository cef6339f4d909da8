/**
 * Reading a Llama-family weight set from a TensorSet, given how the file format names tensors.
 * HF safetensors and GGUF differ only in names and in q/k row order (GGUF stores the
 * interleaved RoPE layout, HF rotate-half), so one function serves both.
 */
import { ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { type Matrix, matrixRows, matrixType, storedLength } from "../kernels/weights.ts";
import type { ModelConfig } from "./config.ts";
import { loadGpt2Weights } from "./gpt2-weights.ts";
import type { LayerWeights, LlamaWeights } from "./llama.ts";
import { interleavedToRotateHalf } from "./rope.ts";
import type { TensorSet } from "./tensors.ts";

export type LayerKey = keyof LayerWeights;

export interface WeightNames {
  embed: string;
  finalNorm: string;
  lmHead: string;
  layer(i: number, key: LayerKey): string;
  /** q/k rows are stored in the interleaved RoPE layout and must be permuted to rotate-half. */
  interleavedQK: boolean;
}

const HF_LAYER: Record<LayerKey, string> = {
  attnNorm: "input_layernorm.weight",
  wq: "self_attn.q_proj.weight",
  wk: "self_attn.k_proj.weight",
  wv: "self_attn.v_proj.weight",
  wo: "self_attn.o_proj.weight",
  bq: "self_attn.q_proj.bias",
  bk: "self_attn.k_proj.bias",
  bv: "self_attn.v_proj.bias",
  bo: "self_attn.o_proj.bias",
  qNorm: "self_attn.q_norm.weight",
  kNorm: "self_attn.k_norm.weight",
  attnNormB: "input_layernorm.bias",
  ffnNorm: "post_attention_layernorm.weight",
  ffnNormB: "post_attention_layernorm.bias",
  postAttnNorm: "post_attention_layernorm.weight",
  postFfnNorm: "post_feedforward_layernorm.weight",
  wGate: "mlp.gate_proj.weight",
  wUp: "mlp.up_proj.weight",
  bUp: "mlp.up_proj.bias",
  wDown: "mlp.down_proj.weight",
  bDown: "mlp.down_proj.bias",
};

export const HF_NAMES: WeightNames = {
  embed: "model.embed_tokens.weight",
  finalNorm: "model.norm.weight",
  lmHead: "lm_head.weight",
  layer: (i, key) => `model.layers.${i}.${HF_LAYER[key]}`,
  interleavedQK: false,
};

/**
 * Gemma's HF names: its "post_attention_layernorm" normalises the attention output (a post-norm)
 * and the FFN's pre-norm is "pre_feedforward_layernorm", where Llama's FFN pre-norm is named
 * post_attention_layernorm.
 */
export const HF_POSTNORM_NAMES: WeightNames = {
  ...HF_NAMES,
  layer: (i, key) =>
    `model.layers.${i}.${key === "ffnNorm" ? "pre_feedforward_layernorm.weight" : HF_LAYER[key]}`,
};

const GGUF_LAYER: Record<LayerKey, string> = {
  attnNorm: "attn_norm.weight",
  wq: "attn_q.weight",
  wk: "attn_k.weight",
  wv: "attn_v.weight",
  wo: "attn_output.weight",
  bq: "attn_q.bias",
  bk: "attn_k.bias",
  bv: "attn_v.bias",
  bo: "attn_output.bias",
  qNorm: "attn_q_norm.weight",
  kNorm: "attn_k_norm.weight",
  attnNormB: "attn_norm.bias",
  ffnNorm: "ffn_norm.weight",
  ffnNormB: "ffn_norm.bias",
  postAttnNorm: "post_attention_norm.weight",
  postFfnNorm: "post_ffw_norm.weight",
  wGate: "ffn_gate.weight",
  wUp: "ffn_up.weight",
  bUp: "ffn_up.bias",
  wDown: "ffn_down.weight",
  bDown: "ffn_down.bias",
};

export const GGUF_NAMES: WeightNames = {
  embed: "token_embd.weight",
  finalNorm: "output_norm.weight",
  lmHead: "output.weight",
  layer: (i, key) => `blk.${i}.${GGUF_LAYER[key]}`,
  interleavedQK: true,
};

/** Tensors a loader may find beside the weights and ignore (or read itself, as rope_freqs). */
const TOLERATED = [/^rope_freqs\.weight$/, /(^|\.)rotary_emb\.inv_freq$/];

/** Every tensor the config implies, by name, with its shape (lm_head when not tied). */
export function expectedTensors(cfg: ModelConfig, names: WeightNames, tied: boolean): Map<string, number[]> {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = cfg;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const m = new Map<string, number[]>();
  m.set(names.embed, [vocabSize, dim]);
  for (let i = 0; i < cfg.nLayers; i++) {
    const shapes: [LayerKey, number[]][] = [
      ["attnNorm", [dim]],
      ["wq", [qDim, dim]],
      ["wk", [kvDim, dim]],
      ["wv", [kvDim, dim]],
      ["wo", [dim, qDim]],
      ["ffnNorm", [dim]],
      ["wGate", [hiddenDim, dim]],
      ["wUp", [hiddenDim, dim]],
      ["wDown", [dim, hiddenDim]],
    ];
    if (cfg.qkvBias) shapes.push(["bq", [qDim]], ["bk", [kvDim]], ["bv", [kvDim]]);
    if (cfg.qkNorm) shapes.push(["qNorm", [headDim]], ["kNorm", [headDim]]);
    if (cfg.postNorms) shapes.push(["postAttnNorm", [dim]], ["postFfnNorm", [dim]]);
    for (const [key, shape] of shapes) m.set(names.layer(i, key), shape);
  }
  m.set(names.finalNorm, [dim]);
  if (!tied) m.set(names.lmHead, [vocabSize, dim]);
  return m;
}

/**
 * The file's tensors against the config, before anything is allocated: every expected tensor
 * present with exactly the implied shape, and no tensor the config does not account for
 * (e.g. layers beyond num_hidden_layers), apart from a tied lm_head and TOLERATED extras.
 */
export function checkTensorSet(
  cfg: ModelConfig,
  ts: TensorSet,
  names: WeightNames,
  tied: boolean,
  fields: { nLayers: string },
): void {
  const want = expectedTensors(cfg, names, tied);
  for (const [name, shape] of want) ts.entryOf(name, shape);
  for (const [name, t] of ts.entries) {
    if (want.has(name) || TOLERATED.some((re) => re.test(name))) continue;
    if (tied && name === names.lmHead) continue;
    throw new ModelFormatError(
      t.file,
      `tensor "${name}" is not part of the model the config describes (${cfg.arch}, ${fields.nLayers} = ${cfg.nLayers}${cfg.qkvBias ? ", q/k/v biases" : ""}${cfg.qkNorm ? ", q/k norms" : ""}): the config and the weights disagree`,
      t.headerOffset,
    );
  }
}

/** Load every weight with its expected shape. Tied when the config says so or lm_head is absent and tying is allowed. */
export function loadLlamaWeights(
  cfg: ModelConfig,
  exec: Executor,
  ts: TensorSet,
  fileNames: WeightNames,
  allowImplicitTie = false,
  fields: { nLayers: string } = { nLayers: "num_hidden_layers" },
): LlamaWeights {
  const names = cfg.postNorms && fileNames === HF_NAMES ? HF_POSTNORM_NAMES : fileNames;
  // GPT-2 names and lays out its tensors its own way (fused, transposed Conv1D weights).
  if (cfg.arch === "gpt2") return loadGpt2Weights(cfg, exec, ts);
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = cfg;
  const tiedAll = cfg.tiedEmbeddings || (allowImplicitTie && !ts.has(names.lmHead));
  // Names, shapes and count checked before the first allocation (a config that lies about a
  // size must not allocate for it).
  checkTensorSet(cfg, ts, names, tiedAll, fields);
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  // Matrices in the file's 16-bit type when kept (ts.weights, src/model/tensors.ts), else f32.
  const embed = ts.loadMatrix(exec, names.embed, [vocabSize, dim]);
  const layers: LayerWeights[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    const get = (key: LayerKey, shape: number[]) => ts.load(exec, names.layer(i, key), shape);
    const mat = (key: LayerKey, shape: number[]) => ts.loadMatrix(exec, names.layer(i, key), shape);
    // q, k and v rows in one allocation, and gate and up rows in another: LlamaModel runs each
    // group as one matmul when a call has a single token (decode), one pool job instead of
    // three or two. The per-matrix arrays are views into them (one type per group: f32 if the
    // file mixes types within it).
    const qkvType = ts.groupType((["wq", "wk", "wv"] as const).map((key) => names.layer(i, key)));
    const guType = ts.groupType((["wGate", "wUp"] as const).map((key) => names.layer(i, key)));
    const qkv = ts.allocMatrix(exec, qkvType, (qDim + 2 * kvDim) * dim); // (qDim + 2 kvDim, dim)
    const gateUp = ts.allocMatrix(exec, guType, 2 * hiddenDim * dim); // (2 hiddenDim, dim)
    /** Rows [row, row + shape[0]) of `all` (rows of `cols` elements), loaded from `key`. */
    const part = (all: Matrix, cols: number, row: number, key: LayerKey, shape: number[]) =>
      ts.loadMatrixInto(matrixRows(all, row, row + shape[0]!, cols), names.layer(i, key), shape);
    const vec = (all: Float32Array, row: number, key: LayerKey, shape: number[]) =>
      ts.loadInto(all.subarray(row, row + shape[0]!), names.layer(i, key), shape);
    const L: LayerWeights = {
      attnNorm: get("attnNorm", [dim]),
      wq: part(qkv, dim, 0, "wq", [qDim, dim]),
      wk: part(qkv, dim, qDim, "wk", [kvDim, dim]),
      wv: part(qkv, dim, qDim + kvDim, "wv", [kvDim, dim]),
      wo: mat("wo", [dim, qDim]),
      ffnNorm: get("ffnNorm", [dim]),
      wGate: part(gateUp, dim, 0, "wGate", [hiddenDim, dim]),
      wUp: part(gateUp, dim, hiddenDim, "wUp", [hiddenDim, dim]),
      wDown: mat("wDown", [dim, hiddenDim]),
    };
    if (cfg.qkvBias) {
      const b = exec.allocF32(qDim + 2 * kvDim); // (qDim + 2 kvDim)
      L.bq = vec(b, 0, "bq", [qDim]);
      L.bk = vec(b, qDim, "bk", [kvDim]);
      L.bv = vec(b, qDim + kvDim, "bv", [kvDim]);
    }
    if (cfg.qkNorm) {
      L.qNorm = get("qNorm", [headDim]);
      L.kNorm = get("kNorm", [headDim]);
    }
    if (cfg.postNorms) {
      L.postAttnNorm = get("postAttnNorm", [dim]);
      L.postFfnNorm = get("postFfnNorm", [dim]);
    }
    // Gemma stores RMSNorm weights as w and scales by (1 + w): fold the 1 in once here.
    if (cfg.normOffset)
      for (const w of [L.attnNorm, L.ffnNorm, L.qNorm, L.kNorm, L.postAttnNorm, L.postFfnNorm])
        if (w) for (let j = 0; j < w.length; j++) w[j] = w[j]! + 1;
    if (names.interleavedQK) {
      // (rows as stored: dim weights, or dim / 32 Q8_0 blocks of 34 bytes)
      interleavedToRotateHalf(L.wq, nHeads, headDim, storedLength(matrixType(L.wq), dim));
      interleavedToRotateHalf(L.wk, nKvHeads, headDim, storedLength(matrixType(L.wk), dim));
      // Biases follow their rows.
      if (L.bq) interleavedToRotateHalf(L.bq, nHeads, headDim, 1);
      if (L.bk) interleavedToRotateHalf(L.bk, nKvHeads, headDim, 1);
      // Per-head norm weights are indexed like one head's rows.
      if (L.qNorm) interleavedToRotateHalf(L.qNorm, 1, headDim, 1);
      if (L.kNorm) interleavedToRotateHalf(L.kNorm, 1, headDim, 1);
    }
    layers.push(L);
  }
  const finalNorm = ts.load(exec, names.finalNorm, [dim]);
  if (cfg.normOffset) for (let j = 0; j < dim; j++) finalNorm[j] = finalNorm[j]! + 1;
  const lmHead = tiedAll ? embed : ts.loadMatrix(exec, names.lmHead, [vocabSize, dim]);
  return { embed, layers, finalNorm, lmHead };
}
