/**
 * A minimal GGUF v3 writer: enough to give llama.cpp a model of a given shape with random
 * weights (speed does not depend on the values) and a synthetic SentencePiece-style vocab
 * (the benchmark feeds token ids, never text). Layout per the GGUF spec: header, key/values,
 * tensor infos, padding to `general.alignment` (32), tensor data each aligned to 32.
 * Dimensions are written innermost first, so a PyTorch Linear weight (out, in) is [in, out].
 */
import { open } from "node:fs/promises";
import type { ModelShape } from "../lib/model-shapes.ts";

const ALIGN = 32;
enum T {
  U32 = 4,
  I32 = 5,
  F32 = 6,
  STRING = 8,
  ARRAY = 9,
}

export type WeightType = "F32" | "F16";
const GGML_TYPE: Record<WeightType, number> = { F32: 0, F16: 1 };

class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(x: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(x);
    this.push(b);
  }
  i32(x: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(x);
    this.push(b);
  }
  u64(x: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(x));
    this.push(b);
  }
  f32(x: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(x);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export type KV =
  | [string, "u32", number]
  | [string, "f32", number]
  | [string, "str", string]
  | [string, "strs", string[]]
  | [string, "f32s", number[]]
  | [string, "i32s", number[]];

interface TensorInfo {
  name: string;
  dims: number[]; // innermost first
  type: WeightType;
  /** Norm weights are 1, everything else random. */
  ones: boolean;
}

function tensors(s: ModelShape, wt: WeightType): TensorInfo[] {
  const q = s.nHeads * s.headDim;
  const kv = s.nKvHeads * s.headDim;
  const out: TensorInfo[] = [
    { name: "token_embd.weight", dims: [s.dim, s.vocabSize], type: wt, ones: false },
  ];
  for (let l = 0; l < s.nLayers; l++) {
    const p = `blk.${l}.`;
    out.push(
      { name: `${p}attn_norm.weight`, dims: [s.dim], type: "F32", ones: true },
      { name: `${p}attn_q.weight`, dims: [s.dim, q], type: wt, ones: false },
      { name: `${p}attn_k.weight`, dims: [s.dim, kv], type: wt, ones: false },
      { name: `${p}attn_v.weight`, dims: [s.dim, kv], type: wt, ones: false },
      { name: `${p}attn_output.weight`, dims: [q, s.dim], type: wt, ones: false },
      { name: `${p}ffn_norm.weight`, dims: [s.dim], type: "F32", ones: true },
      { name: `${p}ffn_gate.weight`, dims: [s.dim, s.hiddenDim], type: wt, ones: false },
      { name: `${p}ffn_up.weight`, dims: [s.dim, s.hiddenDim], type: wt, ones: false },
      { name: `${p}ffn_down.weight`, dims: [s.hiddenDim, s.dim], type: wt, ones: false },
    );
    if (s.qkvBias)
      out.push(
        { name: `${p}attn_q.bias`, dims: [q], type: "F32", ones: false },
        { name: `${p}attn_k.bias`, dims: [kv], type: "F32", ones: false },
        { name: `${p}attn_v.bias`, dims: [kv], type: "F32", ones: false },
      );
  }
  out.push({ name: "output_norm.weight", dims: [s.dim], type: "F32", ones: true });
  if (!s.tiedEmbeddings)
    out.push({ name: "output.weight", dims: [s.dim, s.vocabSize], type: wt, ones: false });
  return out;
}

function metadata(s: ModelShape, wt: WeightType, ctx: number): KV[] {
  const a = s.arch;
  // Synthetic SentencePiece vocab: unk, bos, eos, the 256 byte tokens, then plain pieces.
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  while (tokens.length < s.vocabSize) {
    tokens.push(`\u2581t${tokens.length}`);
    types.push(1);
  }
  return [
    ["general.architecture", "str", a],
    ["general.name", "str", `kvlab-bench-${s.name}`],
    ["general.file_type", "u32", wt === "F32" ? 0 : 1],
    ["general.alignment", "u32", ALIGN],
    [`${a}.context_length`, "u32", ctx],
    [`${a}.embedding_length`, "u32", s.dim],
    [`${a}.block_count`, "u32", s.nLayers],
    [`${a}.feed_forward_length`, "u32", s.hiddenDim],
    [`${a}.rope.dimension_count`, "u32", s.headDim],
    [`${a}.attention.head_count`, "u32", s.nHeads],
    [`${a}.attention.head_count_kv`, "u32", s.nKvHeads],
    [`${a}.attention.key_length`, "u32", s.headDim],
    [`${a}.attention.value_length`, "u32", s.headDim],
    [`${a}.attention.layer_norm_rms_epsilon`, "f32", s.rmsEps],
    [`${a}.rope.freq_base`, "f32", s.ropeTheta],
    [`${a}.vocab_size`, "u32", s.vocabSize],
    ["tokenizer.ggml.model", "str", "llama"],
    ["tokenizer.ggml.tokens", "strs", tokens],
    ["tokenizer.ggml.scores", "f32s", tokens.map((_, i) => -i)],
    ["tokenizer.ggml.token_type", "i32s", types],
    ["tokenizer.ggml.unknown_token_id", "u32", 0],
    ["tokenizer.ggml.bos_token_id", "u32", 1],
    ["tokenizer.ggml.eos_token_id", "u32", 2],
  ];
}

function writeKV(w: ByteWriter, [key, kind, value]: KV): void {
  w.str(key);
  if (kind === "u32") {
    w.u32(T.U32);
    w.u32(value);
  } else if (kind === "f32") {
    w.u32(T.F32);
    w.f32(value);
  } else if (kind === "str") {
    w.u32(T.STRING);
    w.str(value);
  } else {
    w.u32(T.ARRAY);
    w.u32(kind === "strs" ? T.STRING : kind === "f32s" ? T.F32 : T.I32);
    w.u64(value.length);
    if (kind === "strs") for (const v of value) w.str(v);
    else if (kind === "f32s") for (const v of value) w.f32(v);
    else for (const v of value) w.i32(v);
  }
}

const pad = (n: number) => (ALIGN - (n % ALIGN)) % ALIGN;

/** Write a GGUF of shape `s` to `path`; returns its size in bytes. */
export async function writeGguf(path: string, s: ModelShape, wt: WeightType, ctx: number): Promise<number> {
  const infos = tensors(s, wt);
  const kvs = metadata(s, wt, ctx);
  const w = new ByteWriter();
  w.push(Buffer.from("GGUF", "latin1"));
  w.u32(3);
  w.u64(infos.length);
  w.u64(kvs.length);
  for (const kv of kvs) writeKV(w, kv);
  let offset = 0;
  const sizes: number[] = [];
  for (const t of infos) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE[t.type]);
    w.u64(offset);
    const bytes = t.dims.reduce((a, b) => a * b, 1) * (t.type === "F32" ? 4 : 2);
    sizes.push(bytes);
    offset += bytes + pad(bytes);
  }
  w.push(Buffer.alloc(pad(w.length)));

  // Random weights: one block of small random values, tiled (the values do not change speed).
  const block = 1 << 20; // elements
  const f32 = new Float32Array(block);
  let x = 0x9e3779b9;
  for (let i = 0; i < block; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    f32[i] = ((x >>> 0) / 4294967296 - 0.5) * 0.04;
  }
  const f16 = new Uint16Array(block);
  for (let i = 0; i < block; i++) f16[i] = toHalfBits(f32[i]!);
  const ones32 = new Float32Array(block).fill(1);

  const fh = await open(path, "w");
  try {
    await fh.write(w.bytes());
    for (let i = 0; i < infos.length; i++) {
      const t = infos[i]!;
      let left = sizes[i]!;
      const src = t.ones ? ones32 : t.type === "F32" ? f32 : f16;
      const srcBytes = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
      while (left > 0) {
        const n = Math.min(left, srcBytes.length);
        await fh.write(srcBytes, 0, n);
        left -= n;
      }
      const p = pad(sizes[i]!);
      if (p) await fh.write(Buffer.alloc(p));
    }
  } finally {
    await fh.close();
  }
  return w.length + offset;
}

/** A tensor with its data (f32), dimensions innermost first. */
export interface DataTensor {
  name: string;
  dims: number[];
  data: Float32Array;
}

/**
 * Write a GGUF v3 with the given key/values and f32 tensors (real weights: the agreement
 * tool's copy of a kvlab model). Returns the file size in bytes.
 */
export async function writeGgufTensors(path: string, kvs: KV[], tensors: DataTensor[]): Promise<number> {
  const w = new ByteWriter();
  w.push(Buffer.from("GGUF", "latin1"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const kv of kvs) writeKV(w, kv);
  let offset = 0;
  for (const t of tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== t.data.length)
      throw new Error(`${t.name}: dims ${t.dims} hold ${n} elements, data has ${t.data.length}`);
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE.F32);
    w.u64(offset);
    offset += 4 * n + pad(4 * n);
  }
  w.push(Buffer.alloc(pad(w.length)));
  const fh = await open(path, "w");
  try {
    await fh.write(w.bytes());
    for (const t of tensors) {
      await fh.write(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      const p = pad(t.data.byteLength);
      if (p) await fh.write(Buffer.alloc(p));
    }
  } finally {
    await fh.close();
  }
  return w.length + offset;
}

/** f32 -> f16 bits for the small normal values used here (round to nearest). */
function toHalfBits(v: number): number {
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return m === 1024 ? sign | ((e + 16) << 10) : sign | ((e + 15) << 10) | m;
}
