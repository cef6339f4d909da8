/**
 * Q8_0 weight matrices kept as ggml blocks (src/kernels/weights.ts, src/model/tensors.ts) against
 * the same blocks dequantized on load (`weights: "f32"`): d * q is exact in f32 and the matmul
 * runs the f32 operations in the f32 kernel's order, so the derived bound is zero: logits must
 * be bit for bit identical on ref and wasm, prefill and decoding. The blocks are made here with
 * ggml's quantize_row_q8_0_ref (d = amax / 127 stored f16, q = round(x / d)) from a synth model's
 * weights and read through TensorEntry/TensorSet exactly as a GGUF's Q8_0 tensors are; the q/k
 * rows go through the interleaved-to-rotate-half permutation (on 34-byte block rows) as GGUF's do.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import type { Executor } from "../../src/kernels/executor.ts";
import { createRefExecutor } from "../../src/kernels/ref.ts";
import { EXECUTORS } from "../../src/kernels/registry.ts";
import { Q8_0Array } from "../../src/kernels/weights.ts";
import { hfTensors } from "../../src/model/hf.ts";
import { LlamaModel } from "../../src/model/llama.ts";
import { HF_NAMES, loadLlamaWeights } from "../../src/model/llama-weights.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";
import { FileSet, type TensorEntry, TensorSet, type WeightsMode } from "../../src/model/tensors.ts";
import { f16ToF32, f32ToF16 } from "../../src/quant/half.ts";

let dir = "";
let hf: LlamaModel;
let entries: Map<string, TensorEntry>;
const file = () => join(dir, "weights.bin");

/** ggml quantize_row_q8_0_ref: per 32 values d = amax / 127 (as f16), q = round(x / d). */
function quantizeQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 34);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    const h = f32ToF16(d);
    out[b * 34] = h & 0xff;
    out[b * 34 + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[b * 34 + 2 + j] = Math.round(x[b * 32 + j]! * id) & 0xff;
  }
  return out;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "kvlab-q8w-"));
  const src = synthModel({ shape: "tiny", out: join(dir, "tiny"), seed: 5, dtype: "f32" });
  hf = (await loadModel(src, { executor: "ref" })) as LlamaModel;
  // Every tensor of the synth file: 2-D ones as Q8_0 blocks, vectors as F32, in one raw file.
  const files = new FileSet();
  const parts: Uint8Array[] = [];
  entries = new Map();
  let off = 0;
  try {
    for (const [name, t] of hfTensors(src, files, "f32").entries) {
      const x = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      files.readF32(t, x);
      // Q8_0 where ggml can (rows of whole blocks), else F32 as llama.cpp leaves them (the tiny
      // shape's down_proj, dIn 48): a mixed file
      const q8 = t.shape.length === 2 && t.shape[1]! % 32 === 0;
      const bytes = q8 ? quantizeQ8_0(x) : new Uint8Array(x.buffer);
      entries.set(name, {
        name,
        dtype: q8 ? "Q8_0" : "F32",
        shape: t.shape,
        file: file(),
        offset: off,
        headerOffset: 0,
      });
      parts.push(bytes);
      off += bytes.length;
    }
  } finally {
    files.close();
  }
  writeFileSync(file(), Buffer.concat(parts));
});
after(() => {
  hf?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function modelOf(exec: Executor, weights: WeightsMode): LlamaModel {
  const files = new FileSet();
  try {
    const ts = new TensorSet(entries, files, file(), weights);
    // as a GGUF llama: q/k rows stored interleaved (here: permuted as if they were)
    const w = loadLlamaWeights(hf.config, exec, ts, { ...HF_NAMES, interleavedQK: true });
    return new LlamaModel(hf.config, w, hf.tokenizer, exec, `q8_0:${weights}`);
  } finally {
    files.close();
  }
}

async function logitsOf(m: LlamaModel, tokens: number[], chunk: number): Promise<Float32Array> {
  const V = m.config.vocabSize;
  const cache = await createCache("f32", m.kvShape(tokens.length), { executor: m.executor });
  const pos = Int32Array.from(tokens, (_, i) => i);
  const out = new Float32Array(tokens.length * V);
  for (let a = 0; a < tokens.length; a += chunk) {
    const b = Math.min(tokens.length, a + chunk);
    out.set(await m.forward(tokens.slice(a, b), pos.subarray(a, b), cache), a * V);
  }
  cache.dispose();
  return out;
}

for (const executor of ["ref", "wasm"] as const)
  test(`${executor}: Q8_0 weights kept as blocks give the logits of dequantizing on load, bit for bit`, async (t) => {
    const probe = await EXECUTORS[executor]!.probe();
    if (!probe.available) return t.skip(probe.detail);
    const exec = await EXECUTORS[executor]!.create();
    const keep = modelOf(exec, "keep");
    const wide = modelOf(exec, "f32");
    try {
      const L = keep.weights.layers[1]!;
      for (const w of [L.wq, L.wk, L.wv, L.wo, L.wGate!, L.wUp, keep.weights.embed, keep.weights.lmHead])
        assert.ok(w instanceof Q8_0Array, `kept matrix is ${w.constructor.name}`);
      assert.ok(L.wDown instanceof Float32Array, "an F32 matrix stays f32");
      assert.ok(wide.weights.layers[1]!.wq instanceof Float32Array);
      // the dequantized weights are d * q of the blocks (spot check against half.ts)
      const blk = keep.weights.layers[1]!.wo as Q8_0Array;
      const d = f16ToF32(blk[34]! | (blk[35]! << 8));
      assert.equal(
        (wide.weights.layers[1]!.wo as Float32Array)[37],
        d * new Int8Array(blk.buffer, blk.byteOffset)[34 + 2 + 5]!,
      );
      const tokens = hf.tokenizer
        .encode("Once upon a time, a tiny model spoke.", { addBos: true })
        .slice(0, 17);
      for (const chunk of [tokens.length, 1]) {
        const a = await logitsOf(keep, tokens, chunk);
        const b = await logitsOf(wide, tokens, chunk);
        assert.ok(a.every(Number.isFinite));
        assert.deepEqual(a, b, `${executor} chunk ${chunk}: Q8_0 kept and dequantized differ`);
      }
    } finally {
      keep.dispose();
      wide.dispose();
      exec.dispose();
    }
  });

test("a Q8_0 block with a non-finite scale is refused naming the tensor and the block", async () => {
  const t = entries.get("model.layers.0.mlp.up_proj.weight")!;
  const bad = join(dir, "bad.bin");
  const bytes = Uint8Array.from(readFileSync(file()));
  bytes[t.offset + 3 * 34 + 1] = 0x7c; // block 3: scale +Inf
  writeFileSync(bad, bytes);
  const moved = new Map([...entries].map(([k, e]) => [k, { ...e, file: bad }]));
  for (const weights of ["keep", "f32"] as const) {
    const files = new FileSet();
    try {
      const ts = new TensorSet(moved, files, bad, weights);
      assert.throws(
        () => loadLlamaWeights(hf.config, createRefExecutor(), ts, HF_NAMES),
        /tensor "model\.layers\.0\.mlp\.up_proj\.weight" block 3 has a non-finite scale/,
      );
    } finally {
      files.close();
    }
  }
});
