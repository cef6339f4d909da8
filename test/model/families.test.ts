/**
 * The model families beyond Llama (Mistral's sliding window, Qwen3, GPT-2, Gemma 2, Gemma 3) on
 * tiny synthetic models: each against a float64 forward written here from the architecture's
 * published definition (HF's modeling_mistral / modeling_qwen3 / modeling_gpt2 /
 * modeling_gemma2 / modeling_gemma3), reading the raw tensors of the safetensors file by their HF names, so the
 * loader's renaming, transposes, fusing and (1+w) folding are checked too; then chunk-size
 * invariance, wasm against ref, `kvlab ppl` on every executor, and the webgpu forward (GPU
 * kernels, or the counted host path) against the CPU forward. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createCache } from "../../src/cache/create.ts";
import type { CacheSpecInput } from "../../src/cache/types.ts";
import { GpuKVCache } from "../../src/gpu/kv-cache.ts";
import { EXECUTORS } from "../../src/kernels/registry.ts";
import type { LanguageModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";

type Vec = number[];
type Raw = (name: string) => Float64Array;

/** The f32 tensors of a safetensors file by name, read without the code under test. */
function readRaw(file: string): Raw {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString("utf8")) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  return (name) => {
    const t = header[name];
    assert.ok(t, `tensor ${name} in the file`);
    assert.equal(t.dtype, "F32");
    const [a, b] = t.data_offsets;
    const out = new Float64Array((b - a) / 4);
    for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(8 + len + a + 4 * i);
    return out;
  };
}

/** y = W x (+ b), W stored (dOut, dIn) as nn.Linear. */
const linear = (x: Vec, w: Float64Array, dOut: number, b?: Float64Array): Vec =>
  Array.from({ length: dOut }, (_, o) => {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < x.length; i++) s += x[i]! * w[o * x.length + i]!;
    return s;
  });
/** y = x W + b, W stored (dIn, dOut) as GPT-2's Conv1D. */
const conv1d = (x: Vec, w: Float64Array, dOut: number, b: Float64Array): Vec =>
  Array.from({ length: dOut }, (_, o) => {
    let s = b[o]!;
    for (let i = 0; i < x.length; i++) s += x[i]! * w[i * dOut + o]!;
    return s;
  });
const rmsNorm = (x: Vec, w: Float64Array, eps: number): Vec => {
  const r = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + eps);
  return x.map((v, i) => v * r * w[i]!);
};
const layerNorm = (x: Vec, w: Float64Array, b: Float64Array, eps: number): Vec => {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const vr = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(vr + eps)) * w[i]! + b[i]!);
};
const silu = (v: number) => v / (1 + Math.exp(-v));
const geluNew = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
/** HF rotate_half RoPE at position p with theta^(-2i/d) (divided by a linear scaling factor). */
const rope = (v: Vec, p: number, theta: number, factor = 1): Vec => {
  const h = v.length / 2;
  const out = v.slice();
  for (let i = 0; i < h; i++) {
    const a = (p * theta ** (-(2 * i) / v.length)) / factor;
    out[i] = v[i]! * Math.cos(a) - v[i + h]! * Math.sin(a);
    out[i + h] = v[i + h]! * Math.cos(a) + v[i]! * Math.sin(a);
  }
  return out;
};

/**
 * Causal multi-head attention over per-token q (n, nH*hd), k, v (n, nKv*hd), key s visible to
 * query t iff s <= t and t - s < window. Returns (n, nH*hd).
 */
function attention(
  q: Vec[],
  k: Vec[],
  v: Vec[],
  nH: number,
  nKv: number,
  hd: number,
  window = Infinity,
  scale = 1 / Math.sqrt(hd),
  softcap = Infinity,
): Vec[] {
  const n = q.length;
  const out = q.map(() => new Array<number>(nH * hd).fill(0));
  for (let h = 0; h < nH; h++) {
    const kvh = Math.floor(h / (nH / nKv));
    for (let t = 0; t < n; t++) {
      const vis: number[] = [];
      for (let s = 0; s <= t; s++) if (t - s < window) vis.push(s);
      const sc = vis.map((s) => {
        let d = 0;
        for (let i = 0; i < hd; i++) d += q[t]![h * hd + i]! * k[s]![kvh * hd + i]!;
        // Gemma 2: scores soft-capped before the softmax (no cap: Infinity).
        return softcap === Infinity ? d * scale : softcap * Math.tanh((d * scale) / softcap);
      });
      const mx = Math.max(...sc);
      const e = sc.map((x) => Math.exp(x - mx));
      const z = e.reduce((a, b) => a + b, 0);
      vis.forEach((s, j) => {
        for (let i = 0; i < hd; i++) out[t]![h * hd + i]! += (e[j]! / z) * v[s]![kvh * hd + i]!;
      });
    }
  }
  return out;
}

/** HF config.json of the synthetic model. */
type Cfg = Record<string, number | boolean | null | string | string[]>;

/** Mistral / Qwen3: the Llama block (HF modeling_mistral, modeling_qwen3), optional q/k norms and window. */
function llamaFamilyRef(raw: Raw, c: Cfg, tokens: number[], window = Infinity): Vec[] {
  const dim = c.hidden_size as number;
  const nH = c.num_attention_heads as number;
  const nKv = c.num_key_value_heads as number;
  const hd = (c.head_dim as number | undefined) ?? dim / nH;
  const eps = c.rms_norm_eps as number;
  const theta = c.rope_theta as number;
  const qkNorm = c.model_type === "qwen3";
  const embed = raw("model.embed_tokens.weight");
  let x = tokens.map((t) => Array.from(embed.subarray(t * dim, (t + 1) * dim)));
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}.`;
    const xs = x.map((r) => rmsNorm(r, raw(`${p}input_layernorm.weight`), eps));
    const perHead = (r: Vec, heads: number, norm: string | null, pos: number) => {
      const out: number[] = [];
      for (let h = 0; h < heads; h++) {
        let v = r.slice(h * hd, (h + 1) * hd);
        if (norm) v = rmsNorm(v, raw(norm), eps);
        out.push(...rope(v, pos, theta));
      }
      return out;
    };
    const q = xs.map((r, t) =>
      perHead(
        linear(r, raw(`${p}self_attn.q_proj.weight`), nH * hd),
        nH,
        qkNorm ? `${p}self_attn.q_norm.weight` : null,
        t,
      ),
    );
    const k = xs.map((r, t) =>
      perHead(
        linear(r, raw(`${p}self_attn.k_proj.weight`), nKv * hd),
        nKv,
        qkNorm ? `${p}self_attn.k_norm.weight` : null,
        t,
      ),
    );
    const v = xs.map((r) => linear(r, raw(`${p}self_attn.v_proj.weight`), nKv * hd));
    const att = attention(q, k, v, nH, nKv, hd, window);
    x = x.map((r, t) => {
      const o = linear(att[t]!, raw(`${p}self_attn.o_proj.weight`), dim);
      const h1 = r.map((val, i) => val + o[i]!);
      const hn = rmsNorm(h1, raw(`${p}post_attention_layernorm.weight`), eps);
      const hidden = c.intermediate_size as number;
      const g = linear(hn, raw(`${p}mlp.gate_proj.weight`), hidden);
      const u = linear(hn, raw(`${p}mlp.up_proj.weight`), hidden);
      const d = linear(
        g.map((gi, i) => silu(gi) * u[i]!),
        raw(`${p}mlp.down_proj.weight`),
        dim,
      );
      return h1.map((val, i) => val + d[i]!);
    });
  }
  const head = c.tie_word_embeddings ? embed : raw("lm_head.weight");
  return x.map((r) => linear(rmsNorm(r, raw("model.norm.weight"), eps), head, c.vocab_size as number));
}

/**
 * Gemma 3 text (HF modeling_gemma3, arXiv:2503.19786): embedding x sqrt(hidden), Gemma3RMSNorm
 * x / rms * (1 + w), q/k norms before RoPE, local layers ((l + 1) % pattern != 0) with the
 * window and rope_local_base_freq, global ones with rope_theta and linear scaling, scores /
 * sqrt(query_pre_attn_scalar), post-attention and post-FFN norms, GeGLU (gelu tanh), tied head.
 * Gemma 2 (HF modeling_gemma2, arXiv:2408.00118) is the same block without q/k norms, with
 * every other layer local starting at layer 0, one RoPE base, attention scores soft-capped
 * (attn_logit_softcapping) and final logits soft-capped (final_logit_softcapping);
 * `noCaps` drops both caps (to show they matter).
 */
function gemmaRef(raw: Raw, c: Cfg, tokens: number[], window?: number, noCaps = false): Vec[] {
  const gemma2 = c.model_type === "gemma2";
  const attnCap = noCaps ? Infinity : ((c.attn_logit_softcapping as number | null) ?? Infinity);
  const finalCap = noCaps ? Infinity : ((c.final_logit_softcapping as number | null) ?? Infinity);
  const dim = c.hidden_size as number;
  const nH = c.num_attention_heads as number;
  const nKv = c.num_key_value_heads as number;
  const hd = c.head_dim as number;
  const eps = c.rms_norm_eps as number;
  const W = window ?? (c.sliding_window as number);
  const factor = (c.rope_scaling as unknown as { factor: number } | null)?.factor ?? 1;
  const norm1p = (x: Vec, name: string) => {
    const w = raw(name);
    const r = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + eps);
    return x.map((v, i) => v * r * (1 + w[i]!));
  };
  const embed = raw("model.embed_tokens.weight");
  let x = tokens.map((t) => Array.from(embed.subarray(t * dim, (t + 1) * dim), (v) => v * Math.sqrt(dim)));
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}.`;
    const local = (l + 1) % (gemma2 ? 2 : (c.sliding_window_pattern as number)) !== 0;
    const theta = local && !gemma2 ? (c.rope_local_base_freq as number) : (c.rope_theta as number);
    const f = local ? 1 : factor;
    const xs = x.map((r) => norm1p(r, `${p}input_layernorm.weight`));
    const heads = (r: Vec, n: number, normName: string, pos: number) => {
      const out: number[] = [];
      for (let h = 0; h < n; h++)
        out.push(
          ...rope(
            gemma2 ? r.slice(h * hd, (h + 1) * hd) : norm1p(r.slice(h * hd, (h + 1) * hd), normName),
            pos,
            theta,
            f,
          ),
        );
      return out;
    };
    const q = xs.map((r, t) =>
      heads(linear(r, raw(`${p}self_attn.q_proj.weight`), nH * hd), nH, `${p}self_attn.q_norm.weight`, t),
    );
    const k = xs.map((r, t) =>
      heads(linear(r, raw(`${p}self_attn.k_proj.weight`), nKv * hd), nKv, `${p}self_attn.k_norm.weight`, t),
    );
    const v = xs.map((r) => linear(r, raw(`${p}self_attn.v_proj.weight`), nKv * hd));
    const scale = 1 / Math.sqrt(c.query_pre_attn_scalar as number);
    const att = attention(q, k, v, nH, nKv, hd, local ? W : Infinity, scale, attnCap);
    x = x.map((r, t) => {
      const o = norm1p(
        linear(att[t]!, raw(`${p}self_attn.o_proj.weight`), dim),
        `${p}post_attention_layernorm.weight`,
      );
      const h1 = r.map((val, i) => val + o[i]!);
      const m = norm1p(h1, `${p}pre_feedforward_layernorm.weight`);
      const hidden = c.intermediate_size as number;
      const g = linear(m, raw(`${p}mlp.gate_proj.weight`), hidden);
      const u = linear(m, raw(`${p}mlp.up_proj.weight`), hidden);
      const d = norm1p(
        linear(
          g.map((gi, i) => geluNew(gi) * u[i]!),
          raw(`${p}mlp.down_proj.weight`),
          dim,
        ),
        `${p}post_feedforward_layernorm.weight`,
      );
      return h1.map((val, i) => val + d[i]!);
    });
  }
  return x.map((r) =>
    linear(norm1p(r, "model.norm.weight"), embed, c.vocab_size as number).map((v) =>
      finalCap === Infinity ? v : finalCap * Math.tanh(v / finalCap),
    ),
  );
}

/** GPT-2 (HF modeling_gpt2 / the 2019 release): learned positions, pre-LayerNorm, Conv1D, gelu_new. */
function gpt2Ref(raw: Raw, c: Cfg, tokens: number[]): Vec[] {
  const D = c.n_embd as number;
  const nH = c.n_head as number;
  const hd = D / nH;
  const eps = c.layer_norm_epsilon as number;
  const wte = raw("wte.weight");
  const wpe = raw("wpe.weight");
  let x = tokens.map((t, p) => Array.from({ length: D }, (_, i) => wte[t * D + i]! + wpe[p * D + i]!));
  for (let l = 0; l < (c.n_layer as number); l++) {
    const p = `h.${l}.`;
    const a = x.map((r) => layerNorm(r, raw(`${p}ln_1.weight`), raw(`${p}ln_1.bias`), eps));
    const qkv = a.map((r) => conv1d(r, raw(`${p}attn.c_attn.weight`), 3 * D, raw(`${p}attn.c_attn.bias`)));
    const att = attention(
      qkv.map((r) => r.slice(0, D)),
      qkv.map((r) => r.slice(D, 2 * D)),
      qkv.map((r) => r.slice(2 * D)),
      nH,
      nH,
      hd,
    );
    x = x.map((r, t) => {
      const o = conv1d(att[t]!, raw(`${p}attn.c_proj.weight`), D, raw(`${p}attn.c_proj.bias`));
      const h1 = r.map((val, i) => val + o[i]!);
      const m = layerNorm(h1, raw(`${p}ln_2.weight`), raw(`${p}ln_2.bias`), eps);
      const f = conv1d(m, raw(`${p}mlp.c_fc.weight`), 4 * D, raw(`${p}mlp.c_fc.bias`)).map(geluNew);
      const d = conv1d(f, raw(`${p}mlp.c_proj.weight`), D, raw(`${p}mlp.c_proj.bias`));
      return h1.map((val, i) => val + d[i]!);
    });
  }
  return x.map((r) =>
    linear(layerNorm(r, raw("ln_f.weight"), raw("ln_f.bias"), eps), wte, c.vocab_size as number),
  );
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function run(
  m: LanguageModel,
  tokens: number[],
  chunk: number,
  spec: CacheSpecInput = "f32",
): Promise<Float32Array> {
  const n = tokens.length;
  const V = m.config.vocabSize;
  const cache = await createCache(spec, m.kvShape(n), { executor: m.executor });
  const out = new Float32Array(n * V);
  const pos = Int32Array.from(tokens, (_, i) => i);
  for (let a = 0; a < n; a += chunk) {
    const b = Math.min(n, a + chunk);
    out.set(await m.forward(tokens.slice(a, b), pos.subarray(a, b), cache), a * V);
  }
  cache.dispose();
  return out;
}

let dir = "";
const SHAPES = ["tiny-mistral", "tiny-qwen3", "tiny-gpt2", "tiny-gemma3", "tiny-gemma2"] as const;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "kvlab-families-"));
  SHAPES.forEach((s, i) => {
    synthModel({ shape: s, out: join(dir, s), seed: 11 + i, dtype: "f32" });
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function reference(shape: (typeof SHAPES)[number], tokens: number[], window?: number, noCaps = false): Vec[] {
  const raw = readRaw(join(dir, shape, "model.safetensors"));
  const c = JSON.parse(readFileSync(join(dir, shape, "config.json"), "utf8")) as Cfg;
  if (shape === "tiny-gpt2") return gpt2Ref(raw, c, tokens);
  if (shape === "tiny-gemma3" || shape === "tiny-gemma2") return gemmaRef(raw, c, tokens, window, noCaps);
  return llamaFamilyRef(raw, c, tokens, window ?? (c.sliding_window as number | undefined) ?? Infinity);
}

for (const shape of SHAPES) {
  describe(`family forward on synthetic ${shape}`, () => {
    let m: LanguageModel;
    let tokens: number[];
    before(async () => {
      m = await loadModel(join(dir, shape), { executor: "ref" });
      tokens = m.tokenizer.encode("Once upon a time, a tiny model spoke.", { addBos: true }).slice(0, 19);
      assert.equal(tokens.length, 19);
    });
    after(() => m.dispose());

    test("matches the float64 forward written from the architecture", async (t) => {
      const want = reference(shape, tokens).flat();
      const scale = Math.max(...want.map(Math.abs));
      for (const chunk of [tokens.length, 1, 5]) {
        const got = await run(m, tokens, chunk);
        const d = maxAbsDiff(got, want);
        assert.ok(d <= 1e-4 * scale + 1e-6, `chunk ${chunk}: max diff ${d} (scale ${scale})`);
        t.diagnostic(
          `chunk ${chunk}: max |ref - float64| ${d.toExponential(2)} (max |logit| ${scale.toFixed(2)})`,
        );
      }
    });

    test("wasm executor matches ref", async (t) => {
      const wasm = EXECUTORS.wasm;
      const probe = wasm ? await wasm.probe() : { available: false, detail: "not registered" };
      if (!probe.available) {
        t.skip(`wasm executor unavailable: ${probe.detail}`);
        return;
      }
      const mw = await loadModel(join(dir, shape), { executor: "wasm" });
      try {
        const want = await run(m, tokens, tokens.length);
        const scale = Math.max(...Array.from(want, Math.abs));
        for (const c of [tokens.length, 1]) {
          const d = maxAbsDiff(await run(mw, tokens, c), want);
          assert.ok(d <= 1e-4 * scale, `chunk ${c}: max diff ${d}`);
        }
      } finally {
        mw.dispose();
      }
    });
  });
}

describe("Mistral's sliding window is honoured whatever cache is asked for", () => {
  let m: LanguageModel;
  let tokens: number[];
  before(async () => {
    m = await loadModel(join(dir, "tiny-mistral"), { executor: "ref" });
    tokens = m.tokenizer.encode("Once upon a time, a tiny model spoke.", { addBos: true }).slice(0, 19);
  });
  after(() => m.dispose());

  test("config and cache shape carry the window", () => {
    assert.equal(m.config.slidingWindow, 6);
    assert.deepEqual((m.kvShape(32) as { window?: number[] }).window, [6, 6]);
  });

  test("the window changes the logits (the reference can tell)", () => {
    const windowed = reference("tiny-mistral", tokens).flat();
    const full = reference("tiny-mistral", tokens, Infinity).flat();
    assert.ok(maxAbsDiff(windowed, full) > 1e-3, `window makes a difference: ${maxAbsDiff(windowed, full)}`);
  });

  for (const spec of [
    "f32",
    { codec: "f32", policy: { type: "h2o", budget: 10, recent: 2 } },
    { codec: "f32", policy: { type: "window", budget: 12 } },
    { codec: "f32", policy: { type: "sinks", sinks: 1, budget: 30 } },
    { codec: "f32", policy: { type: "expected-attention", budget: 10 } },
    { codec: "f32", policy: { type: "adakv", budget: 10 } },
  ] as CacheSpecInput[]) {
    test(`${JSON.stringify(spec)}: budgets above the window still attend within it`, async () => {
      const want = reference("tiny-mistral", tokens).flat();
      const scale = Math.max(...want.map(Math.abs));
      for (const chunk of [tokens.length, 4]) {
        const d = maxAbsDiff(await run(m, tokens, chunk, spec), want);
        assert.ok(d <= 1e-4 * scale + 1e-6, `chunk ${chunk}: max diff ${d}`);
      }
    });
  }

  test("the cache holds no more than the window", async () => {
    const cache = await createCache("f32", m.kvShape(19), { executor: m.executor });
    const pos = Int32Array.from(tokens, (_, i) => i);
    await m.forward(tokens, pos, cache);
    // Per layer and KV head: the 5 tokens the next query (position 19) may still see.
    assert.equal(cache.memory().tokenSlots, 2 * 2 * 5);
    cache.dispose();
  });

  test("positions that skip ahead past the window are refused", async () => {
    const cache = await createCache("f32", m.kvShape(40), { executor: m.executor });
    await m.forward(tokens.slice(0, 4), Int32Array.from([0, 1, 2, 3]), cache);
    await assert.rejects(m.forward([5], Int32Array.from([20]), cache), /sliding window of 6/);
    cache.dispose();
  });
});

describe("kvlab ppl runs every family on every executor", () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
  const ppl = (shape: string, executor: string) => {
    const text = join(dir, "text.txt");
    writeFileSync(text, "Once upon a time there was a tiny model that liked to talk. ".repeat(30));
    const r = spawnSync(
      process.execPath,
      [
        join(root, "bin/kvlab.js"),
        "ppl",
        ...["--model", join(dir, shape), "--text", text, "--ctx", "32", "--chunks", "2"],
        ...["--executor", executor, "--json"],
      ],
      { encoding: "utf8", cwd: root },
    );
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
      ppl: number;
      family: string;
      slidingWindow?: number;
      attnSoftcap?: number;
      fallbacks: Record<string, number>;
    };
  };
  for (const shape of SHAPES) {
    test(shape, async (t) => {
      const want = ppl(shape, "ref");
      assert.ok(Number.isFinite(want.ppl) && want.ppl > 1, `ppl ${want.ppl}`);
      assert.equal(
        want.family,
        {
          "tiny-mistral": "llama",
          "tiny-qwen3": "qwen3",
          "tiny-gpt2": "gpt2",
          "tiny-gemma3": "gemma3",
          "tiny-gemma2": "gemma2",
        }[shape],
      );
      assert.equal(
        want.slidingWindow,
        {
          "tiny-mistral": 6,
          "tiny-qwen3": undefined,
          "tiny-gpt2": undefined,
          "tiny-gemma3": 5,
          "tiny-gemma2": 5,
        }[shape],
      );
      assert.equal(want.attnSoftcap, shape === "tiny-gemma2" ? 1.5 : undefined);
      for (const ex of ["wasm", "webgpu"]) {
        const probe = await EXECUTORS[ex as "wasm" | "webgpu"]?.probe();
        if (!probe?.available) {
          t.diagnostic(`${ex} skipped: ${probe?.detail ?? "not registered"}`);
          continue;
        }
        const got = ppl(shape, ex);
        assert.ok(
          Math.abs(got.ppl - want.ppl) <= 1e-5 * want.ppl,
          `${ex}: ppl ${got.ppl} vs ref ${want.ppl}`,
        );
      }
    });
  }
});

describe("Gemma 3's local/global layers", () => {
  test("local layers windowed, the global one not; the reference can tell both apart", async () => {
    const m = await loadModel(join(dir, "tiny-gemma3"), { executor: "ref" });
    try {
      assert.deepEqual(m.config.windowLayers, [true, true, false]);
      assert.deepEqual((m.kvShape(32) as { window?: number[] }).window, [5, 5, 0]);
      // Per-layer RoPE bases: no single set of frequencies for caches that re-rotate keys.
      assert.equal(m.kvShape(32).rope, undefined);
      const tokens = m.tokenizer
        .encode("Once upon a time, a tiny model spoke.", { addBos: true })
        .slice(0, 19);
      const windowed = reference("tiny-gemma3", tokens).flat();
      const full = reference("tiny-gemma3", tokens, Infinity).flat();
      assert.ok(
        maxAbsDiff(windowed, full) > 1e-3,
        `window makes a difference: ${maxAbsDiff(windowed, full)}`,
      );
      await assert.rejects(
        (async () => {
          const cache = await createCache("kivi2-prerope", m.kvShape(32), { executor: m.executor });
          await m.forward(
            tokens,
            Int32Array.from(tokens, (_, i) => i),
            cache,
          );
        })(),
        /RoPE/,
      );
    } finally {
      m.dispose();
    }
  });
});

describe("webgpu: the GPU forward of every family (GPU kernels) against the CPU forward", () => {
  for (const shape of SHAPES) {
    test(shape, async (t) => {
      const probe = await EXECUTORS.webgpu?.probe();
      if (!probe?.available) {
        t.skip(`webgpu unavailable: ${probe?.detail ?? "not registered"}`);
        return;
      }
      const cpu = await loadModel(join(dir, shape), { executor: "ref" });
      const gpu = await loadModel(join(dir, shape), { executor: "webgpu" });
      try {
        const tokens = cpu.tokenizer
          .encode("Once upon a time, a tiny model spoke.", { addBos: true })
          .slice(0, 19);
        // Gemma 2's soft-capped attention too runs in the GPU cache (its kernels apply the cap).
        for (const spec of ["f32", { codec: "int8", policy: { type: "h2o", budget: 10, recent: 2 } }]) {
          const cc = await createCache(spec, cpu.kvShape(32), { executor: cpu.executor });
          const gc = await createCache(spec, gpu.kvShape(32), { executor: gpu.executor });
          assert.ok(gc instanceof GpuKVCache, "the GPU cache for every family");
          let p = 0;
          for (const n of [9, 1, 5, 4]) {
            const ids = tokens.slice(p, p + n);
            const pos = Int32Array.from(ids, (_, i) => p + i);
            const want = (await cpu.forward(ids, pos, cc)).slice();
            const got = await gpu.forward(ids, pos, gc);
            const d = maxAbsDiff(got, want);
            assert.ok(d <= 1e-3 * (1 + Math.max(...Array.from(want, Math.abs))), `at ${p}: max diff ${d}`);
            t.diagnostic(`${JSON.stringify(spec)} at ${p}: max |gpu - cpu| ${d.toExponential(2)}`);
            p += n;
          }
          assert.deepEqual(gc.memory(), cc.memory());
          cc.dispose();
          gc.dispose();
        }
      } finally {
        cpu.dispose();
        gpu.dispose();
      }
    });
  }
});

test("synthetic GPT-2 tokenizes byte-level BPE through @huggingface/tokenizers, as GPT-2 does", async () => {
  const m = await loadModel(join(dir, "tiny-gpt2"), { executor: "ref" });
  try {
    const text = "Once upon a time, thé tiny 模型 spoke 🙂.\n  twice";
    const ids = m.tokenizer.encode(text);
    assert.equal(m.tokenizer.decode(ids), text, "byte-level round trip of any UTF-8");
    // GPT-2 adds no BOS; <|endoftext|> is the last id and serves as BOS and EOS.
    assert.equal(m.tokenizer.addsBos, false);
    assert.equal(m.tokenizer.bosId, m.config.vocabSize - 1);
    assert.ok(ids.every((id) => id >= 0 && id < m.config.vocabSize - 1));
    // Bytes outside printable ASCII are GPT-2's remapped symbols (byte 0x0a is "Ċ", space "Ġ").
    const nl = m.tokenizer.encode("\n");
    assert.equal(nl.length, 1);
    assert.equal((m.tokenizer as unknown as { tokenToId(t: string): number }).tokenToId("Ċ"), nl[0]);
  } finally {
    m.dispose();
  }
});

describe("Gemma 2's soft-capping", () => {
  test("ref attend soft-caps scores before the softmax (hand-made case)", async () => {
    const { createRefExecutor } = await import("../../src/kernels/ref.ts");
    const { f32 } = await import("../../src/quant/f32.ts");
    const rows = (x: number[]) => {
      const a = Float32Array.from(x);
      return { payload: new Uint8Array(a.buffer), scales: new Uint16Array(0), zeros: new Uint16Array(0) };
    };
    // One query (1, 0), keys (4, 0) and (0, 0): scores 4 and 0; values 1 and 0 (headDim 2).
    const args = {
      kCodec: f32,
      vCodec: f32,
      headDim: 2,
      q: Float32Array.from([1, 0]),
      qPos: Int32Array.from([1]),
      nRows: 1,
      k: rows([4, 0, 0, 0]),
      v: rows([1, 0, 0, 0]),
      slotPos: Int32Array.from([0, 1]),
      nSlots: 2,
      scale: 1,
      out: new Float32Array(2),
      probs: new Float32Array(2),
    };
    const ref = createRefExecutor();
    ref.attend(args);
    // Uncapped: p0 = e^4 / (e^4 + 1).
    assert.ok(Math.abs(args.probs[0]! - Math.exp(4) / (Math.exp(4) + 1)) < 1e-6);
    ref.attend({ ...args, softcap: 2 });
    // Capped at 2: score 4 -> 2 tanh(2) = 1.92806, so p0 = e^1.92806 / (e^1.92806 + 1) = 0.873034.
    const s = 2 * Math.tanh(2);
    assert.ok(Math.abs(args.probs[0]! - Math.exp(s) / (Math.exp(s) + 1)) < 1e-6, `p0 ${args.probs[0]}`);
    assert.ok(Math.abs(args.probs[0]! - 0.873034) < 1e-5);
    assert.ok(Math.abs(args.out[0]! - args.probs[0]!) < 1e-6);
  });

  test("config, cache shape and the reference: both caps bind on the tiny model", async () => {
    const m = await loadModel(join(dir, "tiny-gemma2"), { executor: "ref" });
    try {
      assert.equal(m.config.arch, "gemma2");
      assert.equal(m.config.attnSoftcap, 1.5);
      assert.equal(m.config.finalSoftcap, 4);
      assert.equal(m.config.qkNorm, undefined);
      assert.deepEqual(m.config.windowLayers, [true, false, true, false]);
      const shape = m.kvShape(32) as { window?: number[]; softcap?: number };
      assert.deepEqual(shape.window, [5, 0, 5, 0]);
      assert.equal(shape.softcap, 1.5);
      const tokens = m.tokenizer
        .encode("Once upon a time, a tiny model spoke.", { addBos: true })
        .slice(0, 19);
      const capped = reference("tiny-gemma2", tokens).flat();
      const uncapped = reference("tiny-gemma2", tokens, undefined, true).flat();
      assert.ok(
        maxAbsDiff(capped, uncapped) > 1e-2,
        `caps make a difference: ${maxAbsDiff(capped, uncapped)}`,
      );
    } finally {
      m.dispose();
    }
  });

  test("every executor's cache applies the cap (wasm: through ref, counted); no cache drops it silently", async () => {
    const m = await loadModel(join(dir, "tiny-gemma2"), { executor: "wasm" }).catch(() => null);
    const mr = await loadModel(join(dir, "tiny-gemma2"), { executor: "ref" });
    try {
      const tokens = mr.tokenizer
        .encode("Once upon a time, a tiny model spoke.", { addBos: true })
        .slice(0, 12);
      const pos = Int32Array.from(tokens, (_, i) => i);
      // A cache whose shape lacks the cap (built for another shape) is refused, not used uncapped.
      const { softcap: _, ...bare } = mr.kvShape(32) as ReturnType<typeof mr.kvShape> & { softcap?: number };
      const wrong = await createCache("f32", bare, { executor: mr.executor });
      await assert.rejects(mr.forward(tokens, pos, wrong), /soft-caps attention scores at 1.5/);
      wrong.dispose();
      await assert.rejects(
        createCache("f32", mr.kvShape(32), { executor: mr.executor, attentionMass: true }),
        /attention-mass diagnostic/,
      );
      if (m) {
        const c = await createCache("int8", m.kvShape(32), { executor: m.executor });
        await m.forward(tokens, pos, c);
        assert.ok(
          (m.executor.fallbacks.get("attend (soft-capping)") ?? 0) > 0,
          "wasm counts its ref attends",
        );
        c.dispose();
      }
    } finally {
      mr.dispose();
      m?.dispose();
    }
  });

  test("the protocols' scratch cache (KVzip / DuoAttention passes) soft-caps and windows too: logits = the f32 cache's", async () => {
    const { ScratchCache } = await import("../../src/eval/scratch-cache.ts");
    const m = await loadModel(join(dir, "tiny-gemma2"), { executor: "ref" });
    try {
      // 12 tokens: past the window of 5 (the scratch cache keeps every key and masks by the window).
      const tokens = m.tokenizer
        .encode("Once upon a time, a tiny model spoke.", { addBos: true })
        .slice(0, 12);
      const want = await run(m, tokens, tokens.length);
      const scratch = new ScratchCache(m.kvShape(tokens.length));
      const got = await m.forward(
        tokens,
        Int32Array.from(tokens, (_, i) => i),
        scratch,
      );
      const d = maxAbsDiff(got, want);
      assert.ok(d <= 1e-4, `max diff ${d}`);
    } finally {
      m.dispose();
    }
  });

  test("Gemma 3 configs with attention soft-capping are refused (the field is Gemma 2's)", async () => {
    const { parseHfConfig } = await import("../../src/model/config.ts");
    const c = JSON.parse(readFileSync(join(dir, "tiny-gemma3", "config.json"), "utf8"));
    assert.throws(() => parseHfConfig({ ...c, attn_logit_softcapping: 50 }, "config.json"), /Gemma 2/);
    const g2 = JSON.parse(readFileSync(join(dir, "tiny-gemma2", "config.json"), "utf8"));
    assert.throws(
      () => parseHfConfig({ ...g2, attn_logit_softcapping: -1 }, "config.json"),
      /attn_logit_softcapping.*> 0/,
    );
  });
});
