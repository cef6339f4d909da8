/**
 * kvzip (arXiv:2505.23416) and its scoring forward: the policy keeps the tokens with the highest
 * reconstruction scores (hand-made scores), never-scored tokens last to go, a plain window
 * without scores; the scratch cache attends as a float64 softmax written here and cuts back;
 * the scoring pass never touches the measured cache or the logits, counts what it forwards, and
 * scores every context position with the largest probability a repeat query gave it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createCache } from "../../../src/cache/create.ts";
import { policyOf } from "../../../src/cache/policy.ts";
import { evaluatePerplexity } from "../../../src/eval/perplexity.ts";
import { ScoringPass } from "../../../src/eval/scoring-pass.ts";
import { ScratchCache } from "../../../src/eval/scratch-cache.ts";
import type { LanguageModel } from "../../../src/model/llama.ts";
import { loadModel } from "../../../src/model/load.ts";
import { synthModel } from "../../../src/model/synth.ts";
import { evaluateTask } from "../../../src/tasks/evaluate.ts";
import type { TaskSample } from "../../../src/tasks/generate.ts";
import { drive, makeCache, rng, smallShape } from "./drive.ts";

test("kvzip keeps the highest reconstruction scores per KV head; unscored tokens go last", async () => {
  const shape = smallShape({ nLayers: 1 });
  const cache = await makeCache({ policy: { type: "kvzip", budget: 3 } }, shape);
  const req = policyOf(cache)!.scoring!;
  assert.equal(req.prompt, "Repeat the previous context:");
  // Head 0 prefers positions 1, 4, 5; head 1 prefers 0, 2, 3; positions >= 6 unscored.
  const s0 = Float32Array.from([0.1, 0.9, 0.2, 0.3, 0.8, 0.7, 0, 0]);
  const s1 = Float32Array.from([0.9, 0.1, 0.8, 0.7, 0.2, 0.3, 0, 0]);
  req.scores(0, 0, s0, 6);
  req.scores(0, 1, s1, 6);
  drive(cache, shape, 6, [6], 1);
  assert.deepEqual([...cache.retainedPositions(0, 0)].sort(), [1, 4, 5]);
  assert.deepEqual([...cache.retainedPositions(0, 1)].sort(), [0, 2, 3]);
  // Two unscored tokens arrive: they stay, the lowest scored go.
  drive(cache, shape, 2, [2], 2, undefined, 6);
  assert.deepEqual([...cache.retainedPositions(0, 0)].sort(), [1, 6, 7]);
  assert.deepEqual([...cache.retainedPositions(0, 1)].sort(), [0, 6, 7]);
});

test("kvzip without scoring forwards is a sliding window within its budget", async () => {
  const shape = smallShape({ nLayers: 1 });
  const cache = await makeCache({ policy: { type: "kvzip", budget: 4 } }, shape);
  drive(cache, shape, 11, [3, 1, 2], 5);
  for (let h = 0; h < shape.nKvHeads; h++)
    assert.deepEqual(
      [...cache.retainedPositions(0, h)].sort((a, b) => a - b),
      [7, 8, 9, 10],
    );
});

test("kvzip under adakv passes its scoring request through", async () => {
  const cache = await makeCache({ policy: { type: "adakv", budget: 4, scorer: "kvzip" } }, smallShape());
  assert.ok(policyOf(cache)?.scoring);
});

test("scratch cache: causal softmax attention as a float64 reference, observer rows sum to 1, truncate", () => {
  const shape = smallShape({ nLayers: 1, maxTokens: 16 });
  const { nHeads, nKvHeads, headDim: d } = shape;
  const group = nHeads / nKvHeads;
  const c = new ScratchCache(shape);
  const r = rng(9);
  const K: number[][][] = Array.from({ length: nKvHeads }, () => []);
  const V: number[][][] = Array.from({ length: nKvHeads }, () => []);
  const feed = (pos: number[]) => {
    const n = pos.length;
    const k = Float32Array.from({ length: nKvHeads * n * d }, () => r(1));
    const v = Float32Array.from({ length: nKvHeads * n * d }, () => r(1));
    for (let h = 0; h < nKvHeads; h++)
      for (let i = 0; i < n; i++) {
        K[h]!.push(Array.from(k.subarray((h * n + i) * d, (h * n + i + 1) * d)));
        V[h]!.push(Array.from(v.subarray((h * n + i) * d, (h * n + i + 1) * d)));
      }
    c.append(0, k, v, Int32Array.from(pos));
    const q = Float32Array.from({ length: nHeads * n * d }, () => r(1));
    const out = new Float32Array(q.length);
    const sums: number[] = [];
    c.observer = (_l, _h, probs, nRows, m) => {
      for (let row = 0; row < nRows; row++)
        sums.push(probs.subarray(row * m, (row + 1) * m).reduce((a, x) => a + x, 0));
    };
    c.attend(0, q, Int32Array.from(pos), out);
    for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-12);
    // Reference: token t (absolute position pos[i]) sees every held token up to its position.
    const held = K[0]!.length;
    for (let h = 0; h < nHeads; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < n; i++) {
        const qi = Array.from(q.subarray((h * n + i) * d, (h * n + i + 1) * d));
        const visible = held - n + i + 1; // positions ascend, so the first `visible` tokens
        const logits = Array.from(
          { length: visible },
          (_, j) => K[g]![j]!.reduce((a, x, t) => a + x * qi[t]!, 0) / Math.sqrt(d),
        );
        const m = Math.max(...logits);
        const w = logits.map((x) => Math.exp(x - m));
        const z = w.reduce((a, x) => a + x, 0);
        for (let t = 0; t < d; t++) {
          const ref = w.reduce((a, x, j) => a + (x / z) * V[g]![j]![t]!, 0);
          assert.ok(Math.abs(out[(h * n + i) * d + t]! - ref) < 1e-5);
        }
      }
    }
  };
  feed([0, 1, 2]);
  feed([3, 4]);
  assert.equal(c.length, 5);
  c.truncate(3);
  for (const a of [K, V]) for (const h of a) h.splice(3);
  assert.equal(c.length, 3);
  feed([3, 4, 5]); // continues after the cut: the cut tokens are gone from attention
  assert.throws(
    () => c.append(0, new Float32Array(nKvHeads * d), new Float32Array(nKvHeads * d), Int32Array.of(5)),
    /not after/,
  );
});

describe("scoring pass on a synthetic model", () => {
  let dir = "";
  let m: LanguageModel;
  let tokens: number[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "kvlab-kvzip-"));
    synthModel({ shape: "tiny", out: join(dir, "tiny"), seed: 4, dtype: "f32" });
    m = await loadModel(join(dir, "tiny"), { executor: "ref" });
    let s = 777;
    tokens = Array.from({ length: 96 }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return 3 + (s % (m.config.vocabSize - 3));
    });
    tokens[0] = 1;
  });
  after(() => {
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test("kvzip with a budget covering the segment equals full: the pass never touches the measured cache", async () => {
    const protocol = { kind: "chunked", nCtx: 48, chunkSize: 8, nChunks: 2 } as const;
    const full = await evaluatePerplexity(m, tokens, protocol, (s) =>
      createCache("f32", s, { executor: m.executor }),
    );
    const kz = await evaluatePerplexity(m, tokens, protocol, (s) =>
      createCache({ codec: "f32", policy: { type: "kvzip", budget: 48, prompt: "Repeat:" } }, s, {
        executor: m.executor,
      }),
    );
    assert.equal(kz.nll, full.nll);
    assert.equal(full.scoring, undefined);
    const p = m.tokenizer.encode("Repeat:", { addBos: false }).length;
    // Per segment: 6 chunks of 8, each forwarded into the copy (8) and repeated after the prompt (p + 8).
    assert.deepEqual(
      { passes: kz.scoring!.passes, tokens: kz.scoring!.tokens, repeat: kz.scoring!.repeatTokens },
      { passes: 12, tokens: 12 * (8 + p + 8), repeat: 12 * (p + 8) },
    );
    assert.equal(kz.scoring!.promptTokens, p);
  });

  test("task protocol: a pass per context chunk only when query-agnostic (the question is never scored), every chunk when aware", async () => {
    const sample: TaskSample = {
      task: "passkey",
      length: 40,
      depth: 0.5,
      index: 0,
      context: tokens.slice(0, 40),
      question: tokens.slice(40, 46),
      answer: "7",
      answerIds: [tokens[46]!],
      match: "digits",
      factTokens: [10, 12],
    };
    const spec = { codec: "f32", policy: { type: "kvzip", budget: 16, prompt: "Repeat:" } };
    const make = (s: Parameters<typeof createCache>[1]) => createCache(spec, s, { executor: m.executor });
    const agnostic = await evaluateTask(m, [sample, sample], make, {
      protocol: "agnostic",
      prefillChunk: 16,
      extraTokens: 0,
    });
    assert.equal(agnostic.scoring!.passes, 2 * 3); // chunks of 16, 16, 8 of the context, per sample
    const aware = await evaluateTask(m, [sample], make, {
      protocol: "aware",
      prefillChunk: 16,
      extraTokens: 0,
    });
    assert.equal(aware.scoring!.passes, 3); // 46 prompt tokens from the end: 14, 16, 16
  });

  test("scores are the largest repeat-query probability per context position (a second scratch run as reference)", async () => {
    const cache = await createCache(
      { codec: "f32", policy: { type: "kvzip", budget: 8, prompt: "Repeat:" } },
      m.kvShape(64),
      {
        executor: m.executor,
      },
    );
    const got = new Map<string, { s: Float32Array; upTo: number }>();
    const req = policyOf(cache)!.scoring!;
    const pass = new ScoringPass(
      m,
      { prompt: req.prompt, scores: (l, h, s, upTo) => got.set(`${l},${h}`, { s, upTo }) },
      64,
    );
    pass.reset();
    const ids = tokens.slice(0, 12);
    await pass.before(
      ids,
      Int32Array.from({ length: 12 }, (_, i) => i),
    );
    // Reference: context then prompt + context in one fresh scratch cache, max over the repeat rows.
    const ref = new ScratchCache(m.kvShape(64));
    await m.forward(
      ids,
      Int32Array.from({ length: 12 }, (_, i) => i),
      ref,
    );
    const prompt = m.tokenizer.encode("Repeat:", { addBos: false });
    const rep = [...prompt, ...ids];
    const want = new Map<string, number[]>();
    ref.observer = (l, h, probs, nRows, n) => {
      const w = Array.from({ length: 12 }, (_, j) => {
        let x = 0;
        for (let row = 0; row < nRows; row++) x = Math.max(x, probs[row * n + j]!);
        return x;
      });
      want.set(`${l},${h}`, w);
    };
    await m.forward(
      rep,
      Int32Array.from({ length: rep.length }, (_, i) => 12 + i),
      ref,
    );
    assert.equal(got.size, m.config.nLayers * m.config.nKvHeads);
    for (const [key, w] of want) {
      const g = got.get(key)!;
      assert.equal(g.upTo, 12);
      for (let j = 0; j < 12; j++) assert.ok(Math.abs(g.s[j]! - w[j]!) < 1e-6, `${key} position ${j}`);
      assert.ok(w.some((x) => x > 0));
    }
    cache.dispose();
  });
});

test("the scoring forward refuses sliding-window models by name (positions go back after each pass)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvlab-kvzip-win-"));
  try {
    synthModel({ shape: "tiny-mistral", out: join(dir, "m"), seed: 1, dtype: "f32" });
    const m = await loadModel(join(dir, "m"), { executor: "ref" });
    const cache = await createCache({ policy: { type: "kvzip", budget: 8 } }, m.kvShape(32), {
      executor: m.executor,
    });
    assert.throws(() => ScoringPass.for(m, cache), /cache\.policy.*kvzip.*sliding-window/);
    cache.dispose();
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
