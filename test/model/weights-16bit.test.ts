/**
 * 16-bit weights kept as stored (issue 15 lever 3; src/model/tensors.ts `weights: "keep"`,
 * src/kernels/weights.ts). Widening f16/bf16 to f32 is exact and each executor's matmul over
 * a 16-bit matrix runs the same f32 operations in the same order as over the widened matrix,
 * so the derived bound between keeping and widening on load is zero: logits must be bit for
 * bit identical, on ref and on wasm, for prefill and for decoding.
 */
import assert from "node:assert/strict";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { ConfigError, ModelFormatError } from "../../src/errors.ts";
import { EXECUTORS } from "../../src/kernels/registry.ts";
import { BF16Array, F16Array } from "../../src/kernels/weights.ts";
import type { LlamaModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";
import type { WeightsMode } from "../../src/model/tensors.ts";
import { f16ToF32 } from "../../src/quant/half.ts";

let dir = "";

/** The safetensors file of a synth dir as (header, data bytes). */
function readSt(d: string): {
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  data: Buffer;
} {
  const buf = readFileSync(join(d, "model.safetensors"));
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString("utf8")), data: buf.subarray(8 + n) };
}

function writeSt(d: string, header: object, data: Uint8Array): void {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(d, "model.safetensors"), Buffer.concat([len, Buffer.from(json, "utf8"), data]));
}

/** A copy of the f16 synth dir `src` with tensors edited in place (header entry and 16-bit data). */
function copyAs(
  src: string,
  dst: string,
  edit: (name: string, t: { dtype: string }, h: Uint16Array) => void,
) {
  rmSync(dst, { recursive: true, force: true });
  const { header, data } = readSt(src);
  const bytes = Uint8Array.from(data);
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [b, e] = t.data_offsets;
    edit(name, t, new Uint16Array(bytes.buffer, b, (e - b) / 2));
  }
  // every other file of the model (config, tokenizer) as it is
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src)) if (f !== "model.safetensors") copyFileSync(join(src, f), join(dst, f));
  writeSt(dst, header, bytes);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "kvlab-w16-"));
  synthModel({ shape: "tiny", out: join(dir, "tiny"), seed: 3, dtype: "f16" });
  synthModel({ shape: "tiny-qwen2", out: join(dir, "tiny-qwen2"), seed: 4, dtype: "f16" });
  // bf16: each f16 weight's f32 value truncated to bf16 (a valid finite bf16 model)
  copyAs(join(dir, "tiny"), join(dir, "tiny-bf16"), (_n, t, h) => {
    t.dtype = "BF16";
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < h.length; i++) {
      f[0] = f16ToF32(h[i]!);
      h[i] = u[0]! >>> 16;
    }
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

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

for (const [model, Kept] of [
  ["tiny", F16Array],
  ["tiny-qwen2", F16Array],
  ["tiny-bf16", BF16Array],
] as const) {
  describe(`16-bit weights kept vs widened on load: ${model}`, () => {
    for (const executor of ["ref", "wasm"] as const) {
      test(`${executor}: identical logits, prefill and decoding`, async (t) => {
        const probe = await EXECUTORS[executor]!.probe();
        if (!probe.available) return t.skip(probe.detail);
        const load = (weights: WeightsMode) =>
          loadModel(join(dir, model), { executor, weights }) as Promise<LlamaModel>;
        const keep = await load("keep");
        const wide = await load("f32");
        try {
          const L = keep.weights.layers[0]!;
          for (const w of [L.wq, L.wk, L.wv, L.wo, L.wGate!, L.wUp, L.wDown, keep.weights.embed])
            assert.ok(w instanceof Kept, `kept matrix is ${w.constructor.name}`);
          assert.ok(wide.weights.layers[0]!.wq instanceof Float32Array);
          assert.ok(keep.weights.layers[0]!.attnNorm instanceof Float32Array, "vectors stay f32");
          const tokens = keep.tokenizer
            .encode("Once upon a time, a tiny model spoke.", { addBos: true })
            .slice(0, 17);
          for (const chunk of [tokens.length, 1]) {
            const a = await logitsOf(keep, tokens, chunk);
            const b = await logitsOf(wide, tokens, chunk);
            assert.ok(a.every(Number.isFinite));
            assert.deepEqual(a, b, `${executor} chunk ${chunk}: kept and widened weights differ`);
          }
        } finally {
          keep.dispose();
          wide.dispose();
        }
      });
    }
  });
}

test("a matrix in a dtype kvlab does not read is refused naming the tensor and the dtype", async () => {
  const bad = join(dir, "tiny-i16");
  copyAs(join(dir, "tiny"), bad, (name, t) => {
    if (name === "model.layers.1.mlp.up_proj.weight") t.dtype = "I16";
  });
  for (const weights of ["keep", "f32"] as const)
    await assert.rejects(
      loadModel(bad, { executor: "ref", weights }),
      (e: Error) =>
        e instanceof ModelFormatError &&
        /tensor "model\.layers\.1\.mlp\.up_proj\.weight" has dtype I16; kvlab reads F32, F16, BF16 and \(GGUF\) Q8_0/.test(
          e.message,
        ),
    );
});

test("a non-finite kept f16 weight is refused naming the tensor and the element", async () => {
  const bad = join(dir, "tiny-inf");
  copyAs(join(dir, "tiny"), bad, (name, _t, h) => {
    if (name === "model.layers.0.self_attn.o_proj.weight") h[5] = 0xfc00; // -Inf
  });
  await assert.rejects(
    loadModel(bad, { executor: "ref", weights: "keep" }),
    (e: Error) =>
      e instanceof ModelFormatError &&
      /tensor "model\.layers\.0\.self_attn\.o_proj\.weight" element 5 is -Infinity: weights must be finite/.test(
        e.message,
      ),
  );
});

test("an unknown weights mode is a ConfigError", async () => {
  await assert.rejects(
    loadModel(join(dir, "tiny"), { executor: "ref", weights: "f8" as WeightsMode }),
    (e: Error) => e instanceof ConfigError && /weights: expected one of keep, f32, got "f8"/.test(e.message),
  );
});
