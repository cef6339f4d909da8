// Diagnostic (results/policies-2025/README.md): after a query-agnostic prefill of pass-key prompts
// (512 tokens, chunks of 32, budget 128 = 25%), which of the fact's tokens each policy retains.
//   npx tsx results/policies-2025/fact-retention.mts   (from the repository root)
import { createCache } from "../../src/cache/create.ts";
import { ScoringPass } from "../../src/eval/scoring-pass.ts";
import { loadModel } from "../../src/model/load.ts";
import { generateSamples } from "../../src/tasks/generate.ts";
const model = await loadModel("models/sotu-llama-long", {});
const samples = generateSamples(model.tokenizer, { task: "passkey", lengths: [512], depths: [0.1, 0.3, 0.5, 0.7, 0.9], samples: 1, seed: 0 });
for (const policy of [{ type: "snapkv", budget: 128 }, { type: "expected-attention", budget: 128 }, { type: "kvzip", budget: 128 }]) {
  const cache = (await createCache({ codec: "f16", policy }, model.kvShape(600), { executor: model.executor })) as any;
  const pass = ScoringPass.for(model, cache);
  const share = new Array(model.config.nLayers).fill(0);
  for (const s of samples) {
    cache.reset(); pass?.reset();
    for (let a = 0; a < s.context.length; a += 32) {
      const b = Math.min(a + 32, s.context.length);
      const pos = Int32Array.from({ length: b - a }, (_, i) => a + i);
      await pass?.before(s.context.slice(a, b), pos);
      await model.forward(s.context.slice(a, b), pos, cache, { firstLogit: b - a - 1 });
    }
    const [f0, f1] = s.factTokens;
    if (s === samples[2]) {
      const row: string[] = [];
      for (let p = f0; p < f1; p++) {
        let n = 0;
        for (let l = 0; l < model.config.nLayers; l++)
          for (let h = 0; h < model.config.nKvHeads; h++) if (cache.retainedPositions(l, h).includes(p)) n++;
        row.push(`${JSON.stringify(model.tokenizer.decode([s.context[p]!]))}:${n}`);
      }
      console.log(policy.type, "sample 3, fact tokens (kept in how many of 8 layer x KV heads):", row.join(" "));
    }
    for (let l = 0; l < model.config.nLayers; l++)
      for (let h = 0; h < model.config.nKvHeads; h++) {
        const kept = new Set(cache.retainedPositions(l, h));
        let k = 0;
        for (let p = f0; p < f1; p++) if (kept.has(p)) k++;
        share[l] += k / (f1 - f0) / model.config.nKvHeads / samples.length;
      }
  }
  console.log(policy.type, "fact tokens kept per layer:", share.map((x: number) => x.toFixed(2)).join(" "));
  cache.dispose();
}
model.dispose();
