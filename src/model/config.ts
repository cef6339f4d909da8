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

/** HF rope_scaling "linear" (position interpolation): every frequency divided by factor (Gemma 3 global layers). */
export interface LinearRopeScaling {
  type: "linear";
  factor: number;
}

/**
 * Model families the one forward (src/model/llama.ts) runs. Each is the Llama block configured
 * by the ModelConfig fields below (norm, positions, ffn, biases, qkNorm, slidingWindow), never
 * a second forward.
 */
export type ModelArch = "llama" | "qwen2" | "qwen3" | "gpt2" | "gemma2" | "gemma3";

/** What each family is, for `kvlab info` and the docs. */
export const MODEL_FAMILIES: Record<ModelArch, string> = {
  llama: "Llama / Mistral / SmolLM: RMSNorm, RoPE, SwiGLU (Mistral's sliding_window honoured)",
  qwen2: "Qwen2 / Qwen2.5: the Llama block with q/k/v biases",
  qwen3: "Qwen3: RMSNorm over each head's q and k before RoPE (q_norm/k_norm), head_dim decoupled",
  gpt2: "GPT-2: learned absolute positions, LayerNorm with bias, biases on every linear, GELU (tanh) MLP",
  gemma2:
    "Gemma 2: embedding x sqrt(hidden), RMSNorm (1+w), pre/post attention and FFN norms, GeGLU, alternating local (sliding window) / global layers, attention and final logit soft-capping (cap * tanh(x / cap))",
  gemma3:
    "Gemma 3 (text): embedding x sqrt(hidden), RMSNorm (1+w), q/k norms, pre/post attention and FFN norms, GeGLU, 5 local (sliding window, own RoPE base) : 1 global layers",
};

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
  /** Scaling of the (global layers') RoPE frequencies. */
  ropeScaling?: Llama3RopeScaling | LinearRopeScaling;
  /**
   * Per-frequency divisors (headDim/2) applied after ropeScaling: GGUF stores Llama-3 scaling
   * this way (tensor rope_freqs.weight) instead of as parameters.
   */
  ropeFreqFactors?: Float32Array;
  rmsNormEps: number;
  /** lm_head shares the token embedding matrix. */
  tiedEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2, GPT-2). */
  qkvBias: boolean;
  /**
   * Attention limited to the last `slidingWindow` positions (query p sees keys k with
   * p - k < slidingWindow, as HF's and llama.cpp's masks): Mistral's sliding window. The model
   * enforces it whatever cache is asked for (KVShape.window, src/cache/model-window.ts).
   */
  slidingWindow?: number;
  /** Per layer (nLayers): whether slidingWindow applies; absent = every layer (Mistral). Gemma 3: 5 local : 1 global. */
  windowLayers?: boolean[];
  /** RoPE base of the windowed (local) layers when it differs from ropeTheta (Gemma 3's rope_local_base_freq; unscaled). */
  ropeLocalTheta?: number;
  /** RMSNorm (weights of headDim) over each head's q and k before RoPE (Qwen3). Default false. */
  qkNorm?: boolean;
  /** "rms" (default) or "layer": LayerNorm with weight and bias (GPT-2), eps = rmsNormEps. */
  norm?: "rms" | "layer";
  /** "rope" (default) or "learned": absolute position embeddings added to the input (GPT-2). */
  positions?: "rope" | "learned";
  /**
   * "swiglu" (default): down(silu(gate) * up); "geglu": down(gelu_tanh(gate) * up) (Gemma);
   * "gelu": down(gelu_tanh(up)) with no gate (GPT-2).
   */
  ffn?: "swiglu" | "geglu" | "gelu";
  /** RMSNorm weights are stored as w and applied as (1 + w) (Gemma); loaders fold the 1 in. */
  normOffset?: boolean;
  /** Norms after attention and after the FFN, before each residual add (Gemma 2/3), besides the pre-norms. */
  postNorms?: boolean;
  /** The token embedding is multiplied by this (Gemma: sqrt(hidden_size)). */
  embedScale?: number;
  /** Attention scores are q.k / sqrt(queryPreAttnScalar) instead of / sqrt(headDim) (Gemma's query_pre_attn_scalar). */
  queryPreAttnScalar?: number;
  /** Final logits soft-capped: cap * tanh(logit / cap) (Gemma 2's final_logit_softcapping). */
  finalSoftcap?: number;
  /**
   * Attention scores soft-capped before the softmax: cap * tanh(score / cap), score already
   * scaled (Gemma 2's attn_logit_softcapping). The cache computes attention, so the model puts
   * the cap in its KV shape (src/cache/softcap.ts) and createCache builds caches that apply it.
   */
  attnSoftcap?: number;
  /** The output projection and both FFN matrices carry biases (GPT-2). Default false. */
  linearBias?: boolean;
  bosId?: number;
  eosId?: number;
}

/** HF `architectures` / `model_type` values that map onto the Llama block. */
const HF_ARCHS: Record<string, ModelArch> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  GPT2LMHeadModel: "gpt2",
  Gemma2ForCausalLM: "gemma2",
  Gemma3ForCausalLM: "gemma3",
  gemma2: "gemma2",
  gemma3_text: "gemma3",
  llama: "llama",
  mistral: "llama",
  qwen2: "qwen2",
  qwen3: "qwen3",
  gpt2: "gpt2",
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

/** A token id field: a number or a list whose first entry is one; anything else is an error. */
function optId(v: unknown, key: string, file: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "number") return v;
  if (Array.isArray(v) && typeof v[0] === "number") return v[0];
  throw new ConfigError(key, `expected a token id (or a list of them), got ${JSON.stringify(v)}`, file);
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
        .filter((k) => /[A-Z]/.test(k))
        .join(", ")}`,
      file,
    );
  if (arch === "gpt2") return parseGpt2Config(c, file);
  if (arch === "gemma3" || arch === "gemma2") return parseGemmaConfig(c, file, arch);
  const dim = num(c, "hidden_size", file);
  const nHeads = num(c, "num_attention_heads", file);
  const nKvHeads = num(c, "num_key_value_heads", file, nHeads);
  if (c.head_dim === undefined && !(Number.isInteger(dim / nHeads) && nHeads > 0))
    throw new ConfigError(
      "num_attention_heads",
      `hidden_size (${dim}) must be a multiple of num_attention_heads (${nHeads}) when head_dim is not given`,
      file,
    );
  const headDim = num(c, "head_dim", file, dim / nHeads);
  const act = c.hidden_act ?? "silu";
  if (act !== "silu")
    throw new ConfigError("hidden_act", `unsupported activation "${String(act)}" (only silu)`, file);
  let ropeScaling: Llama3RopeScaling | LinearRopeScaling | undefined;
  const rs = c.rope_scaling;
  if (rs !== undefined && rs !== null) {
    if (typeof rs !== "object") throw new ConfigError("rope_scaling", "expected an object or null", file);
    const r = rs as Record<string, unknown>;
    const kind = r.rope_type ?? r.type;
    if (kind === "default") {
      // no scaling
    } else if (kind === "linear") {
      ropeScaling = { type: "linear", factor: num(r, "factor", file) };
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
        `unsupported rope_scaling type ${JSON.stringify(kind)} (kvlab supports llama3 and linear)`,
        file,
      );
  }
  const out: ModelConfig = {
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
    ...slidingWindowOf(c, file),
    ...(arch === "qwen3" ? { qkNorm: true } : {}),
    bosId: optId(c.bos_token_id, "bos_token_id", file),
    eosId: optId(c.eos_token_id, "eos_token_id", file),
  };
  validateModelConfig(out, file, HF_CONFIG_FIELDS);
  return out;
}

/**
 * HF `sliding_window`: Mistral v0.1 sets 4096 (and `use_sliding_window` is absent); Qwen2/3
 * configs carry a window with `use_sliding_window: false` (not used), later Mistrals null.
 */
function slidingWindowOf(c: Record<string, unknown>, file: string): { slidingWindow?: number } {
  if (c.sliding_window === undefined || c.sliding_window === null || c.use_sliding_window === false)
    return {};
  const w = num(c, "sliding_window", file);
  if (!Number.isSafeInteger(w) || w < 1)
    throw new ConfigError("sliding_window", `must be a positive integer or null, got ${w}`, file);
  return { slidingWindow: w };
}

/**
 * Gemma 2's and Gemma 3's text config.json (HF modeling_gemma2 / modeling_gemma3): the Llama
 * fields plus query_pre_attn_scalar, sliding_window with layer_types (or Gemma 3's
 * sliding_window_pattern; Gemma 2 alternates, layer 0 local), hidden_activation
 * gelu_pytorch_tanh, final_logit_softcapping; Gemma 2 also attn_logit_softcapping (applied by
 * the caches' attention, src/cache/softcap.ts) and has no q/k norms; Gemma 3 has q/k norms,
 * rope_local_base_freq and no attention soft-capping (a value there is refused).
 */
function parseGemmaConfig(c: Record<string, unknown>, file: string, arch: "gemma2" | "gemma3"): ModelConfig {
  if (arch === "gemma3" && c.attn_logit_softcapping !== undefined && c.attn_logit_softcapping !== null)
    throw new ConfigError(
      "attn_logit_softcapping",
      `Gemma 3 does not soft-cap attention scores, got ${String(c.attn_logit_softcapping)}; a Gemma 2 checkpoint says Gemma2ForCausalLM`,
      file,
    );
  const act = c.hidden_activation ?? c.hidden_act ?? "gelu_pytorch_tanh";
  if (act !== "gelu_pytorch_tanh" && act !== "gelu_new")
    throw new ConfigError(
      "hidden_activation",
      `unsupported activation "${String(act)}" (Gemma uses gelu_pytorch_tanh)`,
      file,
    );
  // The Llama fields through the Llama parser (its activation check is for SwiGLU models).
  const base = parseHfConfig(
    {
      ...c,
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_act: "silu",
      sliding_window: null,
    },
    file,
  );
  const nLayers = base.nLayers;
  let windowLayers: boolean[];
  if (Array.isArray(c.layer_types)) {
    if (
      c.layer_types.length !== nLayers ||
      c.layer_types.some((t) => t !== "sliding_attention" && t !== "full_attention")
    )
      throw new ConfigError(
        "layer_types",
        `expected ${nLayers} entries of "sliding_attention" / "full_attention"`,
        file,
      );
    windowLayers = c.layer_types.map((t) => t === "sliding_attention");
  } else {
    // HF: Gemma 3 layer i is local unless (i + 1) is a multiple of the pattern (6); Gemma 2
    // alternates, local where (i + 1) is odd (is_sliding = not bool(i % 2)), i.e. pattern 2.
    const pattern = arch === "gemma2" ? 2 : num(c, "sliding_window_pattern", file, 6);
    windowLayers = Array.from({ length: nLayers }, (_, i) => (i + 1) % pattern !== 0);
  }
  const window = num(c, "sliding_window", file, 4096);
  const cap = (k: "final_logit_softcapping" | "attn_logit_softcapping") => {
    const v = c[k];
    if (v === undefined || v === null) return undefined;
    const x = num(c, k, file);
    if (!(x > 0)) throw new ConfigError(k, `must be a number > 0 or null, got ${x}`, file);
    return x;
  };
  const fsc = cap("final_logit_softcapping");
  const asc = arch === "gemma2" ? cap("attn_logit_softcapping") : undefined;
  const out: ModelConfig = {
    ...base,
    arch,
    // PretrainedConfig ties by default; Gemma checkpoints have no lm_head.
    tiedEmbeddings: c.tie_word_embeddings !== false,
    slidingWindow: window,
    windowLayers,
    // Gemma 2: one RoPE base for every layer; Gemma 3: the local layers' own base.
    ...(arch === "gemma3"
      ? { ropeLocalTheta: num(c, "rope_local_base_freq", file, 10000), qkNorm: true }
      : {}),
    ffn: "geglu",
    normOffset: true,
    postNorms: true,
    embedScale: Math.sqrt(base.dim),
    queryPreAttnScalar: num(c, "query_pre_attn_scalar", file, base.headDim),
    ...(fsc !== undefined ? { finalSoftcap: fsc } : {}),
    ...(asc !== undefined ? { attnSoftcap: asc } : {}),
  };
  validateModelConfig(out, file, HF_CONFIG_FIELDS);
  return out;
}

/** GPT-2's config.json (n_embd, n_layer, n_head, n_positions, n_inner, layer_norm_epsilon). */
function parseGpt2Config(c: Record<string, unknown>, file: string): ModelConfig {
  const dim = num(c, "n_embd", file);
  const nHeads = num(c, "n_head", file);
  if (!(nHeads > 0 && Number.isInteger(dim / nHeads)))
    throw new ConfigError("n_head", `n_embd (${dim}) must be a multiple of n_head (${nHeads})`, file);
  const act = c.activation_function ?? "gelu_new";
  // gelu_new / gelu_pytorch_tanh are the tanh approximation GPT-2 was trained with.
  if (act !== "gelu_new" && act !== "gelu_pytorch_tanh")
    throw new ConfigError(
      "activation_function",
      `unsupported activation "${String(act)}" (kvlab runs gelu_new, the tanh approximation)`,
      file,
    );
  const inner = c.n_inner;
  const out: ModelConfig = {
    arch: "gpt2",
    dim,
    hiddenDim: inner === undefined || inner === null ? 4 * dim : num(c, "n_inner", file),
    nLayers: num(c, "n_layer", file),
    nHeads,
    nKvHeads: nHeads,
    headDim: dim / nHeads,
    vocabSize: num(c, "vocab_size", file),
    maxSeqLen: num(c, "n_positions", file),
    ropeTheta: 10000, // unused: positions are learned
    rmsNormEps: num(c, "layer_norm_epsilon", file, 1e-5),
    // GPT2LMHeadModel always ties lm_head to wte.
    tiedEmbeddings: true,
    qkvBias: true,
    norm: "layer",
    positions: "learned",
    ffn: "gelu",
    linearBias: true,
    bosId: optId(c.bos_token_id, "bos_token_id", file),
    eosId: optId(c.eos_token_id, "eos_token_id", file),
  };
  validateModelConfig(out, file, GPT2_CONFIG_FIELDS);
  return out;
}

/** Largest dimension (dim, hidden, heads x headDim, vocabulary) any loader accepts: 2^24. */
const MAX_DIM = 1 << 24;

/** The field names of one file format, for error messages (kvlab's names where absent). */
export type ConfigFieldNames = Partial<Record<keyof ModelConfig, string>>;

/**
 * The one validation of model hyper-parameters every loader (HF, llama2.c, GGUF) runs before
 * anything is allocated: sizes are positive safe integers within bounds no model reaches,
 * head splits divide, floats are finite and positive, token ids lie in the vocabulary.
 * Errors are ConfigErrors naming the file and the file format's own field.
 */
export function validateModelConfig(cfg: ModelConfig, file: string, fields: ConfigFieldNames = {}): void {
  const name = (k: keyof ModelConfig) => fields[k] ?? k;
  const fail = (k: keyof ModelConfig, detail: string): never => {
    throw new ConfigError(name(k), detail, file);
  };
  const int = (k: keyof ModelConfig, max: number) => {
    const v = cfg[k] as unknown;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1)
      fail(k, `must be a positive integer, got ${JSON.stringify(v) ?? String(v)}`);
    if ((v as number) > max) fail(k, `${v} is beyond any model kvlab can run (at most ${max})`);
  };
  int("dim", MAX_DIM);
  int("hiddenDim", MAX_DIM);
  int("nLayers", 1 << 12);
  int("nHeads", 1 << 12);
  int("nKvHeads", 1 << 12);
  int("headDim", 1 << 16);
  int("vocabSize", MAX_DIM);
  int("maxSeqLen", 0x7fffffff);
  if (cfg.headDim % 2 !== 0) fail("headDim", `must be even (RoPE rotates pairs), got ${cfg.headDim}`);
  if (cfg.nHeads % cfg.nKvHeads !== 0)
    fail(
      "nKvHeads",
      `${name("nHeads")} (${cfg.nHeads}) must be a multiple of ${name("nKvHeads")} (${cfg.nKvHeads})`,
    );
  if (cfg.nHeads * cfg.headDim > MAX_DIM)
    fail("headDim", `${cfg.nHeads} heads x ${cfg.headDim} is beyond any model (at most ${MAX_DIM})`);
  const pos = (k: keyof ModelConfig, v: unknown) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
      fail(k, `must be a finite number > 0, got ${String(v)}`);
  };
  pos("rmsNormEps", cfg.rmsNormEps);
  // An epsilon of 1 or more swamps the mean square of any activation: the norm outputs ~0.
  if (cfg.rmsNormEps >= 1)
    fail("rmsNormEps", `must be below 1 (models use 1e-6 to 1e-5), got ${cfg.rmsNormEps}`);
  pos("ropeTheta", cfg.ropeTheta);
  if (cfg.slidingWindow !== undefined) int("slidingWindow", 0x7fffffff);
  for (const k of ["queryPreAttnScalar", "finalSoftcap", "attnSoftcap", "embedScale"] as const)
    if (cfg[k] !== undefined) pos(k, cfg[k]);
  const rs = cfg.ropeScaling;
  if (rs) {
    for (const [k, v] of Object.entries(rs))
      if (k !== "type" && (typeof v !== "number" || !Number.isFinite(v) || v <= 0))
        fail("ropeScaling", `${k} must be a finite number > 0, got ${String(v)}`);
    if (rs.type === "llama3" && rs.highFreqFactor <= rs.lowFreqFactor)
      fail(
        "ropeScaling",
        `high_freq_factor (${rs.highFreqFactor}) must exceed low_freq_factor (${rs.lowFreqFactor})`,
      );
  }
  for (const k of ["bosId", "eosId"] as const) {
    const v = cfg[k];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0 || v >= cfg.vocabSize)
      fail(k, `token id ${v} is not in the vocabulary [0, ${cfg.vocabSize})`);
  }
}

/** HF config.json names of the ModelConfig fields. */
export const HF_CONFIG_FIELDS: ConfigFieldNames = {
  dim: "hidden_size",
  hiddenDim: "intermediate_size",
  nLayers: "num_hidden_layers",
  nHeads: "num_attention_heads",
  nKvHeads: "num_key_value_heads",
  headDim: "head_dim",
  vocabSize: "vocab_size",
  maxSeqLen: "max_position_embeddings",
  ropeTheta: "rope_theta",
  ropeScaling: "rope_scaling",
  rmsNormEps: "rms_norm_eps",
  slidingWindow: "sliding_window",
  queryPreAttnScalar: "query_pre_attn_scalar",
  finalSoftcap: "final_logit_softcapping",
  attnSoftcap: "attn_logit_softcapping",
  bosId: "bos_token_id",
  eosId: "eos_token_id",
};

/** GPT-2 config.json names of the ModelConfig fields. */
const GPT2_CONFIG_FIELDS: ConfigFieldNames = {
  dim: "n_embd",
  hiddenDim: "n_inner",
  nLayers: "n_layer",
  nHeads: "n_head",
  nKvHeads: "n_head",
  headDim: "n_embd",
  vocabSize: "vocab_size",
  maxSeqLen: "n_positions",
  rmsNormEps: "layer_norm_epsilon",
  bosId: "bos_token_id",
  eosId: "eos_token_id",
};
