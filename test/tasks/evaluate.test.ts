/** Task evaluation: the cache path equals a direct greedy decode; judging rules; Wilson intervals. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import { generate } from "../../src/model/generate.ts";
import type { LanguageModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { evaluateTask, judge, maxTokensFor } from "../../src/tasks/evaluate.ts";
import { generateSamples } from "../../src/tasks/generate.ts";
import { summarizeTask, wilson } from "../../src/tasks/metrics.ts";

describe("task metrics", () => {
  it("Wilson intervals match the closed form at the edges and the centre", () => {
    // 0/10: [0, z^2 / (n + z^2)]; 10/10 mirrors it; 5/10 is symmetric about 0.5.
    const z2 = 1.959963984540054 ** 2;
    const [lo0, hi0] = wilson(0, 10);
    assert.equal(lo0, 0);
    assert.ok(Math.abs(hi0 - z2 / (10 + z2)) < 1e-12);
    const [lo1, hi1] = wilson(10, 10);
    assert.ok(Math.abs(lo1 - (1 - hi0)) < 1e-12 && Math.abs(hi1 - 1) < 1e-12, `${lo1} ${hi1}`);
    const [a, b] = wilson(5, 10);
    assert.ok(Math.abs(a + b - 1) < 1e-12 && a > 0.2 && a < 0.25);
    assert.deepEqual(wilson(0, 0), [0, 1]);
  });

  it("summaries group by depth, length and cell", () => {
    const s = (length: number, depth: number, correct: boolean) => ({
      length,
      depth,
      correct,
      answerProb: correct ? 0.9 : 0.1,
      answerRank: correct ? 0 : 5,
      kvBytes: length * 10,
    });
    const r = summarizeTask("passkey", [s(100, 0, true), s(100, 1, false), s(200, 0, true), s(200, 1, true)]);
    assert.equal(r.correct, 3);
    assert.equal(r.total, 4);
    assert.deepEqual(r.byDepth, { "0": 1, "1": 0.5 });
    assert.deepEqual(r.byLength, { "100": 0.5, "200": 1 });
    assert.equal(r.cells.length, 4);
    assert.equal(r.kvBytes, 1500);
    assert.deepEqual(r.kvBytesByLength, { "100": 1000, "200": 2000 });
  });

  it("judging rules", () => {
    assert.ok(judge(" 12345.", "12345", "digits"));
    assert.ok(!judge(" 123456.", "12345", "digits"));
    assert.ok(!judge(" the key", "12345", "digits"));
    assert.ok(judge(" Smoked  Paprika, of course", "smoked paprika", "contains"));
    assert.ok(!judge(" smoked", "smoked paprika", "contains"));
    assert.ok(judge(" smoked paprika.", "smoked paprika", "exact"));
    assert.ok(!judge(" smoked paprika and salt", "smoked paprika", "exact"));
    assert.ok(judge(" ABCDE FGHIJ, KLMNO", "ABCDE KLMNO FGHIJ", "all-words"));
    assert.ok(!judge(" ABCDE FGHIJ", "ABCDE KLMNO FGHIJ", "all-words"));
  });
});

describe("task evaluation through a cache", () => {
  let m: LanguageModel;
  before(async () => {
    m = await loadModel(join(REPO_ROOT, "models/sotu-llama"), { executor: "wasm" });
  });
  after(() => m.dispose());
  const haystack = readFileSync(join(REPO_ROOT, "data/sotu/heldout.txt"), "utf8");

  it("a full f32 cache answers what a direct greedy decode of the whole prompt answers", async () => {
    const samples = generateSamples(m.tokenizer, {
      task: "needle",
      lengths: [160, 300],
      depths: [0.2, 0.8],
      samples: 1,
      seed: 5,
      haystack,
    });
    const r = await evaluateTask(m, samples, (shape) => createCache("f32", shape, { executor: m.executor }), {
      protocol: "agnostic",
      prefillChunk: 64,
    });
    const cache = await createCache("f32", m.kvShape(maxTokensFor(samples)), { executor: m.executor });
    try {
      for (const [i, s] of samples.entries()) {
        const ids = await generate(m, [...s.context, ...s.question], s.answerIds.length + 3, cache);
        const direct = m.tokenizer
          .decode(ids.filter((id) => id !== m.tokenizer.eosId))
          .split("\n")[0]!
          .trim();
        assert.equal(r.samples[i]!.output, direct, `sample ${i}`);
      }
    } finally {
      cache.dispose();
    }
    // Both protocols see the same tokens with a full cache: same answers.
    const aware = await evaluateTask(
      m,
      samples,
      (shape) => createCache("f32", shape, { executor: m.executor }),
      {
        protocol: "aware",
        prefillChunk: 64,
      },
    );
    assert.deepEqual(
      aware.samples.map((s) => s.output),
      r.samples.map((s) => s.output),
    );
  });

  it("reports the cache bytes when the question is read: a window holds its budget, f32 the prompt", async () => {
    const samples = generateSamples(m.tokenizer, {
      task: "passkey",
      lengths: [256],
      depths: [0.5],
      samples: 2,
      seed: 1,
    });
    const full = await evaluateTask(
      m,
      samples,
      (shape) => createCache("f32", shape, { executor: m.executor }),
      {
        protocol: "agnostic",
      },
    );
    const win = await evaluateTask(
      m,
      samples,
      (shape) =>
        createCache({ codec: "f32", policy: { type: "window", budget: 32 } }, shape, {
          executor: m.executor,
        }),
      { protocol: "agnostic" },
    );
    const { nLayers, nKvHeads, headDim } = m.kvShape(1);
    const perToken = 2 * 4 * nLayers * nKvHeads * headDim;
    for (const [i, s] of full.samples.entries())
      assert.equal(s.kvBytes, s.tokens * perToken, `f32 sample ${i}`);
    for (const s of win.samples)
      assert.ok(s.kvBytes <= 32 * perToken + 64 * nLayers * nKvHeads, `${s.kvBytes}`);
    assert.equal(full.total, 2);
    assert.ok(full.interval[0] <= full.accuracy && full.accuracy <= full.interval[1]);
  });
});
