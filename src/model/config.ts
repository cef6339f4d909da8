/**
 * Model hyper-parameters in kvlab's dimension names, and their parsing from a Hugging Face
 * `config.json`. Every loader (HF, llama2.c, GGUF) produces the same `ModelConfig`, so the
 * forward pass never knows which file format it came from.
 */
import { ConfigError } from "../errors.ts";

/** Llama-3 style frequency-dependent RoPE scaling (HF `rope_scaling` with rope_type "llama3"). */
export interface Llama3RopeScaling {
  type: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Architectures the forward pass supports: both are the Llama block; qwen2 adds q/k/v biases. */
export type ModelArch = "llama" | "qwen2";

export interface ModelConfig {
  arch: ModelArch;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Longest context the model was trained for. */
  maxSeqLen: number;
  ropeTheta: number;
  ropeScaling?: Llama3RopeScaling;
  /**
   * Per-frequency divisors (headDim/2) applied after ropeScaling: GGUF stores Llama-3 scaling
   * this way (tensor rope_freqs.weight) instead of as parameters.
   */
  ropeFreqFactors?: Float32Array;
  rmsNormEps: number;
  /** lm_head shares the token embedding matrix. */
  tiedEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2). */
  qkvBias: boolean;
  bosId?: number;
  eosId?: number;
}

/** HF `architectures` / `model_type` values that map onto the Llama block. */
const HF_ARCHS: Record<string, ModelArch> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  llama: "llama",
  mistral: "llama",
  qwen2: "qwen2",
};

function num(cfg: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(key, `missing required field "${key}" (a number); add it to config.json`, file);
  }
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new ConfigError(key, `expected a number, got ${JSON.stringify(v)}`, file);
  return v;
}

function optId(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (Array.isArray(v) && typeof v[0] === "number") return v[0];
  return undefined;
}

/** Parse a HF config.json object (already JSON-decoded). `file` is used in error messages. */
export function parseHfConfig(cfg: unknown, file: string): ModelConfig {
  if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg))
    throw new ConfigError("", "config.json must hold a JSON object", file);
  const c = cfg as Record<string, unknown>;
  const archName =
    (Array.isArray(c.architectures) && typeof c.architectures[0] === "string"
      ? c.architectures[0]
      : undefined) ?? (typeof c.model_type === "string" ? c.model_type : undefined);
  if (!archName)
    throw new ConfigError(
      "architectures",
      'missing "architectures" and "model_type"; cannot tell the model family',
      file,
    );
  const arch = HF_ARCHS[archName];
  if (!arch)
    throw new ConfigError(
      "architectures",
      `unsupported architecture "${archName}"; kvlab runs ${Object.keys(HF_ARCHS)
        .filter((k) => k.endsWith("CausalLM"))
        .join(", ")}`,
      file,
    );
  const dim = num(c, "hidden_size", file);
  const nHeads = num(c, "num_attention_heads", file);
  const nKvHeads = num(c, "num_key_value_heads", file, nHeads);
  const headDim = num(c, "head_dim", file, dim / nHeads);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0)
    throw new ConfigError("head_dim", `head_dim ${headDim} must be an even integer`, file);
  if (nHeads % nKvHeads !== 0)
    throw new ConfigError(
      "num_key_value_heads",
      `num_attention_heads (${nHeads}) must be a multiple of num_key_value_heads (${nKvHeads})`,
      file,
    );
  const act = c.hidden_act ?? "silu";
  if (act !== "silu")
    throw new ConfigError("hidden_act", `unsupported activation "${String(act)}" (only silu)`, file);
  let ropeScaling: Llama3RopeScaling | undefined;
  const rs = c.rope_scaling;
  if (rs !== undefined && rs !== null) {
    if (typeof rs !== "object") throw new ConfigError("rope_scaling", "expected an object or null", file);
    const r = rs as Record<string, unknown>;
    const kind = r.rope_type ?? r.type;
    if (kind === "default") {
      // no scaling
    } else if (kind === "llama3") {
      ropeScaling = {
        type: "llama3",
        factor: num(r, "factor", file),
        lowFreqFactor: num(r, "low_freq_factor", file),
        highFreqFactor: num(r, "high_freq_factor", file),
        originalMaxPositionEmbeddings: num(r, "original_max_position_embeddings", file),
      };
    } else
      throw new ConfigError(
        "rope_scaling",
        `unsupported rope_scaling type ${JSON.stringify(kind)} (kvlab supports llama3)`,
        file,
      );
  }
  return {
    arch,
    dim,
    hiddenDim: num(c, "intermediate_size", file),
    nLayers: num(c, "num_hidden_layers", file),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: num(c, "vocab_size", file),
    maxSeqLen: num(c, "max_position_embeddings", file, 2048),
    ropeTheta: num(c, "rope_theta", file, 10000),
    ...(ropeScaling ? { ropeScaling } : {}),
    rmsNormEps: num(c, "rms_norm_eps", file),
    tiedEmbeddings: c.tie_word_embeddings === true,
    qkvBias: arch === "qwen2" || c.attention_bias === true,
    bosId: optId(c.bos_token_id),
    eosId: optId(c.eos_token_id),
  };
}
