/**
 * GGUF v2/v3 (ggml's model file): magic "GGUF", version, tensor and metadata counts, typed
 * key/value metadata, tensor infos (name, dims innermost-first, ggml type, offset), then data
 * aligned to `general.alignment` (default 32).
 *
 * Own parser rather than @huggingface/gguf: that package is built around fetching ranges over
 * HTTP (local files behind an option), parses asynchronously, and its errors carry no byte
 * offsets; kvlab needs synchronous local reads, tensor offsets it can read straight into
 * executor memory, and "file X, byte N: what is wrong" errors. The format part is ~150 lines.
 */
import { ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import type { ModelArch, ModelConfig } from "./config.ts";
import { LlamaModel } from "./llama.ts";
import { GGUF_NAMES, loadLlamaWeights } from "./llama-weights.ts";
import { spTokenizerJson } from "./sp-vocab.ts";
import { FileSet, type TensorEntry, TensorSet } from "./tensors.ts";
import { tokenizerFromJson } from "./tokenizer.ts";

const GGML_TYPES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  6: "Q5_0",
  7: "Q5_1",
  8: "Q8_0",
  9: "Q8_1",
  10: "Q2_K",
  11: "Q3_K",
  12: "Q4_K",
  13: "Q5_K",
  14: "Q6_K",
  15: "Q8_K",
  24: "I8",
  25: "I16",
  26: "I32",
  27: "I64",
  28: "F64",
  30: "BF16",
};

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: TensorEntry[];
}

/** A forward-only reader over the file that pulls in more bytes as parsing needs them. */
class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private dv = new DataView(this.buf.buffer);
  private start = 0; // file offset of buf[0]
  pos = 0; // file offset
  private readonly dec = new TextDecoder("utf-8");

  constructor(
    private readonly files: FileSet,
    private readonly file: string,
  ) {}

  private need(n: number, what: string): number {
    const size = this.files.size(this.file);
    if (this.pos + n > size)
      throw new ModelFormatError(
        this.file,
        `${what} needs ${n} bytes at byte ${this.pos} but the file ends at ${size}: truncated, or a length field is wrong`,
        this.pos,
      );
    if (this.pos + n > this.start + this.buf.length) {
      const len = Math.min(size - this.pos, Math.max(n, 1 << 20, this.buf.length * 2));
      this.buf = this.files.read(this.file, this.pos, len, what);
      this.dv = new DataView(this.buf.buffer);
      this.start = this.pos;
    }
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }
  private last = 0;
  /** Reserve n bytes, then return the view to read them from at this.last (order matters: need() may refill). */
  private at(n: number, what: string): DataView {
    this.last = this.need(n, what);
    return this.dv;
  }
  u32(what: string): number {
    return this.at(4, what).getUint32(this.last, true);
  }
  u64(what: string): number {
    const at = this.pos;
    const v = this.at(8, what).getBigUint64(this.last, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new ModelFormatError(this.file, `${what} = ${v} is implausibly large`, at);
    return Number(v);
  }
  str(what: string): string {
    const n = this.u64(`${what} length`);
    const at = this.need(n, what);
    return this.dec.decode(this.buf.subarray(at, at + n));
  }
  value(type: number, what: string): GgufValue {
    const at = this.pos;
    switch (type) {
      case 0:
        return this.at(1, what).getUint8(this.last);
      case 1:
        return this.at(1, what).getInt8(this.last);
      case 2:
        return this.at(2, what).getUint16(this.last, true);
      case 3:
        return this.at(2, what).getInt16(this.last, true);
      case 4:
        return this.at(4, what).getUint32(this.last, true);
      case 5:
        return this.at(4, what).getInt32(this.last, true);
      case 6:
        return this.at(4, what).getFloat32(this.last, true);
      case 7:
        return this.at(1, what).getUint8(this.last) !== 0;
      case 8:
        return this.str(what);
      case 9: {
        const itemType = this.u32(`${what} item type`);
        const n = this.u64(`${what} count`);
        const out: GgufValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(itemType, what);
        return out;
      }
      case 10:
        return this.at(8, what).getBigUint64(this.last, true);
      case 11:
        return this.at(8, what).getBigInt64(this.last, true);
      case 12:
        return this.at(8, what).getFloat64(this.last, true);
      default:
        throw new ModelFormatError(this.file, `${what}: unknown metadata value type ${type}`, at);
    }
  }
}

export function readGguf(files: FileSet, file: string): GgufFile {
  const c = new Cursor(files, file);
  const magic = c.u32("magic");
  if (magic !== 0x46554747)
    throw new ModelFormatError(file, `not a GGUF file (magic 0x${magic.toString(16)}, expected "GGUF")`, 0);
  const version = c.u32("version");
  if (version !== 2 && version !== 3)
    throw new ModelFormatError(file, `GGUF version ${version} is not supported (2 or 3)`, 4);
  const nTensors = c.u64("tensor count");
  const nKv = c.u64("metadata count");
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str(`metadata key ${i}`);
    metadata.set(key, c.value(c.u32(`type of ${key}`), key));
  }
  const infos: { name: string; shape: number[]; type: number; rel: number; at: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = c.str(`tensor ${i} name`);
    const nDims = c.u32(`tensor "${name}" n_dims`);
    if (nDims > 8) throw new ModelFormatError(file, `tensor "${name}" has ${nDims} dims`, at);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`tensor "${name}" dim ${d}`));
    const type = c.u32(`tensor "${name}" type`);
    const rel = c.u64(`tensor "${name}" offset`);
    infos.push({ name, shape: dims.reverse(), type, rel, at }); // ggml dims are innermost-first
  }
  const alignment = Number(metadata.get("general.alignment") ?? 32);
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const size = files.size(file);
  const tensors: TensorEntry[] = infos.map((t) => {
    const dtype = GGML_TYPES[t.type] ?? `ggml type ${t.type}`;
    const elBytes = dtype === "F32" ? 4 : dtype === "F16" || dtype === "BF16" ? 2 : 0;
    const end = dataStart + t.rel + t.shape.reduce((a, b) => a * b, 1) * elBytes;
    if (end > size)
      throw new ModelFormatError(
        file,
        `tensor "${t.name}" ends at byte ${end} but the file has ${size} bytes: it is truncated`,
        size,
      );
    return { name: t.name, dtype, shape: t.shape, file, offset: dataStart + t.rel, headerOffset: t.at };
  });
  return { version, metadata, tensors };
}

function meta(g: GgufFile, file: string, key: string): GgufValue {
  const v = g.metadata.get(key);
  if (v === undefined) throw new ModelFormatError(file, `missing metadata "${key}"`);
  return v;
}

function metaNum(g: GgufFile, file: string, key: string, fallback?: number): number {
  const v = g.metadata.get(key);
  if (v === undefined && fallback !== undefined) return fallback;
  const x = meta(g, file, key);
  if (typeof x !== "number" && typeof x !== "bigint")
    throw new ModelFormatError(file, `metadata "${key}" should be a number, is ${typeof x}`);
  return Number(x);
}

const GGUF_ARCHS: Record<string, ModelArch> = { llama: "llama", qwen2: "qwen2" };

export function ggufConfig(g: GgufFile, file: string): ModelConfig {
  const archName = String(meta(g, file, "general.architecture"));
  const arch = GGUF_ARCHS[archName];
  if (!arch)
    throw new ModelFormatError(
      file,
      `unsupported architecture "${archName}"; kvlab runs ${Object.keys(GGUF_ARCHS).join(", ")}`,
    );
  const k = (s: string) => `${archName}.${s}`;
  const dim = metaNum(g, file, k("embedding_length"));
  const nHeads = metaNum(g, file, k("attention.head_count"));
  const tokens = g.metadata.get("tokenizer.ggml.tokens");
  const hasOutput = g.tensors.some((t) => t.name === GGUF_NAMES.lmHead);
  return {
    arch,
    dim,
    hiddenDim: metaNum(g, file, k("feed_forward_length")),
    nLayers: metaNum(g, file, k("block_count")),
    nHeads,
    nKvHeads: metaNum(g, file, k("attention.head_count_kv"), nHeads),
    headDim: metaNum(g, file, k("attention.key_length"), dim / nHeads),
    vocabSize: metaNum(g, file, k("vocab_size"), Array.isArray(tokens) ? tokens.length : undefined),
    maxSeqLen: metaNum(g, file, k("context_length")),
    ropeTheta: metaNum(g, file, k("rope.freq_base"), 10000),
    rmsNormEps: metaNum(g, file, k("attention.layer_norm_rms_epsilon")),
    tiedEmbeddings: !hasOutput,
    qkvBias: arch === "qwen2",
    bosId: g.metadata.has("tokenizer.ggml.bos_token_id")
      ? metaNum(g, file, "tokenizer.ggml.bos_token_id")
      : undefined,
    eosId: g.metadata.has("tokenizer.ggml.eos_token_id")
      ? metaNum(g, file, "tokenizer.ggml.eos_token_id")
      : undefined,
  };
}

/** The SentencePiece vocab in GGUF metadata (tokenizer.ggml.model = "llama"). */
function ggufTokenizer(g: GgufFile, file: string, cfg: ModelConfig) {
  const model = String(meta(g, file, "tokenizer.ggml.model"));
  if (model !== "llama")
    throw new ModelFormatError(
      file,
      `tokenizer.ggml.model "${model}" is not supported (only SentencePiece "llama"); use the HF directory of this model`,
    );
  const pieces = meta(g, file, "tokenizer.ggml.tokens") as string[];
  const scores = (g.metadata.get("tokenizer.ggml.scores") as number[] | undefined) ?? pieces.map(() => 0);
  const types = (g.metadata.get("tokenizer.ggml.token_type") as number[] | undefined) ?? [];
  // llama.cpp token types: 2 unknown, 3 control, 4 user-defined, 6 byte.
  const special = types.flatMap((t, id) => (t === 2 || t === 3 ? [id] : []));
  const unkId = g.metadata.has("tokenizer.ggml.unknown_token_id")
    ? metaNum(g, file, "tokenizer.ggml.unknown_token_id")
    : Math.max(0, types.indexOf(2));
  const json = spTokenizerJson({ pieces, scores, special, unkId });
  const addBos = g.metadata.get("tokenizer.ggml.add_bos_token");
  return tokenizerFromJson(
    json,
    {},
    { bosId: cfg.bosId, eosId: cfg.eosId, addBos: typeof addBos === "boolean" ? addBos : true },
    file,
  );
}

export async function loadGgufModel(file: string, exec: Executor): Promise<LlamaModel> {
  const files = new FileSet();
  try {
    const g = readGguf(files, file);
    const cfg = ggufConfig(g, file);
    const tokenizer = ggufTokenizer(g, file, cfg);
    const ts = new TensorSet(new Map(g.tensors.map((t) => [t.name, t])), files, file);
    // Llama-3 rope scaling in GGUF: frequency divisors in a tensor (llama.cpp's rope_freqs).
    if (ts.has("rope_freqs.weight")) {
      const f = new Float32Array(cfg.headDim / 2);
      const t = ts.entries.get("rope_freqs.weight")!;
      if (t.shape.length !== 1 || t.shape[0] !== f.length)
        throw new ModelFormatError(
          file,
          `rope_freqs.weight has shape [${t.shape}], expected [${f.length}]`,
          t.headerOffset,
        );
      files.readF32(t, f);
      cfg.ropeFreqFactors = f;
    }
    // llama.cpp's converter permutes llama q/k to the interleaved layout; qwen2's it leaves alone.
    const names = { ...GGUF_NAMES, interleavedQK: cfg.arch === "llama" };
    const weights = loadLlamaWeights(cfg, exec, ts, names, true);
    return new LlamaModel(cfg, weights, tokenizer, exec, `gguf:${file}`);
  } finally {
    files.close();
  }
}
