/**
 * The forward pass on tiny random-weight models (written by synthModel into a temp dir, so no
 * shared material is needed): against an independent float64 transformer written here from
 * the HF definitions (no cache, no executor), chunk-size invariance, and wasm against ref.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { EXECUTORS } from "../../src/kernels/registry.ts";
import { type Matrix, matrixF32 } from "../../src/kernels/weights.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import type { LlamaModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "kvlab-forward-"));
  synthModel({ shape: "tiny", out: join(dir, "tiny"), seed: 7, dtype: "f32" });
  synthModel({ shape: "tiny-qwen2", out: join(dir, "tiny-qwen2"), seed: 8, dtype: "f16" });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** HF's default + llama3 inverse frequencies, written out again independently of src/model/rope.ts. */
function invFreq(c: ModelConfig): number[] {
  const out: number[] = [];
  for (let i = 0; i < c.headDim / 2; i++) {
    let f = c.ropeTheta ** (-(2 * i) / c.headDim);
    const s = c.ropeScaling;
    if (s?.type === "llama3") {
      const wl = (2 * Math.PI) / f;
      const lo = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
      const hi = s.originalMaxPositionEmbeddings / s.highFreqFactor;
      if (wl > lo) f /= s.factor;
      else if (wl >= hi) {
        const sm =
          (s.originalMaxPositionEmbeddings / wl - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        f = (1 - sm) * (f / s.factor) + sm * f;
      }
    }
    out.push(f);
  }
  return out;
}

/** Full-sequence causal forward in float64, straight from the HF Llama/Qwen2 modeling code. */
function naiveForward(m: LlamaModel, tokens: number[]): number[][] {
  const c = m.config;
  const W = m.weights;
  const n = tokens.length;
  const { dim, nHeads, nKvHeads, headDim: hd, hiddenDim } = c;
  const lin = (x: number[], wm: Matrix, dOut: number, b?: Float32Array) => {
    const w = matrixF32(wm); // 16-bit weights as loaded, widened exactly (half.ts)
    return Array.from({ length: dOut }, (_, o) => {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < x.length; i++) s += x[i]! * w[o * x.length + i]!;
      return s;
    });
  };
  const norm = (x: number[], w: Float32Array) => {
    const r = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + c.rmsNormEps);
    return x.map((v, i) => v * r * w[i]!);
  };
  const inv = invFreq(c);
  const rope = (v: number[], pos: number) => {
    const out = v.slice();
    const h = hd / 2;
    for (let i = 0; i < h; i++) {
      const a = pos * inv[i]!;
      out[i] = v[i]! * Math.cos(a) - v[i + h]! * Math.sin(a);
      out[i + h] = v[i + h]! * Math.cos(a) + v[i]! * Math.sin(a);
    }
    return out;
  };
  let x = tokens.map((t) => Array.from(matrixF32(W.embed).subarray(t * dim, (t + 1) * dim)));
  for (const L of W.layers) {
    const xs = x.map((r) => norm(r, L.attnNorm));
    const q = xs.map((r) => lin(r, L.wq, nHeads * hd, L.bq));
    const k = xs.map((r) => lin(r, L.wk, nKvHeads * hd, L.bk));
    const v = xs.map((r) => lin(r, L.wv, nKvHeads * hd, L.bv));
    const att = x.map(() => new Array<number>(nHeads * hd).fill(0));
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKvHeads));
      for (let t = 0; t < n; t++) {
        const qt = rope(q[t]!.slice(h * hd, (h + 1) * hd), t);
        const sc = [];
        for (let s = 0; s <= t; s++) {
          const ks = rope(k[s]!.slice(kvh * hd, (kvh + 1) * hd), s);
          sc.push(qt.reduce((a, qi, i) => a + qi * ks[i]!, 0) / Math.sqrt(hd));
        }
        const mx = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++)
          for (let i = 0; i < hd; i++) att[t]![h * hd + i]! += (e[s]! / z) * v[s]![kvh * hd + i]!;
      }
    }
    x = x.map((r, t) => {
      const o = lin(att[t]!, L.wo, dim);
      const h1 = r.map((val, i) => val + o[i]!);
      const hn = norm(h1, L.ffnNorm);
      const g = lin(hn, L.wGate!, hiddenDim);
      const u = lin(hn, L.wUp, hiddenDim);
      const a = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]!);
      const d = lin(a, L.wDown, dim);
      return h1.map((val, i) => val + d[i]!);
    });
  }
  return x.map((r) => lin(norm(r, W.finalNorm), W.lmHead, c.vocabSize));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function run(m: LlamaModel, tokens: number[], chunk: number): Promise<Float32Array> {
  const n = tokens.length;
  const V = m.config.vocabSize;
  const cache = await createCache("f32", m.kvShape(n), { executor: m.executor });
  const out = new Float32Array(n * V);
  const pos = Int32Array.from(tokens, (_, i) => i);
  for (let a = 0; a < n; a += chunk) {
    const b = Math.min(n, a + chunk);
    out.set(await m.forward(tokens.slice(a, b), pos.subarray(a, b), cache), a * V);
  }
  cache.dispose();
  return out;
}

for (const shape of ["tiny", "tiny-qwen2"]) {
  describe(`forward on synthetic ${shape}`, () => {
    let m: LlamaModel;
    let tokens: number[];
    before(async () => {
      m = (await loadModel(join(dir, shape), { executor: "ref" })) as LlamaModel;
      tokens = m.tokenizer.encode("Once upon a time, a tiny model spoke.", { addBos: true }).slice(0, 19);
    });
    after(() => m.dispose());

    test("matches an independent float64 transformer", async () => {
      const want = naiveForward(m, tokens).flat();
      const got = await run(m, tokens, tokens.length);
      const scale = Math.max(...want.map(Math.abs));
      assert.ok(
        maxAbsDiff(got, want) <= 1e-4 * scale + 1e-6,
        `max diff ${maxAbsDiff(got, want)} (scale ${scale})`,
      );
    });

    test("logits do not depend on the chunk size (1, 5, all)", async () => {
      const all = await run(m, tokens, tokens.length);
      for (const c of [1, 5]) {
        const got = await run(m, tokens, c);
        assert.ok(maxAbsDiff(got, all) < 1e-5, `chunk ${c}: max diff ${maxAbsDiff(got, all)}`);
      }
    });

    test("wasm executor matches ref", async (t) => {
      const wasm = EXECUTORS.wasm;
      const probe = wasm ? await wasm.probe() : { available: false, detail: "not registered" };
      if (!probe.available) {
        t.skip(`wasm executor unavailable: ${probe.detail}`);
        return;
      }
      const mw = (await loadModel(join(dir, shape), { executor: "wasm" })) as LlamaModel;
      try {
        const want = await run(m, tokens, tokens.length);
        for (const c of [tokens.length, 1]) {
          const got = await run(mw, tokens, c);
          const scale = Math.max(...Array.from(want, Math.abs));
          assert.ok(maxAbsDiff(got, want) <= 1e-4 * scale, `chunk ${c}: max diff ${maxAbsDiff(got, want)}`);
        }
      } finally {
        mw.dispose();
      }
    });
  });
}
