/**
 * GGUF F16 with a SentencePiece vocab, written here from a synthetic HF model (q/k rows
 * permuted to the interleaved layout the way llama.cpp's converter does), must load to the same
 * tokenizer and, up to f16 rounding of the weights, the same logits as the HF directory.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { type Matrix, matrixF32 } from "../../src/kernels/weights.ts";
import type { LlamaModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";
import { f32ToF16 } from "../../src/quant/half.ts";

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "kvlab-gguf-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Minimal GGUF v3 writer: string/u32/f32/array metadata, F16 tensors. */
function writeGguf(
  file: string,
  meta: [string, "str" | "u32" | "f32" | "strs" | "f32s" | "i32s", unknown][],
  tensors: { name: string; shape: number[]; data: Float32Array; f32?: boolean }[],
) {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    parts.push(b);
  };
  const str = (s: string) => {
    const b = Buffer.from(s, "utf8");
    u64(b.length);
    parts.push(b);
  };
  const f32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    parts.push(b);
  };
  const i32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    parts.push(b);
  };
  parts.push(Buffer.from("GGUF", "latin1"));
  u32(3);
  u64(tensors.length);
  u64(meta.length);
  for (const [k, t, v] of meta) {
    str(k);
    if (t === "str") {
      u32(8);
      str(v as string);
    } else if (t === "u32") {
      u32(4);
      u32(v as number);
    } else if (t === "f32") {
      u32(6);
      f32(v as number);
    } else {
      const arr = v as (string | number)[];
      u32(9);
      u32(t === "strs" ? 8 : t === "f32s" ? 6 : 5);
      u64(arr.length);
      for (const x of arr)
        t === "strs" ? str(x as string) : t === "f32s" ? f32(x as number) : i32(x as number);
    }
  }
  let off = 0;
  for (const t of tensors) {
    str(t.name);
    u32(t.shape.length);
    for (const d of [...t.shape].reverse()) u64(d);
    u32(t.f32 ? 0 : 1); // F32 or F16
    u64(off);
    off += Math.ceil((t.data.length * (t.f32 ? 4 : 2)) / 32) * 32;
  }
  const head = Buffer.concat(parts);
  const start = Math.ceil(head.length / 32) * 32;
  const out = Buffer.alloc(start + off);
  head.copy(out);
  let p = start;
  for (const t of tensors) {
    for (let i = 0; i < t.data.length; i++)
      if (t.f32) out.writeFloatLE(t.data[i]!, p + i * 4);
      else out.writeUInt16LE(f32ToF16(t.data[i]!), p + i * 2);
    p += Math.ceil((t.data.length * (t.f32 ? 4 : 2)) / 32) * 32;
  }
  writeFileSync(file, out);
}

/** HF rotate-half rows -> interleaved (llama.cpp convert_hf_to_gguf's permute). w: (nHeads*hd, dIn). */
function toInterleaved(w: Float32Array, nHeads: number, hd: number, dIn: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++)
    for (let j = 0; j < hd; j++) {
      const src = h * hd + (j % 2) * (hd / 2) + Math.floor(j / 2); // interleaved row j <- rotate-half row
      out.set(w.subarray(src * dIn, (src + 1) * dIn), (h * hd + j) * dIn);
    }
  return out;
}

/**
 * Write `hf` (loaded from hfDir) as a GGUF F16 file, plus extra tensors. `arch`: the GGUF
 * architecture (q/k permuted to interleaved rows for "llama" only, as llama.cpp's converter);
 * `meta`: extra metadata.
 */
function ggufOf(
  hf: LlamaModel,
  hfDir: string,
  file: string,
  extra: { name: string; shape: number[]; data: Float32Array; f32?: boolean }[] = [],
  arch = "llama",
  meta: [string, "str" | "u32" | "f32", unknown][] = [],
) {
  const c = hf.config;
  // 16-bit matrices as loaded (weights kept, src/kernels/weights.ts) widened back to f32
  const perm = (w: Matrix, heads: number) =>
    arch === "llama" ? toInterleaved(matrixF32(w), heads, c.headDim, c.dim) : matrixF32(w);
  const W = hf.weights;
  const tj = JSON.parse(readFileSync(join(hfDir, "tokenizer.json"), "utf8"));
  const pieces: string[] = [];
  for (const [p, id] of Object.entries(tj.model.vocab as Record<string, number>)) pieces[id] = p;
  const tensors: { name: string; shape: number[]; data: Float32Array; f32?: boolean }[] = [
    { name: "token_embd.weight", shape: [c.vocabSize, c.dim], data: matrixF32(W.embed) },
  ];
  W.layers.forEach((L, i) => {
    const t = (n: string, shape: number[], data: Matrix) =>
      tensors.push({ name: `blk.${i}.${n}`, shape, data: matrixF32(data) });
    t("attn_norm.weight", [c.dim], L.attnNorm);
    t("attn_q.weight", [c.nHeads * c.headDim, c.dim], perm(L.wq, c.nHeads));
    t("attn_k.weight", [c.nKvHeads * c.headDim, c.dim], perm(L.wk, c.nKvHeads));
    if (L.qNorm) t("attn_q_norm.weight", [c.headDim], L.qNorm);
    if (L.kNorm) t("attn_k_norm.weight", [c.headDim], L.kNorm);
    t("attn_v.weight", [c.nKvHeads * c.headDim, c.dim], L.wv);
    t("attn_output.weight", [c.dim, c.nHeads * c.headDim], L.wo);
    t("ffn_norm.weight", [c.dim], L.ffnNorm);
    t("ffn_gate.weight", [c.hiddenDim, c.dim], L.wGate!);
    t("ffn_up.weight", [c.hiddenDim, c.dim], L.wUp);
    t("ffn_down.weight", [c.dim, c.hiddenDim], L.wDown);
  });
  tensors.push({ name: "output_norm.weight", shape: [c.dim], data: W.finalNorm });
  tensors.push({ name: "output.weight", shape: [c.vocabSize, c.dim], data: matrixF32(W.lmHead) });
  tensors.push(...extra);
  writeGguf(
    file,
    [
      ["general.architecture", "str", arch],
      [`${arch}.context_length`, "u32", c.maxSeqLen],
      [`${arch}.embedding_length`, "u32", c.dim],
      [`${arch}.block_count`, "u32", c.nLayers],
      [`${arch}.feed_forward_length`, "u32", c.hiddenDim],
      [`${arch}.attention.head_count`, "u32", c.nHeads],
      [`${arch}.attention.head_count_kv`, "u32", c.nKvHeads],
      [`${arch}.attention.key_length`, "u32", c.headDim],
      [`${arch}.rope.freq_base`, "f32", c.ropeTheta],
      [`${arch}.attention.layer_norm_rms_epsilon`, "f32", c.rmsNormEps],
      ...meta,
      ["tokenizer.ggml.model", "str", "llama"],
      ["tokenizer.ggml.tokens", "strs", pieces],
      ["tokenizer.ggml.scores", "f32s", pieces.map((_, i) => -i)],
      [
        "tokenizer.ggml.token_type",
        "i32s",
        pieces.map((p, i) => (i === 0 ? 2 : i < 3 ? 3 : /^<0x/.test(p) ? 6 : 1)),
      ],
      ["tokenizer.ggml.bos_token_id", "u32", 1],
      ["tokenizer.ggml.eos_token_id", "u32", 2],
    ],
    tensors,
  );
}

test("GGUF F16 (interleaved q/k, SentencePiece vocab) loads like the HF model", async () => {
  const hfDir = synthModel({ shape: "tiny", out: join(dir, "hf"), seed: 11, dtype: "f16" });
  const hf = (await loadModel(hfDir, { executor: "ref" })) as LlamaModel;
  const W = hf.weights;
  const file = join(dir, "tiny.f16.gguf");
  ggufOf(hf, hfDir, file);
  const gg = (await loadModel(file, { executor: "ref" })) as LlamaModel;
  try {
    const text = "Once upon a time, 12 tiny models ran.";
    const ids = hf.tokenizer.encode(text);
    assert.deepEqual(gg.tokenizer.encode(text), ids);
    // The HF weights were f16 already, so the GGUF's f16 copy is exact: identical weights.
    assert.deepEqual(gg.weights.layers[1]!.wq, W.layers[1]!.wq);
    assert.deepEqual(gg.weights.layers[1]!.wk, W.layers[1]!.wk);
    const pos = Int32Array.from(ids, (_, i) => i);
    const run = async (m: LlamaModel) => {
      const cache = await createCache("f32", m.kvShape(ids.length), { executor: m.executor });
      const out = Float32Array.from(await m.forward(ids, pos, cache));
      cache.dispose();
      return out;
    };
    // Not bit-identical: GGUF stores rms_norm_eps as f32 (1e-5 becomes 9.99999974e-6).
    const a = await run(gg);
    const b = await run(hf);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
      scale = Math.max(scale, Math.abs(b[i]!));
    }
    assert.ok(diff <= 1e-5 * scale, `max diff ${diff}, scale ${scale}`);
  } finally {
    gg.dispose();
    hf.dispose();
  }
});

test("GGUF rope_freqs.weight (Llama-3 scaling as divisors) matches HF rope_scaling", async () => {
  const hfDir = synthModel({ shape: "tiny", out: join(dir, "hf3"), seed: 12, dtype: "f16" });
  const plain = (await loadModel(hfDir, { executor: "ref" })) as LlamaModel;
  const cfgFile = join(hfDir, "config.json");
  const s = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };
  writeFileSync(
    cfgFile,
    JSON.stringify({
      ...JSON.parse(readFileSync(cfgFile, "utf8")),
      rope_scaling: { rope_type: "llama3", ...s },
    }),
  );
  const hf = (await loadModel(hfDir, { executor: "ref" })) as LlamaModel;
  // Divisors as llama.cpp's converter computes them (HF llama3 rule, written out here again).
  const hd = hf.config.headDim;
  const div = new Float32Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) {
    const wl = 2 * Math.PI * hf.config.ropeTheta ** ((2 * i) / hd);
    const lo = s.original_max_position_embeddings / s.low_freq_factor;
    const hi = s.original_max_position_embeddings / s.high_freq_factor;
    if (wl < hi) div[i] = 1;
    else if (wl > lo) div[i] = s.factor;
    else {
      const sm =
        (s.original_max_position_embeddings / wl - s.low_freq_factor) /
        (s.high_freq_factor - s.low_freq_factor);
      div[i] = 1 / ((1 - sm) / s.factor + sm);
    }
  }
  assert.ok(
    div.some((d) => d === s.factor) && div.some((d) => d > 1 && d < s.factor),
    "all three regimes used",
  );
  const file = join(dir, "tiny-rope.gguf");
  ggufOf(plain, hfDir, file, [{ name: "rope_freqs.weight", shape: [hd / 2], data: div, f32: true }]);
  const gg = (await loadModel(file, { executor: "ref" })) as LlamaModel;
  try {
    const ids = hf.tokenizer.encode("a longer prompt so that positions reach past the original context");
    const pos = Int32Array.from(ids, (_, i) => i);
    const run = async (m: LlamaModel) => {
      const cache = await createCache("f32", m.kvShape(ids.length), { executor: m.executor });
      const out = Float32Array.from(await m.forward(ids, pos, cache));
      cache.dispose();
      return out;
    };
    const [a, b, p] = [await run(gg), await run(hf), await run(plain)];
    let diff = 0;
    let diffPlain = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
      diffPlain = Math.max(diffPlain, Math.abs(p[i]! - b[i]!));
    }
    assert.ok(diff < diffPlain / 100, `gguf vs hf ${diff}; unscaled vs hf ${diffPlain}`);
  } finally {
    gg.dispose();
    hf.dispose();
    plain.dispose();
  }
});

for (const [shape, arch, meta] of [
  ["tiny-qwen3", "qwen3", []],
  ["tiny-mistral", "llama", [["llama.attention.sliding_window", "u32", 6]]],
] as [string, string, [string, "u32", number][]][]) {
  test(`GGUF ${arch} from ${shape} (${meta.length ? "sliding window" : "attn_q_norm / attn_k_norm, no q/k permutation"}) loads like the HF model`, async () => {
    const hfDir = synthModel({ shape, out: join(dir, shape), seed: 13, dtype: "f16" });
    const hf = (await loadModel(hfDir, { executor: "ref" })) as LlamaModel;
    const file = join(dir, `${shape}.gguf`);
    ggufOf(hf, hfDir, file, [], arch, meta);
    const gg = (await loadModel(file, { executor: "ref" })) as LlamaModel;
    try {
      assert.equal(gg.config.arch, hf.config.arch);
      assert.equal(gg.config.qkNorm, hf.config.qkNorm);
      assert.equal(gg.config.slidingWindow, hf.config.slidingWindow);
      assert.deepEqual(gg.weights.layers[1]!.wq, hf.weights.layers[1]!.wq);
      assert.deepEqual(gg.weights.layers[1]!.kNorm, hf.weights.layers[1]!.kNorm);
      const ids = hf.tokenizer.encode("Once upon a time, 12 tiny models ran far.", { addBos: true });
      assert.ok(ids.length > 8, "longer than the window");
      const pos = Int32Array.from(ids, (_, i) => i);
      const run = async (m: LlamaModel) => {
        const cache = await createCache("f32", m.kvShape(ids.length), { executor: m.executor });
        const out = Float32Array.from(await m.forward(ids, pos, cache));
        cache.dispose();
        return out;
      };
      const [a, b] = [await run(gg), await run(hf)];
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < a.length; i++) {
        diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
        scale = Math.max(scale, Math.abs(b[i]!));
      }
      assert.ok(diff <= 1e-5 * scale, `max diff ${diff}, scale ${scale}`);
    } finally {
      gg.dispose();
      hf.dispose();
    }
  });
}
