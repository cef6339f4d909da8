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
import { ConfigError, ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { type ModelArch, type ModelConfig, validateModelConfig } from "./config.ts";
import { LlamaModel } from "./llama.ts";
import { GGUF_NAMES, loadLlamaWeights } from "./llama-weights.ts";
import { spTokenizerJson } from "./sp-vocab.ts";
import { FileSet, type TensorEntry, TensorSet, type WeightsMode } from "./tensors.ts";
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

/**
 * Bytes of one element block of each ggml type (block of `BLOCK_ELEMS` elements), as ggml's
 * type traits: what a tensor of that type occupies, so offsets can be checked for every type.
 */
const GGML_BLOCK: Record<string, [elems: number, bytes: number]> = {
  F32: [1, 4],
  F16: [1, 2],
  BF16: [1, 2],
  Q4_0: [32, 18],
  Q4_1: [32, 20],
  Q5_0: [32, 22],
  Q5_1: [32, 24],
  Q8_0: [32, 34],
  Q8_1: [32, 36],
  Q2_K: [256, 84],
  Q3_K: [256, 110],
  Q4_K: [256, 144],
  Q5_K: [256, 176],
  Q6_K: [256, 210],
  Q8_K: [256, 292],
  I8: [1, 1],
  I16: [1, 2],
  I32: [1, 4],
  I64: [1, 8],
  F64: [1, 8],
};

/** Fewest bytes one metadata value of each type takes (string: its u64 length). */
const MIN_VALUE_BYTES: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  8: 8,
  9: 12,
  10: 8,
  11: 8,
  12: 8,
};

/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;

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
  /** Bytes from the cursor to the end of the file. */
  get left(): number {
    return this.files.size(this.file) - this.pos;
  }
  str(what: string): string {
    const n = this.u64(`${what} length`);
    const at = this.need(n, what);
    return this.dec.decode(this.buf.subarray(at, at + n));
  }
  /** Refuse `n` items of at least `each` bytes when fewer bytes are left (before allocating for them). */
  count(n: number, each: number, what: string, at: number): void {
    if (n * each > this.left)
      throw new ModelFormatError(
        this.file,
        `${what} = ${n} needs at least ${n * each} bytes but only ${this.left} are left in the file: the count is wrong or the file is truncated`,
        at,
      );
  }
  value(type: number, what: string, inArray = false): GgufValue {
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
        // As llama.cpp's reader: arrays of arrays are refused (no recursion on file input).
        if (inArray)
          throw new ModelFormatError(
            this.file,
            `${what}: nested arrays are not allowed in GGUF metadata`,
            at,
          );
        const itemType = this.u32(`${what} item type`);
        if (itemType === 9)
          throw new ModelFormatError(
            this.file,
            `${what}: nested arrays are not allowed in GGUF metadata`,
            at,
          );
        const each = MIN_VALUE_BYTES[itemType];
        if (each === undefined)
          throw new ModelFormatError(this.file, `${what}: unknown array item type ${itemType}`, at);
        const countAt = this.pos;
        const n = this.u64(`${what} count`);
        this.count(n, each, `${what} count`, countAt);
        const out: GgufValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(itemType, what, true);
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
  // A key/value pair takes at least 8 + 8 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 4 + 8.
  c.count(nKv, 21, "metadata count", 16);
  c.count(nTensors, 25, "tensor count", 8);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const at = c.pos;
    const key = c.str(`metadata key ${i}`);
    if (metadata.has(key)) throw new ModelFormatError(file, `metadata key "${key}" appears twice`, at);
    const typeAt = c.pos;
    const type = c.u32(`type of ${key}`);
    if (key === "general.alignment" && type !== 4)
      throw new ModelFormatError(
        file,
        `metadata "general.alignment" must be a uint32 (type 4), has type ${type}`,
        typeAt,
      );
    metadata.set(key, c.value(type, key));
  }
  const infos: { name: string; shape: number[]; type: number; rel: number; at: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = c.str(`tensor ${i} name`);
    if (names.has(name)) throw new ModelFormatError(file, `tensor name "${name}" appears twice`, at);
    names.add(name);
    const nDims = c.u32(`tensor "${name}" n_dims`);
    if (nDims < 1 || nDims > MAX_DIMS)
      throw new ModelFormatError(
        file,
        `tensor "${name}" has ${nDims} dims (ggml allows 1 to ${MAX_DIMS})`,
        at,
      );
    const dims: number[] = [];
    let numel = 1;
    for (let d = 0; d < nDims; d++) {
      const dimAt = c.pos;
      const x = c.u64(`tensor "${name}" dim ${d}`);
      numel *= x;
      if (!Number.isSafeInteger(numel))
        throw new ModelFormatError(
          file,
          `tensor "${name}": ${dims.concat(x).join(" x ")} elements overflow`,
          dimAt,
        );
      dims.push(x);
    }
    const type = c.u32(`tensor "${name}" type`);
    if (GGML_TYPES[type] === undefined)
      throw new ModelFormatError(file, `tensor "${name}" has unknown ggml type ${type}`, c.pos - 4);
    const rel = c.u64(`tensor "${name}" offset`);
    infos.push({ name, shape: dims.reverse(), type, rel, at }); // ggml dims are innermost-first
  }
  const alignment = ggufAlignment(metadata, file);
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const size = files.size(file);
  // As llama.cpp's gguf reader: tensor i lies at exactly the sum of the sizes of tensors
  // 0..i-1, each padded to the alignment (no gap, overlap, alias or misalignment), and the
  // size of each follows from its type and shape.
  let expected = 0;
  const tensors: TensorEntry[] = infos.map((t) => {
    const dtype = GGML_TYPES[t.type]!;
    const [blockElems, blockBytes] = GGML_BLOCK[dtype]!;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const inner = t.shape[t.shape.length - 1]!;
    if (inner % blockElems !== 0)
      throw new ModelFormatError(
        file,
        `tensor "${t.name}": row of ${inner} elements is not a whole number of ${dtype} blocks (${blockElems})`,
        t.at,
      );
    const bytes = (numel / blockElems) * blockBytes;
    if (t.rel !== expected)
      throw new ModelFormatError(
        file,
        `tensor "${t.name}" has data offset ${t.rel}, expected ${expected} (the previous tensors' sizes padded to ${alignment}): ${t.rel % alignment !== 0 ? "misaligned" : t.rel < expected ? "it overlaps an earlier tensor" : "a gap before it"}, or a dtype that does not match its bytes`,
        t.at,
      );
    expected += Math.ceil(bytes / alignment) * alignment;
    const end = dataStart + t.rel + bytes;
    if (end > size)
      throw new ModelFormatError(
        file,
        `tensor "${t.name}" ends at byte ${end} but the file has ${size} bytes: it is truncated`,
        size,
      );
    return { name: t.name, dtype, shape: t.shape, file, offset: dataStart + t.rel, headerOffset: t.at };
  });
  // Padding after each tensor is zero, as ggml and gguf-py write it: non-zero padding means the
  // tensor's dtype or shape undercounts its bytes (F32 data labelled F16, say).
  for (const t of tensors) {
    const [blockElems, blockBytes] = GGML_BLOCK[t.dtype]!;
    const end = t.offset + (t.shape.reduce((a, b) => a * b, 1) / blockElems) * blockBytes;
    const padEnd = Math.min(size, dataStart + Math.ceil((end - dataStart) / alignment) * alignment);
    if (padEnd <= end) continue;
    const pad = files.read(file, end, padEnd - end, `padding after tensor "${t.name}"`);
    const nz = pad.findIndex((x) => x !== 0);
    if (nz >= 0)
      throw new ModelFormatError(
        file,
        `tensor "${t.name}" (${t.dtype}, [${t.shape.join(", ")}]) is followed by non-zero padding: its dtype or shape does not match its bytes`,
        end + nz,
      );
  }
  if (infos.length > 0 && size > dataStart + expected)
    throw new ModelFormatError(
      file,
      `${size - dataStart - expected} bytes after the last tensor's padded data (byte ${dataStart + expected}): a tensor's dtype or shape does not match its bytes`,
      dataStart + expected,
    );
  return { version, metadata, tensors };
}

/** general.alignment: a u32 power of two (default 32), as llama.cpp requires. */
function ggufAlignment(metadata: Map<string, GgufValue>, file: string): number {
  const a = metadata.get("general.alignment");
  if (a === undefined) return 32;
  if (typeof a !== "number" || !Number.isInteger(a) || a < 1 || a > 1 << 30 || (a & (a - 1)) !== 0)
    throw new ModelFormatError(
      file,
      `metadata "general.alignment" = ${JSON.stringify(typeof a === "bigint" ? String(a) : a)} must be a power of two (an integer from 1 to 2^30)`,
    );
  return a;
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
    throw new ConfigError(key, `should be a number, is ${Array.isArray(x) ? "an array" : typeof x}`, file);
  return Number(x);
}

const GGUF_ARCHS: Record<string, ModelArch> = { llama: "llama", qwen2: "qwen2", qwen3: "qwen3" };

export function ggufConfig(g: GgufFile, file: string): ModelConfig {
  const archRaw = meta(g, file, "general.architecture");
  if (typeof archRaw !== "string")
    throw new ConfigError("general.architecture", `should be a string, is ${typeof archRaw}`, file);
  const archName = archRaw;
  const arch = GGUF_ARCHS[archName];
  if (!arch)
    throw new ModelFormatError(
      file,
      `unsupported architecture "${archName}"; kvlab runs ${Object.keys(GGUF_ARCHS).join(", ")}`,
    );
  const k = (s: string) => `${archName}.${s}`;
  const dim = metaNum(g, file, k("embedding_length"));
  const nHeads = metaNum(g, file, k("attention.head_count"));
  if (!g.metadata.has(k("attention.key_length")) && !(nHeads >= 1 && Number.isInteger(dim / nHeads)))
    throw new ConfigError(
      k("attention.head_count"),
      `${k("embedding_length")} (${dim}) must be a positive multiple of it (${nHeads}) when ${k("attention.key_length")} is not given`,
      file,
    );
  const tokens = g.metadata.get("tokenizer.ggml.tokens");
  const hasOutput = g.tensors.some((t) => t.name === GGUF_NAMES.lmHead);
  const cfg: ModelConfig = {
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
    // Qwen3: blk.N.attn_q_norm / attn_k_norm.
    ...(arch === "qwen3" ? { qkNorm: true } : {}),
    // Every layer windowed (Mistral-style); families with a per-layer pattern are not read here.
    ...(g.metadata.has(k("attention.sliding_window"))
      ? { slidingWindow: metaNum(g, file, k("attention.sliding_window")) }
      : {}),
    bosId: g.metadata.has("tokenizer.ggml.bos_token_id")
      ? metaNum(g, file, "tokenizer.ggml.bos_token_id")
      : undefined,
    eosId: g.metadata.has("tokenizer.ggml.eos_token_id")
      ? metaNum(g, file, "tokenizer.ggml.eos_token_id")
      : undefined,
  };
  validateModelConfig(cfg, file, {
    dim: k("embedding_length"),
    hiddenDim: k("feed_forward_length"),
    nLayers: k("block_count"),
    nHeads: k("attention.head_count"),
    nKvHeads: k("attention.head_count_kv"),
    headDim: k("attention.key_length"),
    vocabSize: k("vocab_size"),
    maxSeqLen: k("context_length"),
    ropeTheta: k("rope.freq_base"),
    rmsNormEps: k("attention.layer_norm_rms_epsilon"),
    slidingWindow: k("attention.sliding_window"),
    bosId: "tokenizer.ggml.bos_token_id",
    eosId: "tokenizer.ggml.eos_token_id",
  });
  return cfg;
}

/** An array metadata value whose items all pass `ok` (and, when given, of `length` items). */
function metaArray<T>(
  g: GgufFile,
  file: string,
  key: string,
  ok: (x: unknown) => boolean,
  what: string,
  length?: number,
): T[] | undefined {
  const v = g.metadata.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new ConfigError(key, `expected an array of ${what}, got ${typeof v}`, file);
  const bad = v.findIndex((x) => !ok(x));
  if (bad >= 0) throw new ConfigError(`${key}[${bad}]`, `expected ${what}, got ${typeof v[bad]}`, file);
  if (length !== undefined && v.length !== length)
    throw new ConfigError(key, `has ${v.length} entries, the vocabulary ${length}`, file);
  return v as T[];
}

/** The SentencePiece vocab in GGUF metadata (tokenizer.ggml.model = "llama"). */
function ggufTokenizer(g: GgufFile, file: string, cfg: ModelConfig) {
  const model = meta(g, file, "tokenizer.ggml.model");
  if (model !== "llama")
    throw new ModelFormatError(
      file,
      `tokenizer.ggml.model "${model}" is not supported (only SentencePiece "llama"); use the HF directory of this model`,
    );
  const isStr = (x: unknown) => typeof x === "string";
  const isNum = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  const pieces = metaArray<string>(g, file, "tokenizer.ggml.tokens", isStr, "strings", cfg.vocabSize);
  if (!pieces) throw new ModelFormatError(file, 'missing metadata "tokenizer.ggml.tokens"');
  const scores =
    metaArray<number>(g, file, "tokenizer.ggml.scores", isNum, "finite numbers", pieces.length) ??
    pieces.map(() => 0);
  const types =
    metaArray<number>(
      g,
      file,
      "tokenizer.ggml.token_type",
      (x) => Number.isInteger(x),
      "integers",
      pieces.length,
    ) ?? [];
  // llama.cpp token types: 2 unknown, 3 control, 4 user-defined, 6 byte.
  const special = types.flatMap((t, id) => (t === 2 || t === 3 ? [id] : []));
  const unkId = g.metadata.has("tokenizer.ggml.unknown_token_id")
    ? metaNum(g, file, "tokenizer.ggml.unknown_token_id")
    : Math.max(0, types.indexOf(2));
  if (!Number.isSafeInteger(unkId) || unkId < 0 || unkId >= pieces.length)
    throw new ConfigError(
      "tokenizer.ggml.unknown_token_id",
      `token id ${unkId} is not in the vocabulary [0, ${pieces.length})`,
      file,
    );
  const addBos = g.metadata.get("tokenizer.ggml.add_bos_token");
  return tokenizerFromJson(
    () => spTokenizerJson({ pieces, scores, special, unkId }),
    {},
    { bosId: cfg.bosId, eosId: cfg.eosId, addBos: typeof addBos === "boolean" ? addBos : true },
    file,
  );
}

export async function loadGgufModel(
  file: string,
  exec: Executor,
  weightsMode: WeightsMode = "keep",
): Promise<LlamaModel> {
  const files = new FileSet();
  try {
    const g = readGguf(files, file);
    const cfg = ggufConfig(g, file);
    const tokenizer = ggufTokenizer(g, file, cfg);
    const ts = new TensorSet(new Map(g.tensors.map((t) => [t.name, t])), files, file, weightsMode);
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
    // llama.cpp's converter permutes llama q/k to the interleaved layout; qwen2's and qwen3's
    // (NEOX RoPE) it leaves alone.
    const names = { ...GGUF_NAMES, interleavedQK: cfg.arch === "llama" };
    const weights = loadLlamaWeights(cfg, exec, ts, names, true, { nLayers: `${cfg.arch}.block_count` });
    return new LlamaModel(cfg, weights, tokenizer, exec, `gguf:${file}`);
  } finally {
    files.close();
  }
}
