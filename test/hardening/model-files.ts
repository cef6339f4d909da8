/**
 * Writers of tiny valid model files in the three formats (HF safetensors directory, GGUF,
 * llama2.c), built from one description, with the hooks the fuzz suites use to corrupt them:
 * every GGUF field is written from a structured list (types, counts and offsets can lie), and
 * the byte positions of the count fields are recorded so a test can patch them.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HF_NAMES } from "../../src/model/llama-weights.ts";
import { spTokenizerJson } from "../../src/model/sp-vocab.ts";
import { synthVocab } from "../../src/model/synth.ts";
import { f32ToF16 } from "../../src/quant/half.ts";

export const TINY = { dim: 8, hidden: 16, nLayers: 2, nHeads: 2, nKv: 1, headDim: 4, vocab: 300, ctx: 64 };

export interface TensorSpec {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Deterministic small weights (norms 1), HF names, HF row order. */
export function tinyTensors(seed = 1): TensorSpec[] {
  const { dim, hidden, nLayers, nHeads, nKv, headDim, vocab } = TINY;
  let s = seed >>> 0 || 1;
  const rand = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296 - 0.5;
  };
  const t = (name: string, shape: number[], one = false): TensorSpec => ({
    name,
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (one ? 1 : rand() * 0.5)),
  });
  const out = [t(HF_NAMES.embed, [vocab, dim])];
  for (let l = 0; l < nLayers; l++) {
    const n = (k: Parameters<typeof HF_NAMES.layer>[1]) => HF_NAMES.layer(l, k);
    out.push(
      t(n("attnNorm"), [dim], true),
      t(n("wq"), [nHeads * headDim, dim]),
      t(n("wk"), [nKv * headDim, dim]),
      t(n("wv"), [nKv * headDim, dim]),
      t(n("wo"), [dim, nHeads * headDim]),
      t(n("ffnNorm"), [dim], true),
      t(n("wGate"), [hidden, dim]),
      t(n("wUp"), [hidden, dim]),
      t(n("wDown"), [dim, hidden]),
    );
  }
  out.push(t(HF_NAMES.finalNorm, [dim], true), t(HF_NAMES.lmHead, [vocab, dim]));
  return out;
}

export function tinyHfConfig(): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    hidden_size: TINY.dim,
    intermediate_size: TINY.hidden,
    num_hidden_layers: TINY.nLayers,
    num_attention_heads: TINY.nHeads,
    num_key_value_heads: TINY.nKv,
    vocab_size: TINY.vocab,
    max_position_embeddings: TINY.ctx,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: "silu",
    bos_token_id: 1,
    eos_token_id: 2,
    tie_word_embeddings: false,
  };
}

/** safetensors bytes: F32 tensors, contiguous, header padded to 8 bytes as HF writes it. */
export function safetensorsBytes(tensors: TensorSpec[]): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [off, off + t.data.length * 4] };
    off += t.data.length * 4;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([
    len,
    Buffer.from(json, "utf8"),
    ...tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ]);
}

export function writeHfDir(
  dir: string,
  config = tinyHfConfig(),
  st = safetensorsBytes(tinyTensors()),
): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  writeFileSync(join(dir, "model.safetensors"), st);
  const pieces = synthVocab(TINY.vocab);
  writeFileSync(
    join(dir, "tokenizer.json"),
    JSON.stringify(
      spTokenizerJson({ pieces, scores: pieces.map((_, i) => -i), special: [0, 1, 2], unkId: 0 }),
    ),
  );
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ bos_token: "<s>", eos_token: "</s>", add_bos_token: true }),
  );
  return dir;
}

// ---- GGUF ----

/** ggml metadata value types. */
export const T = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STR: 8,
  ARR: 9,
  U64: 10,
  I64: 11,
  F64: 12,
};

export interface GgufKv {
  key: string;
  type: number;
  value: unknown;
  /** For arrays: the item type (T.ARR for a nested array, whose items are [itemType, values]). */
  itemType?: number;
}

export interface GgufTensor {
  name: string;
  shape: number[]; // row-major (outermost first), written innermost first
  type: number; // 0 F32, 1 F16
  data: Float32Array;
  /** Written offset; default: the running padded offset. */
  offset?: number;
}

export interface GgufSpec {
  kv: GgufKv[];
  tensors: GgufTensor[];
  alignment?: number;
}

/** Byte positions of the fields a test may patch to make a count lie. */
export interface GgufLayout {
  tensorCountAt: number;
  kvCountAt: number;
  /** Per metadata entry: where its value starts (for arrays, the u64 count after the item type). */
  countAt: Map<string, number>;
  dataStart: number;
}

export function ggufBytes(spec: GgufSpec): { bytes: Buffer; layout: GgufLayout } {
  const parts: Buffer[] = [];
  let pos = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    pos += b.length;
  };
  const num = (type: number, v: unknown) => {
    const sizes: Record<number, number> = {
      0: 1,
      1: 1,
      2: 2,
      3: 2,
      4: 4,
      5: 4,
      6: 4,
      7: 1,
      10: 8,
      11: 8,
      12: 8,
    };
    const b = Buffer.alloc(sizes[type]!);
    const n = v as number;
    if (type === T.U8) b.writeUInt8(n & 0xff);
    else if (type === T.I8) b.writeInt8(Math.max(-128, Math.min(127, n)));
    else if (type === T.U16) b.writeUInt16LE(n & 0xffff);
    else if (type === T.I16) b.writeInt16LE(Math.max(-32768, Math.min(32767, n)));
    else if (type === T.U32) b.writeUInt32LE(n >>> 0);
    else if (type === T.I32) b.writeInt32LE(n | 0);
    else if (type === T.F32) b.writeFloatLE(n);
    else if (type === T.BOOL) b.writeUInt8(n ? 1 : 0);
    else if (type === T.U64)
      b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(Number.isFinite(n) ? Math.trunc(n) : 0)));
    else if (type === T.I64)
      b.writeBigInt64LE(BigInt.asIntN(64, BigInt(Number.isFinite(n) ? Math.trunc(n) : 0)));
    else b.writeDoubleLE(n);
    push(b);
  };
  const u32 = (v: number) => num(T.U32, v);
  const u64 = (v: number) => num(T.U64, v);
  const str = (s: string) => {
    const b = Buffer.from(s, "utf8");
    u64(b.length);
    push(b);
  };
  const countAt = new Map<string, number>();
  const value = (type: number, v: unknown, itemType: number | undefined, key: string) => {
    if (type === T.STR) {
      countAt.set(key, pos);
      str(String(v));
    } else if (type === T.ARR) {
      const arr = v as unknown[];
      const it = itemType ?? T.I32;
      u32(it);
      countAt.set(key, pos);
      u64(arr.length);
      for (const x of arr) {
        if (it === T.ARR) {
          const [inner, vals] = x as [number, unknown[]];
          value(T.ARR, vals, inner, `${key}[]`);
        } else value(it, x, undefined, `${key}[]`);
      }
    } else num(type, v);
  };
  push(Buffer.from("GGUF", "latin1"));
  u32(3);
  const tensorCountAt = pos;
  u64(spec.tensors.length);
  const kvCountAt = pos;
  u64(spec.kv.length);
  for (const e of spec.kv) {
    str(e.key);
    u32(e.type);
    value(e.type, e.value, e.itemType, e.key);
  }
  const align = spec.alignment ?? 32;
  const bytesOf = (t: GgufTensor) => t.data.length * (t.type === 0 ? 4 : 2);
  let off = 0;
  for (const t of spec.tensors) {
    str(t.name);
    u32(t.shape.length);
    for (const d of [...t.shape].reverse()) u64(d);
    u32(t.type);
    u64(t.offset ?? off);
    off += Math.ceil(bytesOf(t) / align) * align;
  }
  const head = Buffer.concat(parts);
  const dataStart = Math.ceil(head.length / align) * align;
  const out = Buffer.alloc(dataStart + off);
  head.copy(out);
  let p = dataStart;
  for (const t of spec.tensors) {
    for (let i = 0; i < t.data.length; i++)
      if (t.type === 0) out.writeFloatLE(t.data[i]!, p + i * 4);
      else out.writeUInt16LE(f32ToF16(t.data[i]!), p + i * 2);
    p += Math.ceil(bytesOf(t) / align) * align;
  }
  return { bytes: out, layout: { tensorCountAt, kvCountAt, countAt, dataStart } };
}

/** HF rotate-half rows -> interleaved (as llama.cpp's converter permutes llama q/k). */
function toInterleaved(w: Float32Array, nHeads: number, hd: number, dIn: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++)
    for (let j = 0; j < hd; j++) {
      const src = h * hd + (j % 2) * (hd / 2) + Math.floor(j / 2);
      out.set(w.subarray(src * dIn, (src + 1) * dIn), (h * hd + j) * dIn);
    }
  return out;
}

const GGUF_OF: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, "token_embd.weight"],
  [/^model\.norm\.weight$/, "output_norm.weight"],
  [/^lm_head\.weight$/, "output.weight"],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, "blk.$1.attn_norm.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$/, "blk.$1.attn_q.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$/, "blk.$1.attn_k.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$/, "blk.$1.attn_v.weight"],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, "blk.$1.attn_output.weight"],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, "blk.$1.ffn_norm.weight"],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, "blk.$1.ffn_gate.weight"],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, "blk.$1.ffn_up.weight"],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, "blk.$1.ffn_down.weight"],
];

/** The tiny model as a GGUF spec (F32 tensors, SentencePiece vocab). */
export function tinyGgufSpec(): GgufSpec {
  const pieces = synthVocab(TINY.vocab);
  const kv: GgufKv[] = [
    { key: "general.architecture", type: T.STR, value: "llama" },
    { key: "general.name", type: T.STR, value: "tiny" },
    { key: "llama.embedding_length", type: T.U32, value: TINY.dim },
    { key: "llama.feed_forward_length", type: T.U32, value: TINY.hidden },
    { key: "llama.block_count", type: T.U32, value: TINY.nLayers },
    { key: "llama.attention.head_count", type: T.U32, value: TINY.nHeads },
    { key: "llama.attention.head_count_kv", type: T.U32, value: TINY.nKv },
    { key: "llama.context_length", type: T.U32, value: TINY.ctx },
    { key: "llama.attention.layer_norm_rms_epsilon", type: T.F32, value: 1e-5 },
    { key: "llama.rope.freq_base", type: T.F32, value: 10000 },
    { key: "tokenizer.ggml.model", type: T.STR, value: "llama" },
    { key: "tokenizer.ggml.tokens", type: T.ARR, itemType: T.STR, value: pieces },
    { key: "tokenizer.ggml.scores", type: T.ARR, itemType: T.F32, value: pieces.map((_, i) => -i) },
    {
      key: "tokenizer.ggml.token_type",
      type: T.ARR,
      itemType: T.I32,
      value: pieces.map((_, i) => (i < 3 ? 3 : i < 259 ? 6 : 1)),
    },
    { key: "tokenizer.ggml.bos_token_id", type: T.U32, value: 1 },
    { key: "tokenizer.ggml.eos_token_id", type: T.U32, value: 2 },
  ];
  const tensors: GgufTensor[] = tinyTensors().map((t) => {
    const name = GGUF_OF.reduce((n, [re, to]) => n.replace(re, to), t.name);
    let data = t.data;
    if (/attn_q\.weight$/.test(name)) data = toInterleaved(data, TINY.nHeads, TINY.headDim, TINY.dim);
    if (/attn_k\.weight$/.test(name)) data = toInterleaved(data, TINY.nKv, TINY.headDim, TINY.dim);
    return { name, shape: t.shape, type: 0, data };
  });
  return { kv, tensors };
}

// ---- llama2.c ----

/** llama2.c legacy checkpoint of the tiny model (untied: negative vocab_size) and its tokenizer.bin. */
export function llama2cBytes(header?: number[]): { model: Buffer; tokenizer: Buffer } {
  const { dim, hidden, nLayers, nHeads, nKv, vocab, ctx, headDim } = TINY;
  const h = header ?? [dim, hidden, nLayers, nHeads, nKv, -vocab, ctx];
  const ts = new Map(tinyTensors().map((t) => [t.name, t]));
  const get = (n: string) => ts.get(n)!.data;
  const layer = (k: Parameters<typeof HF_NAMES.layer>[1], perm?: number) =>
    Array.from({ length: nLayers }, (_, l) => {
      const d = get(HF_NAMES.layer(l, k));
      return perm ? toInterleaved(d, perm, headDim, dim) : d;
    });
  const parts: Float32Array[] = [
    get(HF_NAMES.embed),
    ...layer("attnNorm"),
    ...layer("wq", nHeads),
    ...layer("wk", nKv),
    ...layer("wv"),
    ...layer("wo"),
    ...layer("ffnNorm"),
    ...layer("wGate"),
    ...layer("wDown"),
    ...layer("wUp"),
    get(HF_NAMES.finalNorm),
    new Float32Array(ctx * headDim), // freq_cis_real + imag
    get(HF_NAMES.lmHead),
  ];
  const head = Buffer.alloc(28);
  for (const [i, v] of h.entries()) head.writeInt32LE(v, i * 4);
  const model = Buffer.concat([head, ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))]);
  const pieces = synthVocab(vocab).map((p) => p.replaceAll("▁", " "));
  const tok: Buffer[] = [Buffer.from(Int32Array.of(16).buffer)];
  pieces.forEach((p, i) => {
    const b = Buffer.from(p, "utf8");
    const hd = Buffer.alloc(8);
    hd.writeFloatLE(-i, 0);
    hd.writeInt32LE(b.length, 4);
    tok.push(hd, b);
  });
  return { model, tokenizer: Buffer.concat(tok) };
}
