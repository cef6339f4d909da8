/**
 * kvlab probe (src/eval/probe.ts): the statistics, the exactness of its sliding windows against
 * a brute-force banded attention on a tiny random model, the copy test and the sink probe on a
 * hand-built model whose answers are known (an induction head and a sink written as weights
 * would be), and the gates on the shipped model models/sotu-llama (few segments, structure and
 * consistency only: the model is being retrained, so its verdicts may change).
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createCache } from "../../src/cache/create.ts";
import type { CacheMemory, CacheStats, KVCache, KVShape, ResolvedCacheSpec } from "../../src/cache/types.ts";
import { readText } from "../../src/commands/ppl.ts";
import { parseWindows } from "../../src/commands/probe.ts";
import { evaluatePerplexity, nllOf } from "../../src/eval/perplexity.ts";
import {
  AttentionRecorder,
  contextCurve,
  contextWarning,
  copyTest,
  pairedDifference,
  probeModel,
  scoredNlls,
  sinkMass,
  tQuantile975,
} from "../../src/eval/probe.ts";
import type { Executor } from "../../src/kernels/executor.ts";
import { getExecutor } from "../../src/kernels/registry.ts";
import type { Matrix } from "../../src/kernels/weights.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import type { LanguageModel, LlamaModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";
import type { TextTokenizer } from "../../src/model/tokenizer.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** xorshift32 in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe("statistics", () => {
  test("t quantiles match the table", () => {
    const table: [number, number][] = [
      [1, 12.706],
      [2, 4.303],
      [3, 3.182],
      [4, 2.776],
      [5, 2.571],
      [6, 2.447],
      [8, 2.306],
      [10, 2.228],
      [30, 2.042],
      [100, 1.984],
    ];
    for (const [df, t] of table)
      assert.ok(Math.abs(tQuantile975(df) - t) < 1e-3, `df ${df}: ${tQuantile975(df)}`);
  });

  test("batch means: hand-computed blocks, partial block joins the last", () => {
    // blocks of 2: [1, 3] [2, 2] [0, 4, 9] (the 9 joins the last block)
    const d = [1, 3, 2, 2, 0, 4, 9];
    const r = pairedDifference(d, 2);
    const m = 21 / 7;
    const sums = [4 - 2 * m, 4 - 2 * m, 13 - 3 * m];
    const se = Math.sqrt((sums.reduce((a, s) => a + s * s, 0) * 3) / 2) / 7;
    assert.equal(r.blocks, 3);
    assert.equal(r.n, 7);
    assert.ok(Math.abs(r.mean - m) < 1e-12);
    assert.ok(Math.abs(r.se - se) < 1e-12);
    assert.ok(Math.abs(r.hi - (m + 4.3027 * se)) < 1e-9);
    assert.ok(Math.abs(r.z - m / se) < 1e-9);
    // Equal blocks: se is the usual standard error of the block means.
    const e = pairedDifference([1, 1, 3, 3, 5, 5, 7, 7], 2);
    const bm = [1, 3, 5, 7];
    const sd = Math.sqrt(bm.reduce((a, x) => a + (x - 4) ** 2, 0) / 3);
    assert.ok(Math.abs(e.se - sd / 2) < 1e-12);
    // Autocorrelated differences: blocks make the interval wider than iid would.
    const rand = rng(3);
    const signs = Array.from({ length: 32 }, () => (rand() < 0.5 ? -1 : 1));
    const ac = Array.from({ length: 256 }, (_, i) => signs[Math.floor(i / 8)]!); // runs of 8
    const iid = pairedDifference(ac, 1);
    const blk = pairedDifference(ac, 32);
    assert.ok(blk.se > 2 * iid.se, `${blk.se} vs ${iid.se}`);
    // Zero differences: a zero interval and z 0.
    const zero = pairedDifference(new Float64Array(100), 32);
    assert.deepEqual([zero.mean, zero.lo, zero.hi, zero.z], [0, 0, 0, 0]);
    // Fewer than two blocks: no interval.
    assert.ok(Number.isNaN(pairedDifference([1, 2, 3], 32).se));
  });

  test("contextWarning fires only past the trained positions", () => {
    assert.equal(contextWarning({ maxSeqLen: 512 }, 512), undefined);
    assert.match(contextWarning({ maxSeqLen: 512 }, 513)!, /513.*trained positions \(512/);
  });

  test("parseWindows", () => {
    assert.deepEqual(parseWindows("16, 32,64"), [16, 32, 64]);
    assert.throws(() => parseWindows("16,x"), /--windows/);
    assert.throws(() => parseWindows("1"), /--windows/);
    assert.throws(() => parseWindows("16,,32"), /--windows/);
  });
});

/**
 * Brute force: a KVCache that keeps every token in f32 and lets a query at position p attend
 * to keys at positions p-W+1..p only (banded causal attention, float64 softmax), whatever the
 * chunking. Independent of the retention policies and the kernels.
 */
class BandCache implements KVCache {
  readonly spec = { name: "band" } as unknown as ResolvedCacheSpec;
  private k: number[][][] = []; // [layer][kvHead][token * headDim + c]
  private v: number[][][] = [];
  private pos: number[][] = [];
  constructor(
    readonly shape: KVShape,
    readonly window: number,
  ) {
    this.reset();
  }
  append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): void {
    const { nKvHeads, headDim: d } = this.shape;
    const n = positions.length;
    for (let h = 0; h < nKvHeads; h++)
      for (let i = 0; i < n; i++)
        for (let c = 0; c < d; c++) {
          this.k[layer]![h]!.push(k[(h * n + i) * d + c]!);
          this.v[layer]![h]!.push(v[(h * n + i) * d + c]!);
        }
    this.pos[layer]!.push(...positions);
  }
  attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): void {
    const { nHeads, nKvHeads, headDim: d } = this.shape;
    const nQ = qPositions.length;
    const kp = this.pos[layer]!;
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKvHeads));
      const K = this.k[layer]![kvh]!;
      const V = this.v[layer]![kvh]!;
      for (let i = 0; i < nQ; i++) {
        const p = qPositions[i]!;
        const keys = kp.map((x, j) => [x, j] as const).filter(([x]) => x <= p && x > p - this.window);
        const s = keys.map(([, j]) => {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[(h * nQ + i) * d + c]! * K[j * d + c]!;
          return dot / Math.sqrt(d);
        });
        const mx = Math.max(...s);
        const e = s.map((x) => Math.exp(x - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let c = 0; c < d; c++) {
          let o = 0;
          keys.forEach(([, j], t) => {
            o += (e[t]! / z) * V[j * d + c]!;
          });
          out[(h * nQ + i) * d + c] = o;
        }
      }
    }
  }
  memory(): CacheMemory {
    return {
      payload: 0,
      scales: 0,
      zeros: 0,
      residual: 0,
      indices: 0,
      policyState: 0,
      total: 0,
      elements: 0,
      bitsPerElement: 0,
      tokenSlots: 0,
    };
  }
  reset(): void {
    const { nLayers, nKvHeads } = this.shape;
    this.k = Array.from({ length: nLayers }, () => Array.from({ length: nKvHeads }, () => []));
    this.v = Array.from({ length: nLayers }, () => Array.from({ length: nKvHeads }, () => []));
    this.pos = Array.from({ length: nLayers }, () => []);
  }
  dispose(): void {}
  stats(): CacheStats {
    return { appended: 0, evicted: 0, nonFinite: 0, saturated: 0, peakBytes: 0, executor: "ref" };
  }
}

/** Per-token NLLs of the perplexity protocol with the band cache, one forward per segment. */
async function bandNlls(m: LanguageModel, tokens: number[], nCtx: number, segments: number, window: number) {
  const out: number[] = [];
  await evaluatePerplexity(
    m,
    tokens,
    { kind: "llamacpp", nCtx, nChunks: segments },
    new BandCache(m.kvShape(nCtx), window),
    { onScored: (logits, target) => out.push(nllOf(logits, target)) },
  );
  return out;
}

describe("exact sliding windows on a tiny random model", () => {
  let dir = "";
  let m: LlamaModel;
  let tokens: number[];
  const nCtx = 48;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "kvlab-probe-"));
    synthModel({ shape: "tiny", out: join(dir, "tiny"), seed: 11, dtype: "f32" });
    m = (await loadModel(join(dir, "tiny"), { executor: "ref" })) as LlamaModel;
    // Random weights at HF's init barely attend or predict: sharpen attention and logits so
    // that one key more or less in a window changes the NLLs far beyond rounding.
    // the model was written f32, so its matrices are Float32Arrays
    const scale = (m: Matrix, s: number) => {
      const a = m as Float32Array;
      for (let i = 0; i < a.length; i++) a[i]! *= s;
    };
    for (const L of m.weights.layers) {
      scale(L.wq, 12);
      scale(L.wk, 12);
      scale(L.wo, 20);
      scale(L.wv, 3);
    }
    scale(m.weights.lmHead, 60);
    const r = rng(5);
    tokens = [m.tokenizer.bosId!, ...Array.from({ length: 3 * nCtx }, () => 3 + Math.floor(r() * 300))];
  });
  after(() => {
    m?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test("window W (policy window, budget W-1, token by token) equals banded attention of width W", async () => {
    for (const W of [2, 5, 16]) {
      const got = await scoredNlls(m, tokens, nCtx, 2, W);
      const want = await bandNlls(m, tokens, nCtx, 2, W);
      const d = maxAbsDiff(got, want);
      assert.ok(d < 1e-4, `window ${W}: max |dNLL| ${d}`);
      // Power: a band one wider or narrower is far away, so an off-by-one cannot pass.
      for (const W2 of [W - 1, W + 1].filter((x) => x >= 1)) {
        const other = await bandNlls(m, tokens, nCtx, 2, W2);
        assert.ok(maxAbsDiff(got, other) > 1e-2, `window ${W} vs band ${W2}: ${maxAbsDiff(got, other)}`);
      }
    }
  });

  test("a window as long as the context is the full cache, bit for bit", async () => {
    const full = await scoredNlls(m, tokens, nCtx, 2);
    assert.deepEqual(await scoredNlls(m, tokens, nCtx, 2, nCtx), full);
    assert.deepEqual(await scoredNlls(m, tokens, nCtx, 2, 1000), full);
    // and the full cache is the band of infinite width
    assert.ok(maxAbsDiff(full, await bandNlls(m, tokens, nCtx, 2, 1e9)) < 1e-4);
  });

  test("context curve: same tokens in every run, a context-long window has dNLL exactly 0", async () => {
    const c = await contextCurve(m, tokens, { nCtx, segments: 3, windows: [nCtx, 8, 4], block: 8 });
    assert.deepEqual(
      c.points.map((p) => p.window),
      [4, 8, nCtx, null],
    );
    assert.equal(c.scoredTokens, 3 * (nCtx - 1 - nCtx / 2));
    const same = c.points[2]!;
    assert.deepEqual([same.delta!.mean, same.delta!.lo, same.delta!.hi], [0, 0, 0]);
    assert.equal(same.ppl, c.points[3]!.ppl);
    const w4 = c.points[0]!;
    assert.equal(w4.delta!.n, c.scoredTokens);
    assert.ok(Math.abs(w4.nll - c.points[3]!.nll - w4.delta!.mean) < 1e-9);
    assert.ok(w4.delta!.lo <= w4.delta!.mean && w4.delta!.mean <= w4.delta!.hi);
    assert.notEqual(w4.delta!.mean, 0);
  });

  test("sink probe: recomputed attention matches the cache's output; random model has no sink", async () => {
    const s = await sinkMass(m, tokens, nCtx, { segments: 2, skip: 4, queries: 16 });
    assert.ok(s.check.maxAbsOutDiff < 1e-4 * Math.max(1, s.check.maxAbsOut), JSON.stringify(s.check));
    assert.equal(s.mass.length, 2);
    assert.equal(s.mass[0]!.length, 4);
    for (const row of s.mass) for (const x of row) assert.ok(x >= 0 && x <= 1);
    assert.equal(s.queriesPerSegment, 15);
    // 1/(p+1) over the sampled positions 4, 7, ..., 46
    let u = 0;
    for (let p = 4; p < nCtx; p += 3) u += 1 / (p + 1);
    assert.ok(Math.abs(s.uniformMass - u / 15) < 1e-12);
    assert.equal(s.sink, s.maxByLayer[1]! > 0.3);
  });

  test("the recorder passes the real cache's output through unchanged", async () => {
    const shape = m.kvShape(nCtx);
    const plain = await createCache("f32", shape, { executor: m.executor });
    const rec = new AttentionRecorder(await createCache("f32", shape, { executor: m.executor }), 1, 1);
    const ids = tokens.slice(0, nCtx);
    const pos = Int32Array.from(ids, (_, i) => i);
    const a = Float32Array.from(await m.forward(ids, pos, plain));
    const b = Float32Array.from(await m.forward(ids, pos, rec));
    assert.deepEqual(b, a);
    plain.dispose();
    rec.dispose();
  });
});

/**
 * A hand-built three-layer model, run through the real KV cache, whose behaviour is known.
 * Layer 1 is an induction head when `induction` (key = one-hot of the previous token, query =
 * one-hot of the current token, value = one-hot of the current token; the logits read this
 * layer), so it copies a repeated passage; without it its keys are 0 and attention is uniform.
 * Layer `sinkLayer` (0 or 2, if any) attends from every query to the BOS key; other layers
 * have zero keys (uniform attention). Nothing flows between layers: each reads the tokens.
 */
class ToyModel implements LanguageModel {
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  readonly source = "toy";
  private last = -1;
  constructor(
    readonly executor: Executor,
    readonly vocab: number,
    readonly opts: { induction: boolean; sinkLayer: number | null },
  ) {
    this.config = {
      arch: "llama",
      dim: vocab,
      hiddenDim: vocab,
      nLayers: 3,
      nHeads: 2,
      nKvHeads: 1,
      headDim: vocab,
      vocabSize: vocab,
      maxSeqLen: 4096,
      ropeTheta: 10000,
      rmsNormEps: 1e-5,
      tiedEmbeddings: true,
      qkvBias: false,
      bosId: 1,
      eosId: 2,
    };
    this.tokenizer = {
      vocabSize: vocab,
      bosId: 1,
      eosId: 2,
      addsBos: true,
      encode: () => [],
      decode: () => "",
    };
  }
  kvShape(maxTokens: number): KVShape {
    return { nLayers: 3, nHeads: 2, nKvHeads: 1, headDim: this.vocab, maxTokens };
  }
  async forward(
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts: { firstLogit?: number } = {},
  ): Promise<Float32Array> {
    const n = tokens.length;
    const V = this.vocab;
    const a = 8; // score of a match: a^2 / sqrt(V) = 8
    if (positions[0] === 0) this.last = -1;
    const out = new Float32Array(2 * n * V);
    let logits = new Float32Array(0);
    for (let l = 0; l < 3; l++) {
      const k = new Float32Array(n * V);
      const v = new Float32Array(n * V);
      const q = new Float32Array(2 * n * V);
      for (let t = 0; t < n; t++) {
        const cur = tokens[t]!;
        const prev = t > 0 ? tokens[t - 1]! : this.last;
        v[t * V + cur] = 1;
        if (l === 1) {
          if (prev >= 0 && this.opts.induction) k[t * V + prev] = a;
          for (let h = 0; h < 2; h++) q[(h * n + t) * V + cur] = a;
        } else if (l === this.opts.sinkLayer) {
          if (cur === 1) k[t * V + 1] = 2 * a;
          for (let h = 0; h < 2; h++) q[(h * n + t) * V + 1] = 2 * a;
        }
      }
      await cache.append(l, k, v, positions);
      await cache.attend(l, q, positions, out);
      if (l === 1) {
        const first = opts.firstLogit ?? 0;
        logits = new Float32Array((n - first) * V);
        for (let t = first; t < n; t++)
          for (let c = 0; c < V; c++) logits[(t - first) * V + c] = 12 * out[t * V + c]!;
      }
    }
    this.last = tokens[n - 1]!;
    return logits;
  }
  dispose(): void {}
}

describe("copy test and sink probe on a hand-built model", () => {
  let exec: Executor;
  // Text: repeats of a permutation of 3..63, so any passage of up to 61 tokens has no repeats.
  const perm = Array.from({ length: 61 }, (_, i) => 3 + ((i * 17) % 61));
  const text = [1, ...Array.from({ length: 600 }, (_, i) => perm[i % 61]!)];
  before(async () => {
    exec = await getExecutor("ref");
  });

  test("an induction head copies: full-cache second copy near PPL 1, a window shorter than P cannot", async () => {
    const m = new ToyModel(exec, 64, { induction: true, sinkLayer: null });
    const r = await copyTest(m, text, 128, { passage: 40, window: 8, passages: 3 });
    assert.equal(r.passage, 40);
    assert.equal(r.scoredTokens, 3 * 39);
    assert.ok(r.fullPpl < 1.05, `full ${r.fullPpl}`);
    assert.ok(r.windowPpl > 10, `window ${r.windowPpl}`);
    assert.ok(r.firstCopyPpl > 10, `first copy ${r.firstCopyPpl}`);
    assert.equal(r.copies, true);
    // The earlier occurrence's key sits P - 1 positions back: a window of P - 1 still misses it.
    const edge = await copyTest(m, text, 128, { passage: 40, window: 39, passages: 1 });
    assert.ok(edge.windowPpl > 10, `window 39: ${edge.windowPpl}`);
    await assert.rejects(copyTest(m, text, 128, { passage: 40, window: 40 }), /shorter than the passage/);
  });

  test("a model without the induction head fails the copy test", async () => {
    const m = new ToyModel(exec, 64, { induction: false, sinkLayer: null });
    const r = await copyTest(m, text, 128, { passage: 40, window: 8, passages: 2 });
    assert.ok(r.fullPpl > 10 && r.ratio > 0.5, JSON.stringify(r));
    assert.equal(r.copies, false);
  });

  test("sink: all mass on BOS in layer 2 is a sink; in layer 0 it is not counted", async () => {
    const s2 = await sinkMass(new ToyModel(exec, 64, { induction: true, sinkLayer: 2 }), text, 128, {
      segments: 2,
    });
    assert.ok(
      s2.mass[2]!.every((x) => x > 0.99),
      JSON.stringify(s2.mass),
    );
    assert.ok(s2.check.maxAbsOutDiff < 1e-5, JSON.stringify(s2.check));
    assert.equal(s2.sink, true);
    const s0 = await sinkMass(new ToyModel(exec, 64, { induction: true, sinkLayer: 0 }), text, 128, {
      segments: 2,
    });
    assert.ok(
      s0.mass[0]!.every((x) => x > 0.99),
      JSON.stringify(s0.mass),
    );
    assert.ok(s0.maxByLayer[1]! < 0.05 && s0.maxByLayer[2]! < 0.05, JSON.stringify(s0.maxByLayer));
    assert.equal(s0.sink, false);
    // A layer with zero keys attends uniformly: its mass on position 0 is the uniform baseline.
    assert.ok(Math.abs(s0.mass[2]![0]! - s0.uniformMass) < 1e-9);
  });
});

describe("the shipped model models/sotu-llama", () => {
  let m: LanguageModel;
  let tokens: number[];
  before(async () => {
    m = await loadModel(join(root, "models/sotu-llama"));
    tokens = m.tokenizer.encode(readText(join(root, "data/sotu/heldout.txt")));
  });
  after(() => m?.dispose());

  test("probeModel: a JSON-able report whose gates follow from its numbers", async () => {
    const r = await probeModel(m, tokens, {
      nCtx: 256,
      segments: 2,
      windows: [16, 64],
      copy: { passages: 2 },
      sink: { segments: 2 },
    });
    const j = JSON.parse(JSON.stringify(r)) as typeof r;
    assert.deepEqual(Object.keys(j.gates).sort(), ["contextHelps", "copies", "sink"]);
    assert.deepEqual(
      r.curve.points.map((p) => p.window),
      [16, 64, 128, null],
    );
    assert.equal(r.trainedPositions, 512);
    assert.deepEqual(r.warnings, []);
    const full = r.curve.points[3]!;
    const w128 = r.curve.points[2]!;
    assert.equal(r.gates.contextHelps, full.ppl < w128.ppl && w128.delta!.lo > 0);
    assert.equal(r.gates.copies, r.copy.fullPpl < 0.5 * r.copy.windowPpl);
    assert.equal(
      r.gates.sink,
      r.sinks.maxByLayer.some((x, l) => l >= 1 && x > 0.3),
    );
    // Any language model loses something with only 16 tokens of context.
    const w16 = r.curve.points[0]!.delta!;
    assert.ok(w16.mean > 0 && w16.lo > 0, JSON.stringify(w16));
    assert.equal(r.copy.passage, 127);
    assert.ok(r.copy.fullPpl < r.copy.windowPpl, JSON.stringify(r.copy));
    assert.equal(r.sinks.mass.length, 4);
    assert.ok(r.sinks.check.maxAbsOutDiff < 1e-4 * r.sinks.check.maxAbsOut, JSON.stringify(r.sinks.check));
  });

  test("context past the trained positions is flagged", async () => {
    const p = await probeModel(m, tokens.slice(0, 2000), {
      nCtx: 600,
      segments: 1,
      windows: [],
      copy: { passages: 1, passage: 8, window: 4 },
      sink: { segments: 1, queries: 4 },
    });
    assert.equal(p.warnings.length, 1);
    assert.match(p.warnings[0]!, /600/);
    assert.equal(p.gates.contextHelps !== null, true);
  });
});

describe("CLI", () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, [join(root, "bin/kvlab.js"), ...args], { encoding: "utf8", cwd: root });

  test("kvlab ppl warns past the trained positions (stderr and --json warnings)", () => {
    const base = ["ppl", "--model", "models/sotu-llama", "--text", "data/sotu/heldout.txt", "--chunks", "1"];
    const over = run([...base, "--ctx", "600", "--json"]);
    assert.equal(over.status, 0, over.stderr);
    assert.match(over.stderr, /^warning: context 600 exceeds the model's trained positions \(512/m);
    assert.equal((JSON.parse(over.stdout) as { warnings: string[] }).warnings.length, 1);
    const ok = run([...base, "--ctx", "64", "--json"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /warning/);
    assert.deepEqual((JSON.parse(ok.stdout) as { warnings: string[] }).warnings, []);
  });

  test("kvlab probe --json prints one object with the gates", () => {
    const r = run([
      "probe",
      "--model",
      "models/sotu-llama",
      "--text",
      "data/sotu/heldout.txt",
      "--ctx",
      "64",
      "--segments",
      "1",
      "--windows",
      "16",
      "--json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout) as { gates: Record<string, unknown>; curve: { points: unknown[] } };
    assert.equal(o.gates.contextHelps, null); // no 128-token window below a 64-token context
    assert.equal(typeof o.gates.copies, "boolean");
    assert.equal(o.curve.points.length, 2);
    const bad = run([
      "probe",
      "--model",
      "models/sotu-llama",
      "--text",
      "data/sotu/heldout.txt",
      "--windows",
      "1",
    ]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /^error: --windows/);
  });
});
