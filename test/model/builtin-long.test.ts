/**
 * Properties of the shipped long-context model (models/sotu-llama-long) that its README claims
 * and the quickstart relies on, measured by kvlab's own code on every test run:
 *  - the TypeScript forward reproduces the PyTorch trainer's held-out NLL chunk by chunk;
 *  - at its full 1024-token context the full f16 cache has a lower perplexity than a 128-token
 *    window, with the paired 95% interval above zero (the model uses its context);
 *  - it retrieves: with a full f16 cache it answers at least 95% of the pass keys of the README's
 *    grid (`kvlab task passkey --length 256,512,1024 --depths 0,0.25,0.5,0.75,1 --samples 5`,
 *    seed 0; greedy decoding, exact match), while a 128-token window that has evicted the key
 *    scores exactly what prompts without the key score.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { evaluatePerplexity, nllOf } from "../../src/eval/perplexity.ts";
import { pairedDifference } from "../../src/eval/probe.ts";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import type { LanguageModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { evaluateTask } from "../../src/tasks/evaluate.ts";
import { generateSamples, type TaskSpec } from "../../src/tasks/generate.ts";

const MODEL = join(REPO_ROOT, "models/sotu-llama-long");
const TEXT = join(REPO_ROOT, "data/sotu/heldout.txt");

interface Reference {
  protocols: { n_ctx: number; chunk_mean_nll: number[] }[];
}

describe("built-in long-context model", () => {
  let m: LanguageModel;
  let tokens: number[];
  before(async () => {
    m = await loadModel(MODEL, { executor: "wasm" });
    tokens = m.tokenizer.encode(readFileSync(TEXT, "utf8"));
  });
  after(() => m.dispose());

  it("the TS forward reproduces the trainer's held-out NLL per chunk (llama.cpp protocol)", async () => {
    const ref = JSON.parse(readFileSync(join(MODEL, "reference.json"), "utf8")) as Reference;
    for (const nCtx of [1024, 128]) {
      const want = ref.protocols.find((p) => p.n_ctx === nCtx)!.chunk_mean_nll.slice(0, 2);
      const got: number[] = [];
      for (let c = 0; c < want.length; c++) {
        const r = await evaluatePerplexity(
          m,
          tokens.slice(c * nCtx),
          { kind: "llamacpp", nCtx, nChunks: 1 },
          (s) => createCache("f32", s, { executor: m.executor }),
        );
        got.push(r.nll);
      }
      for (let c = 0; c < want.length; c++)
        assert.ok(
          Math.abs(got[c]! - want[c]!) < 2e-5,
          `ctx ${nCtx} chunk ${c}: ${got[c]} vs trainer ${want[c]}`,
        );
    }
  });

  it("uses its context: full f16 cache beats a 128-token window at 1024 tokens (paired interval above 0)", async () => {
    const protocol = { kind: "chunked" as const, nCtx: 1024, chunkSize: 32, nChunks: 6 };
    const nll = async (spec: Parameters<typeof createCache>[0]) => {
      const per: number[] = [];
      const r = await evaluatePerplexity(
        m,
        tokens,
        protocol,
        (s) => createCache(spec, s, { executor: m.executor }),
        {
          onScored: (logits, target) => per.push(nllOf(logits, target)),
        },
      );
      return { ppl: r.ppl, per };
    };
    const full = await nll("f16");
    const win = await nll({ codec: "f16", policy: { type: "window", budget: 128 } });
    const d = pairedDifference(
      win.per.map((x, i) => x - full.per[i]!),
      32,
    );
    assert.ok(d.lo > 0, `window - full NLL interval [${d.lo}, ${d.hi}] includes 0`);
    assert.ok(win.ppl > full.ppl * 1.01, `window PPL ${win.ppl} is not 1% above full ${full.ppl}`);
  });

  it("retrieves pass keys with a full cache; an evicted pass key scores what no key scores", async () => {
    const spec: TaskSpec = {
      task: "passkey",
      lengths: [512, 1024],
      depths: [0, 0.25, 0.5, 0.75],
      samples: 2,
      seed: 7,
    };
    const samples = generateSamples(m.tokenizer, spec);
    const run = (cache: Parameters<typeof createCache>[0], s = samples) =>
      evaluateTask(m, s, (shape) => createCache(cache, shape, { executor: m.executor }), {
        protocol: "agnostic",
      });
    const full = await run("f16");
    // Depths < 1 at these lengths put the key more than 128 tokens before the question.
    const win = await run({ codec: "f16", policy: { type: "window", budget: 128 } });
    const control = await run("f16", generateSamples(m.tokenizer, { ...spec, control: true }));
    assert.equal(
      win.correct,
      control.correct,
      `window ${win.correct}/${win.total} vs no key ${control.correct}`,
    );
    const readmeGrid = generateSamples(m.tokenizer, {
      task: "passkey",
      lengths: [256, 512, 1024],
      depths: [0, 0.25, 0.5, 0.75, 1],
      samples: 5,
      seed: 0,
    });
    const published = await run("f16", readmeGrid);
    assert.ok(
      published.accuracy >= 0.95,
      `full cache answered ${published.correct}/${published.total} pass keys of the README's grid`,
    );
    assert.ok(
      full.meanAnswerProb > control.meanAnswerProb + 0.3,
      `first answer token p: full ${full.meanAnswerProb} vs no key ${control.meanAnswerProb}`,
    );
  });
});
