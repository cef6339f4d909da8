/**
 * Streaming comparison of retention policies and key codecs on a real model: decode a long
 * WikiText stream token by token (positions 0..N-1, longer than the model's context) through
 * each cache backend and report perplexity by position range, memory and attention mass kept.
 *
 *   node --import tsx tools/kv-policies-stream.ts [modelDir] [nTokens] [budget] [only,names]
 *
 * Defaults: ../shared/models/stories260K/hf, 2048 tokens, budget 128. Prints a markdown table.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createCache } from "../src/cache/create.ts";
import type { StandardKVCache } from "../src/cache/kv-cache.ts";
import type { CacheSpecInput } from "../src/cache/types.ts";
import { nllOf } from "../src/eval/perplexity.ts";
import { loadModel } from "../src/model/load.ts";
import { ropeInvFreq } from "../src/model/rope.ts";

const shared = process.env.KVLAB_SHARED ?? join(import.meta.dirname, "..", "..", "shared");
const modelDir = process.argv[2] || join(shared, "models/stories260K/hf");
const nTokens = Number(process.argv[3] ?? 2048);
const B = Number(process.argv[4] ?? 128);
const only = process.argv[5]?.split(",");

const backends: [string, CacheSpecInput][] = [
  ["full f32", "f32"],
  [`window ${B}`, { policy: { type: "window", budget: B } }],
  [`sinks 4 + window (${B}, absolute pos)`, { policy: { type: "sinks", sinks: 4, budget: B } }],
  [
    `sinks 4 + window (${B}, cache pos)`,
    { policy: { type: "sinks", sinks: 4, budget: B, positions: "cache" } },
  ],
  ["h2o 20% of seen", { policy: { type: "h2o", budget: 0.2, recent: 0.5 } }],
  [`h2o ${B}`, { policy: { type: "h2o", budget: B, recent: 0.5 } }],
  [`tova ${B}`, { policy: { type: "tova", budget: B } }],
  [`snapkv ${B}`, { policy: { type: "snapkv", budget: B } }],
  [`knorm ${B}`, { policy: { type: "knorm", budget: B } }],
  [`random ${B}`, { policy: { type: "random", budget: B } }],
  [`lru ${B}`, { policy: { type: "lru", budget: B } }],
  [`lfu ${B}`, { policy: { type: "lfu", budget: B } }],
  [
    `tiered f16 ${B / 2} + int4, ${B}`,
    { codec: "f16", policy: { type: "tiered", recent: B / 2, budget: B, codec: "int4" } },
  ],
  ["K int2 per token, V f32", { codec: { keys: "int2", values: "f32" } }],
  ["K kivi2 per channel, V f32", { preset: "kivi2", codec: { keys: "int2", values: "f32" } }],
  ["K kivi2-prerope per channel, V f32", { preset: "kivi2-prerope", codec: { keys: "int2", values: "f32" } }],
  ["K int2-hadamard, V f32", { preset: "int2-hadamard", codec: { keys: "int2", values: "f32" } }],
  ["int2 per token (K and V)", "int2"],
  ["kivi2 (K channel, V token)", "kivi2"],
  ["kivi2-prerope", "kivi2-prerope"],
  ["int4 per token", "int4"],
  ["kivi4", "kivi4"],
];

const model = await loadModel(modelDir, { executor: "ref" });
const text = readFileSync(join(shared, "data/wikitext-2-raw/wiki.test.raw"), "utf8");
const ids = model.tokenizer.encode(text, { addBos: true }).slice(0, nTokens + 1);
const ranges: [number, number][] = [
  [0, 512],
  [512, nTokens],
  [0, nTokens],
];
const shape = { ...model.kvShape(nTokens), rope: { invFreq: ropeInvFreq(model.config) } };
console.log(`model ${modelDir}, ${nTokens} WikiText-2 test tokens decoded one at a time, budget ${B}\n`);
console.log(
  `| backend | ${ranges.map(([a, b]) => `PPL [${a},${b})`).join(" | ")} | KV KiB at end | bits/elt | mass kept | evicted | mean evicted age |`,
);
console.log(`|---|${ranges.map(() => "---").join("|")}|---|---|---|---|---|`);
for (const [label, spec] of backends) {
  if (only && !only.some((o) => label.includes(o))) continue;
  const cache = (await createCache(spec, shape, { executor: "ref", attentionMass: true })) as StandardKVCache;
  const nll = new Float64Array(nTokens);
  for (let t = 0; t < nTokens; t++) {
    const logits = await model.forward([ids[t]!], Int32Array.of(t), cache);
    nll[t] = nllOf(logits, ids[t + 1]!);
  }
  const ppl = ranges.map(([a, b]) => {
    let s = 0;
    for (let t = a; t < b; t++) s += nll[t]!;
    return Math.exp(s / (b - a)).toFixed(2);
  });
  const m = cache.memory();
  const st = cache.stats();
  console.log(
    `| ${label} | ${ppl.join(" | ")} | ${(m.total / 1024).toFixed(1)} | ${m.bitsPerElement.toFixed(2)} | ${st.attentionMassKept?.mean.toFixed(3)} | ${st.evicted} | ${st.evictionAge?.mean.toFixed(0)} |`,
  );
  cache.dispose();
}
