/**
 * Random-weight models with real models' shapes, written as HF directories (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json) so they load exactly like a
 * download. For benchmarks at realistic sizes without network access; deterministic per seed.
 * The text they produce is noise: use them for speed and memory, never for quality.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { f32ToF16 } from "../quant/half.ts";
import { byteLevelTokenizerJson } from "./bpe-vocab.ts";
import { parseHfConfig } from "./config.ts";
import { gpt2Tensors } from "./gpt2-weights.ts";
import { HF_NAMES, HF_POSTNORM_NAMES, type LayerKey } from "./llama-weights.ts";
import { spTokenizerJson } from "./sp-vocab.ts";

/** HF config.json fields of each shape (from the public configs of those models). */
export const SYNTH_SHAPES: Record<string, Record<string, unknown>> = {
  "smollm2-135m": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    head_dim: 64,
    vocab_size: 49152,
    max_position_embeddings: 8192,
    rope_theta: 100000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  },
  "qwen2.5-0.5b": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    vocab_size: 151936,
    max_position_embeddings: 32768,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
  },
  // Qwen2.5-1.5B (config.json of Qwen/Qwen2.5-1.5B): 1.54B parameters, 3.1 GB in f16.
  "qwen2.5-1.5b": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    vocab_size: 151936,
    max_position_embeddings: 131072,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
  },
  "llama-3.2-1b": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    vocab_size: 128256,
    max_position_embeddings: 131072,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
    rope_scaling: {
      rope_type: "llama3",
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  },
  "qwen3-0.6b": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    vocab_size: 151936,
    max_position_embeddings: 40960,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    attention_bias: false,
    sliding_window: null,
    use_sliding_window: false,
  },
  gpt2: {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    n_embd: 768,
    n_layer: 12,
    n_head: 12,
    n_inner: null,
    n_positions: 1024,
    vocab_size: 50257,
    layer_norm_epsilon: 1e-5,
    activation_function: "gelu_new",
  },
  "gemma-2-2b": {
    architectures: ["Gemma2ForCausalLM"],
    model_type: "gemma2",
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    vocab_size: 256000,
    max_position_embeddings: 8192,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    hidden_activation: "gelu_pytorch_tanh",
    final_logit_softcapping: 30,
    attn_logit_softcapping: 50,
    tie_word_embeddings: true,
  },
  "gemma-3-1b": {
    architectures: ["Gemma3ForCausalLM"],
    model_type: "gemma3_text",
    hidden_size: 1152,
    intermediate_size: 6912,
    num_hidden_layers: 26,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 256,
    vocab_size: 262144,
    max_position_embeddings: 32768,
    rope_theta: 1000000,
    rope_local_base_freq: 10000,
    rms_norm_eps: 1e-6,
    query_pre_attn_scalar: 256,
    sliding_window: 512,
    sliding_window_pattern: 6,
    hidden_activation: "gelu_pytorch_tanh",
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    rope_scaling: null,
    tie_word_embeddings: true,
  },
  /** A few-KB model for tests: GQA, untied head. */
  tiny: {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 320,
    max_position_embeddings: 256,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
  },
  /** Tiny Qwen2 (q/k/v biases, tied) with Llama-3 rope scaling: exercises the other code paths. */
  "tiny-qwen2": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    hidden_size: 48,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    vocab_size: 300,
    max_position_embeddings: 256,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 512,
    },
  },
  /** Tiny Mistral: the Llama block with a sliding window of 6 tokens (GQA, untied). */
  "tiny-mistral": {
    architectures: ["MistralForCausalLM"],
    model_type: "mistral",
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 320,
    max_position_embeddings: 256,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
    sliding_window: 6,
  },
  /** Tiny Qwen3: q/k norms, head_dim (16) decoupled from hidden / heads (32 / 4), GQA, untied. */
  "tiny-qwen3": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    vocab_size: 320,
    max_position_embeddings: 256,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    attention_bias: false,
  },
  /**
   * Tiny Gemma 3: 3 layers with pattern 3 (local, local, global), window 5, local RoPE base
   * 10000 vs global 1e6 with linear scaling 4, query_pre_attn_scalar 24 != head_dim 16.
   */
  "tiny-gemma3": {
    architectures: ["Gemma3ForCausalLM"],
    model_type: "gemma3_text",
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    vocab_size: 320,
    max_position_embeddings: 256,
    rope_theta: 1000000,
    rope_local_base_freq: 10000,
    rope_scaling: { rope_type: "linear", factor: 4 },
    rms_norm_eps: 1e-6,
    query_pre_attn_scalar: 24,
    sliding_window: 5,
    sliding_window_pattern: 3,
    hidden_activation: "gelu_pytorch_tanh",
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    tie_word_embeddings: true,
  },
  /**
   * Tiny Gemma 2: 4 layers alternating local (window 5) / global, query_pre_attn_scalar 24 !=
   * head_dim 16, and soft-caps low enough to bind on random weights (attention 1.5, logits 4).
   */
  "tiny-gemma2": {
    architectures: ["Gemma2ForCausalLM"],
    model_type: "gemma2",
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    vocab_size: 320,
    max_position_embeddings: 256,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    query_pre_attn_scalar: 24,
    sliding_window: 5,
    hidden_activation: "gelu_pytorch_tanh",
    final_logit_softcapping: 4,
    attn_logit_softcapping: 1.5,
    tie_word_embeddings: true,
  },
  /** Tiny GPT-2: 2 layers, 4 heads, 64 learned positions. */
  "tiny-gpt2": {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    n_inner: null,
    n_positions: 64,
    vocab_size: 320,
    layer_norm_epsilon: 1e-5,
    activation_function: "gelu_new",
  },
};

/**
 * Weight std of test shapes whose nonlinearity must be exercised beyond its linear range (GPT-2's
 * tanh-approximated GELU differs from others only for |x| ~ 1); default 0.02 (HF's init).
 */
const INIT_STD: Record<string, number> = { "tiny-gpt2": 0.25, "tiny-gemma3": 0.15, "tiny-gemma2": 0.3 };

export interface SynthOptions {
  shape: string;
  out: string;
  seed?: number;
  dtype?: "f16" | "f32";
}

/**
 * A SentencePiece-style vocab of exactly `size` pieces: <unk> <s> </s>, 256 byte-fallback
 * pieces, printable ASCII with and without "▁", then "▁" + letter strings as fillers.
 */
export function synthVocab(size: number): string[] {
  const pieces = ["<unk>", "<s>", "</s>"];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const seen = new Set(pieces);
  const push = (p: string) => {
    if (pieces.length < size && !seen.has(p)) {
      seen.add(p);
      pieces.push(p);
    }
  };
  push("▁");
  for (let c = 33; c < 127; c++) push(String.fromCharCode(c));
  for (let c = 33; c < 127; c++) push(`▁${String.fromCharCode(c)}`);
  const letters = "etaoinshrdlucmfwypvbgkjqxz";
  for (let i = 0; pieces.length < size; i++) {
    let s = "";
    for (let n = i + 26; n >= 26; n = Math.floor(n / 26) - 1) s = letters[n % 26] + s;
    push(`▁${s}`);
    push(s);
  }
  return pieces;
}

function xorshift(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

type Init = "one" | "near-one" | "near-zero" | "rand";

/** The HF tensors of a shape's config: (name, shape, init), in file order. */
function synthTensors(
  hf: Record<string, unknown>,
  file: string,
): { name: string; shape: number[]; init: Init }[] {
  const cfg = parseHfConfig({ ...hf, hidden_act: "silu" }, file);
  const tensors: { name: string; shape: number[]; init: Init }[] = [];
  if (cfg.arch === "gpt2") {
    // Norm weights near one and random biases, so the tests see every one of them used.
    for (const [name, shape] of gpt2Tensors(cfg))
      tensors.push({ name, shape, init: /ln_.*weight$/.test(name) ? "near-one" : "rand" });
    return tensors;
  }
  const { dim, hiddenDim: hidden, nHeads, nKvHeads: nKv, headDim, vocabSize: vocab } = cfg;
  const qDim = nHeads * headDim;
  const kvDim = nKv * headDim;
  const t = (name: string, shape: number[], init: Init = "rand") => tensors.push({ name, shape, init });
  const names = cfg.postNorms ? HF_POSTNORM_NAMES : HF_NAMES;
  // Gemma's norms are (1 + w): random w near zero exercises the offset.
  const normInit: Init = cfg.normOffset ? "near-zero" : "one";
  const qkInit: Init = cfg.normOffset ? "near-zero" : "near-one";
  t(names.embed, [vocab, dim]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const n = (k: LayerKey) => names.layer(l, k);
    t(n("attnNorm"), [dim], normInit);
    t(n("wq"), [qDim, dim]);
    t(n("wk"), [kvDim, dim]);
    t(n("wv"), [kvDim, dim]);
    if (cfg.qkvBias) {
      t(n("bq"), [qDim]);
      t(n("bk"), [kvDim]);
      t(n("bv"), [kvDim]);
    }
    if (cfg.qkNorm) {
      t(n("qNorm"), [headDim], qkInit);
      t(n("kNorm"), [headDim], qkInit);
    }
    t(n("wo"), [dim, qDim]);
    if (cfg.postNorms) t(n("postAttnNorm"), [dim], normInit);
    t(n("ffnNorm"), [dim], normInit);
    t(n("wGate"), [hidden, dim]);
    t(n("wUp"), [hidden, dim]);
    t(n("wDown"), [dim, hidden]);
    if (cfg.postNorms) t(n("postFfnNorm"), [dim], normInit);
  }
  t(names.finalNorm, [dim], normInit);
  if (!cfg.tiedEmbeddings) t(names.lmHead, [vocab, dim]);
  return tensors;
}

/** Write the model; returns the directory. */
export function synthModel(o: SynthOptions): string {
  const cfg = SYNTH_SHAPES[o.shape];
  if (!cfg)
    throw new ConfigError(
      "--shape",
      `unknown shape "${o.shape}"; known: ${Object.keys(SYNTH_SHAPES).join(", ")}`,
    );
  const dtype = o.dtype ?? "f16";
  if (dtype !== "f16" && dtype !== "f32")
    throw new ConfigError("--dtype", `expected f16 or f32, got "${dtype}"`);
  const tensors = synthTensors(cfg, o.out);

  const el = dtype === "f16" ? 2 : 4;
  const header: Record<string, unknown> = {
    __metadata__: { format: "pt", kvlab: `synth ${o.shape} seed ${o.seed ?? 0}` },
  };
  let off = 0;
  for (const x of tensors) {
    const bytes = x.shape.reduce((a, b) => a * b, 1) * el;
    header[x.name] = {
      dtype: dtype === "f16" ? "F16" : "F32",
      shape: x.shape,
      data_offsets: [off, off + bytes],
    };
    off += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // data 8-byte aligned, as HF writes it
  mkdirSync(o.out, { recursive: true });
  const fd = openSync(join(o.out, "model.safetensors"), "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, "utf8"));
    const rand = xorshift(o.seed ?? 0);
    const amp = (INIT_STD[o.shape] ?? 0.02) * Math.sqrt(3);
    const CH = 1 << 20;
    const f32 = new Float32Array(CH);
    const u16 = new Uint16Array(CH);
    for (const x of tensors) {
      let left = x.shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(CH, left);
        // "one": norm weights as HF initialises them; "near-one": 1 +- 0.2, so that a test can
        // tell which norm weight is applied where ("near-zero" for Gemma's (1 + w) norms); else
        // uniform with std 0.02 (HF's init).
        for (let i = 0; i < n; i++)
          f32[i] =
            x.init === "one"
              ? 1
              : x.init === "near-one"
                ? 1 + (rand() * 2 - 1) * 0.2
                : (rand() * 2 - 1) * amp;
        if (dtype === "f16") {
          for (let i = 0; i < n; i++) u16[i] = f32ToF16(f32[i]!);
          writeSync(fd, new Uint8Array(u16.buffer, 0, n * 2));
        } else writeSync(fd, new Uint8Array(f32.buffer, 0, n * 4));
        left -= n;
      }
    }
  } finally {
    closeSync(fd);
  }
  // GPT-2 shapes get a byte-level BPE vocab as GPT-2's (<|endoftext|> last, no BOS added);
  // the others a SentencePiece-style one (<unk> <s> </s>, BOS added).
  const gpt2 = cfg.model_type === "gpt2";
  const bpe = gpt2 ? byteLevelTokenizerJson(cfg.vocab_size as number) : undefined;
  writeFileSync(
    join(o.out, "config.json"),
    JSON.stringify(
      {
        ...cfg,
        ...(gpt2 || cfg.model_type === "gemma3_text" || cfg.model_type === "gemma2"
          ? {}
          : { hidden_act: "silu" }),
        bos_token_id: bpe ? bpe.eosId : 1,
        eos_token_id: bpe ? bpe.eosId : 2,
        torch_dtype: dtype === "f16" ? "float16" : "float32",
      },
      null,
      2,
    ),
  );
  if (bpe) {
    writeFileSync(join(o.out, "tokenizer.json"), JSON.stringify(bpe.json));
    writeFileSync(
      join(o.out, "tokenizer_config.json"),
      JSON.stringify(
        {
          bos_token: "<|endoftext|>",
          eos_token: "<|endoftext|>",
          unk_token: "<|endoftext|>",
          add_bos_token: false,
        },
        null,
        2,
      ),
    );
    return o.out;
  }
  const pieces = synthVocab(cfg.vocab_size as number);
  const scores = pieces.map((_, i) => -i);
  writeFileSync(
    join(o.out, "tokenizer.json"),
    JSON.stringify(spTokenizerJson({ pieces, scores, special: [0, 1, 2], unkId: 0 })),
  );
  writeFileSync(
    join(o.out, "tokenizer_config.json"),
    JSON.stringify({ bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", add_bos_token: true }, null, 2),
  );
  return o.out;
}
