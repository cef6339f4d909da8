/**
 * llama2.c checkpoints (karpathy/llama2.c run.c, legacy "version 0" export): a header of seven
 * int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then f32 weights
 * in a fixed order, each stacked over layers. A negative vocab_size means the classifier is NOT
 * shared and follows the weights (run.c: `shared_weights = vocab_size > 0 ? 1 : 0`). q/k rows
 * are in Meta's interleaved RoPE layout, so they are permuted to rotate-half on load; and
 * tokenizer.bin (max_token_length, then per token: f32 score, int32 length, bytes).
 */
import { ModelFormatError } from "../errors.ts";
import type { Executor } from "../kernels/executor.ts";
import { basename, dirname, existsSync, join, readdirSync } from "../platform/host.ts";
import { type ConfigFieldNames, type ModelConfig, validateModelConfig } from "./config.ts";
import { LlamaModel } from "./llama.ts";
import { GGUF_NAMES, type LayerKey, loadLlamaWeights } from "./llama-weights.ts";
import { spTokenizerJson } from "./sp-vocab.ts";
import { FileSet, numel, type TensorEntry, TensorSet } from "./tensors.ts";
import { type HfTokenizer, tokenizerFromJson } from "./tokenizer.ts";

const HEADER_BYTES = 28;

export function readLlama2cConfig(files: FileSet, file: string): ModelConfig {
  const h = new DataView(files.read(file, 0, HEADER_BYTES, "the 28-byte header").buffer);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = Array.from({ length: 7 }, (_, i) =>
    h.getInt32(i * 4, true),
  ) as [number, number, number, number, number, number, number];
  const names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "|vocab_size|", "seq_len"];
  [dim, hiddenDim, nLayers, nHeads, nKvHeads, Math.abs(vocabRaw), seqLen].forEach((v, i) => {
    if (!(v > 0 && v < 1 << 24))
      throw new ModelFormatError(
        file,
        `header field ${names[i]} = ${v} is not a plausible size: not a llama2.c legacy checkpoint`,
        i * 4,
      );
  });
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0 || (dim / nHeads) % 2 !== 0)
    throw new ModelFormatError(
      file,
      `inconsistent heads: dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads}`,
      12,
    );
  const cfg: ModelConfig = {
    arch: "llama",
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim: dim / nHeads,
    vocabSize: Math.abs(vocabRaw),
    maxSeqLen: seqLen,
    ropeTheta: 10000, // llama2.c hard-codes it
    rmsNormEps: 1e-5, // likewise
    tiedEmbeddings: vocabRaw > 0,
    qkvBias: false,
    bosId: 1,
    eosId: 2,
  };
  validateModelConfig(cfg, file, LLAMA2C_FIELDS);
  return cfg;
}

/** The header fields by name and byte (for errors of the shared config validation). */
const LLAMA2C_FIELDS: ConfigFieldNames = {
  dim: "header dim (byte 0)",
  hiddenDim: "header hidden_dim (byte 4)",
  nLayers: "header n_layers (byte 8)",
  nHeads: "header n_heads (byte 12)",
  nKvHeads: "header n_kv_heads (byte 16)",
  headDim: "header dim / n_heads",
  vocabSize: "header vocab_size (byte 20)",
  maxSeqLen: "header seq_len (byte 24)",
};

/** The positional tensor layout of a legacy checkpoint, under GGUF names (also interleaved q/k). */
function llama2cTensors(cfg: ModelConfig, file: string, files: FileSet): TensorSet {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, maxSeqLen } = cfg;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const entries = new Map<string, TensorEntry>();
  let off = HEADER_BYTES;
  const add = (name: string, shape: number[]) => {
    entries.set(name, { name, dtype: "F32", shape, file, offset: off, headerOffset: 0 });
    off += numel(shape) * 4;
  };
  const stacked = (key: LayerKey, shape: number[]) => {
    for (let l = 0; l < nLayers; l++) add(GGUF_NAMES.layer(l, key), shape);
  };
  add(GGUF_NAMES.embed, [vocabSize, dim]);
  stacked("attnNorm", [dim]);
  stacked("wq", [qDim, dim]);
  stacked("wk", [kvDim, dim]);
  stacked("wv", [kvDim, dim]);
  stacked("wo", [dim, qDim]);
  stacked("ffnNorm", [dim]);
  stacked("wGate", [hiddenDim, dim]); // w1
  stacked("wDown", [dim, hiddenDim]); // w2
  stacked("wUp", [hiddenDim, dim]); // w3
  add(GGUF_NAMES.finalNorm, [dim]);
  off += maxSeqLen * headDim * 4; // freq_cis_real + freq_cis_imag (legacy RoPE tables, unused)
  if (!cfg.tiedEmbeddings) add(GGUF_NAMES.lmHead, [vocabSize, dim]);
  const size = files.size(file);
  // run.c maps exactly these bytes: a file of another size was exported with another header.
  if (size !== off)
    throw new ModelFormatError(
      file,
      size < off
        ? `the header implies ${off} bytes of weights but the file has ${size}: truncated, or not a legacy llama2.c checkpoint`
        : `the header implies ${off} bytes but the file has ${size} (${size - off} more): the header does not describe these weights (wrong n_layers, dims or vocab_size sign?)`,
      Math.min(size, off),
    );
  return new TensorSet(entries, files, file);
}

/** tokenizer.bin beside the checkpoint: "tokenizer.bin", else the one tok*.bin there. */
export function findLlama2cTokenizer(checkpoint: string): string {
  const dir = dirname(checkpoint);
  const std = join(dir, "tokenizer.bin");
  if (existsSync(std)) return std;
  const cands = readdirSync(dir).filter((f) => /^tok.*\.bin$/.test(f) && f !== basename(checkpoint));
  if (cands.length === 1) return join(dir, cands[0]!);
  throw new ModelFormatError(
    checkpoint,
    `no tokenizer.bin beside the checkpoint${cands.length ? ` (several candidates: ${cands.join(", ")})` : ""}; pass --tokenizer <file>`,
  );
}

export function loadLlama2cTokenizer(file: string, vocabSize: number): HfTokenizer {
  const files = new FileSet();
  try {
    const size = files.size(file);
    const buf = files.read(file, 0, size, "tokenizer");
    const dv = new DataView(buf.buffer);
    const dec = new TextDecoder("utf-8");
    const pieces: string[] = [];
    const scores: number[] = [];
    let o = 4;
    for (let i = 0; i < vocabSize; i++) {
      if (o + 8 > size) throw new ModelFormatError(file, `token ${i} of ${vocabSize}: file ends`, o);
      scores.push(dv.getFloat32(o, true));
      const len = dv.getInt32(o + 4, true);
      o += 8;
      if (len < 0 || o + len > size)
        throw new ModelFormatError(file, `token ${i}: length ${len} runs past the end`, o - 4);
      // llama2.c's export wrote "▁" as " " and decorated BOS/EOS as "\n<s>\n"; undo both.
      const raw = dec.decode(buf.subarray(o, o + len));
      pieces.push(raw.replace(/^\n(<\/?s>)\n$/, "$1").replaceAll(" ", "▁"));
      o += len;
    }
    return tokenizerFromJson(
      () => spTokenizerJson({ pieces, scores, special: [0, 1, 2], unkId: 0 }),
      { bos_token: pieces[1], eos_token: pieces[2] },
      { bosId: 1, eosId: 2, addBos: true },
      file,
    );
  } finally {
    files.close();
  }
}

export async function loadLlama2cModel(
  file: string,
  exec: Executor,
  tokenizerFile?: string,
): Promise<LlamaModel> {
  const files = new FileSet();
  try {
    const cfg = readLlama2cConfig(files, file);
    const ts = llama2cTensors(cfg, file, files); // checks the size before anything slow
    const tokenizer = loadLlama2cTokenizer(tokenizerFile ?? findLlama2cTokenizer(file), cfg.vocabSize);
    const weights = loadLlamaWeights(cfg, exec, ts, GGUF_NAMES, false, { nLayers: "header n_layers" });
    return new LlamaModel(cfg, weights, tokenizer, exec, `llama2c:${file}`);
  } finally {
    files.close();
  }
}
