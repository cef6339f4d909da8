/**
 * GPT-2's weights (HF GPT2LMHeadModel safetensors: wte, wpe, h.N.{ln_1, attn.c_attn,
 * attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_f; optionally under "transformer.") as the one
 * forward's LlamaWeights. GPT-2's linears are Conv1D modules, whose weight is stored (in, out),
 * transposed from nn.Linear's (out, in): each is transposed on load. c_attn is q, k and v fused
 * along its output axis, so it lands in the (3 dim, dim) q/k/v block the forward already fuses.
 * lm_head is always tied to wte.
 */
import { ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import type { ModelConfig } from "./config.ts";
import type { LayerWeights, LlamaWeights } from "./llama.ts";
import type { TensorSet } from "./tensors.ts";

/** Buffers HF saves beside the weights (the causal mask) and a tied lm_head: ignored. */
const TOLERATED = [/(^|\.)attn\.(masked_)?bias$/, /^lm_head\.weight$/];

/** "transformer." when the file names tensors as GPT2LMHeadModel's state dict, else "". */
function prefixOf(ts: TensorSet): string {
  return ts.has("transformer.wte.weight") ? "transformer." : "";
}

/** Every GPT-2 tensor by name with its file shape ((in, out) for the Conv1D weights). */
export function gpt2Tensors(cfg: ModelConfig, prefix = ""): Map<string, number[]> {
  const { dim: D, hiddenDim: H, vocabSize: V, maxSeqLen: P } = cfg;
  const m = new Map<string, number[]>();
  m.set(`${prefix}wte.weight`, [V, D]);
  m.set(`${prefix}wpe.weight`, [P, D]);
  for (let i = 0; i < cfg.nLayers; i++) {
    const h = `${prefix}h.${i}.`;
    m.set(`${h}ln_1.weight`, [D]);
    m.set(`${h}ln_1.bias`, [D]);
    m.set(`${h}attn.c_attn.weight`, [D, 3 * D]);
    m.set(`${h}attn.c_attn.bias`, [3 * D]);
    m.set(`${h}attn.c_proj.weight`, [D, D]);
    m.set(`${h}attn.c_proj.bias`, [D]);
    m.set(`${h}ln_2.weight`, [D]);
    m.set(`${h}ln_2.bias`, [D]);
    m.set(`${h}mlp.c_fc.weight`, [D, H]);
    m.set(`${h}mlp.c_fc.bias`, [H]);
    m.set(`${h}mlp.c_proj.weight`, [H, D]);
    m.set(`${h}mlp.c_proj.bias`, [D]);
  }
  m.set(`${prefix}ln_f.weight`, [D]);
  m.set(`${prefix}ln_f.bias`, [D]);
  return m;
}

export function loadGpt2Weights(cfg: ModelConfig, exec: Executor, ts: TensorSet): LlamaWeights {
  const prefix = prefixOf(ts);
  const want = gpt2Tensors(cfg, prefix);
  // Names and shapes checked before the first allocation, as loadLlamaWeights does.
  for (const [name, shape] of want) ts.entryOf(name, shape);
  for (const [name, t] of ts.entries)
    if (!want.has(name) && !TOLERATED.some((re) => re.test(name)))
      throw new ModelFormatError(
        t.file,
        `tensor "${name}" is not part of the GPT-2 model the config describes (n_layer = ${cfg.nLayers}): the config and the weights disagree`,
        t.headerOffset,
      );
  const { dim: D, hiddenDim: H } = cfg;
  const get = (name: string) => ts.load(exec, `${prefix}${name}`, want.get(`${prefix}${name}`)!);
  /** A Conv1D weight (dIn, dOut) in the file, written transposed as (dOut, dIn) into dst. */
  const conv = (dst: Float32Array, name: string, dIn: number, dOut: number) => {
    const full = `${prefix}${name}`;
    const tmp = new Float32Array(dIn * dOut);
    ts.files.readF32(ts.entryOf(full, [dIn, dOut]), tmp);
    for (let i = 0; i < dIn; i++) for (let o = 0; o < dOut; o++) dst[o * dIn + i] = tmp[i * dOut + o]!;
    return dst;
  };
  const layers: LayerWeights[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    const h = `h.${i}.`;
    const qkv = conv(exec.allocF32(3 * D * D), `${h}attn.c_attn.weight`, D, 3 * D); // (3D, D)
    const bqkv = get(`${h}attn.c_attn.bias`); // (3D)
    layers.push({
      attnNorm: get(`${h}ln_1.weight`),
      attnNormB: get(`${h}ln_1.bias`),
      wq: qkv.subarray(0, D * D),
      wk: qkv.subarray(D * D, 2 * D * D),
      wv: qkv.subarray(2 * D * D),
      bq: bqkv.subarray(0, D),
      bk: bqkv.subarray(D, 2 * D),
      bv: bqkv.subarray(2 * D),
      wo: conv(exec.allocF32(D * D), `${h}attn.c_proj.weight`, D, D),
      bo: get(`${h}attn.c_proj.bias`),
      ffnNorm: get(`${h}ln_2.weight`),
      ffnNormB: get(`${h}ln_2.bias`),
      wUp: conv(exec.allocF32(H * D), `${h}mlp.c_fc.weight`, D, H),
      bUp: get(`${h}mlp.c_fc.bias`),
      wDown: conv(exec.allocF32(D * H), `${h}mlp.c_proj.weight`, H, D),
      bDown: get(`${h}mlp.c_proj.bias`),
    });
  }
  const embed = get("wte.weight");
  return {
    embed,
    posEmbed: get("wpe.weight"),
    layers,
    finalNorm: get("ln_f.weight"),
    finalNormB: get("ln_f.bias"),
    lmHead: embed,
  };
}
