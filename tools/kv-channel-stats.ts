/**
 * Outlier channels of a model's keys and values: per (layer, KV head), the RMS of each of the
 * head_dim channels over the tokens of a text, reported as the largest channel's RMS over the
 * median channel's, before and after kvlab's seeded Hadamard rotation (src/quant/hadamard.ts).
 * Rotation helps a per-token integer grid in proportion to this spread (QuaRot,
 * arXiv:2404.00456), so this is the number to read next to results/rotation/.
 *
 *   node --import tsx tools/kv-channel-stats.ts [model dir] [text] [segments of 1024]
 *   (defaults: models/sotu-llama-long, data/sotu/heldout.txt, 2)
 */
import { readFileSync } from "node:fs";
import { createCache } from "../src/cache/create.ts";
import type { KVCache, KVShape } from "../src/cache/types.ts";
import { evaluatePerplexity } from "../src/eval/perplexity.ts";
import { loadModel } from "../src/model/load.ts";
import { sideRotation } from "../src/quant/hadamard.ts";

async function main(): Promise<void> {
  const [modelDir = "models/sotu-llama-long", textPath = "data/sotu/heldout.txt", segs = "2"] =
    process.argv.slice(2);
  const model = await loadModel(modelDir, { executor: "wasm" });
  const tokens = model.tokenizer.encode(readFileSync(textPath, "utf8"));
  // Sum of squares per channel, raw and rotated: key -> (2, headDim).
  const sq = new Map<string, { raw: Float64Array; rot: Float64Array }>();
  const record = async (s: KVShape): Promise<KVCache> => {
    const inner = await createCache("f32", s, { executor: model.executor });
    const d = s.headDim;
    const rot = { k: sideRotation("keys", d, 0), v: sideRotation("values", d, 0) };
    const append = inner.append.bind(inner);
    inner.append = (layer, k, v, pos) => {
      const n = pos.length;
      for (const [side, x] of [
        ["k", k],
        ["v", v],
      ] as const)
        for (let h = 0; h < s.nKvHeads; h++) {
          const rows = x.slice(h * n * d, (h + 1) * n * d); // (n, headDim)
          const rotated = rows.slice();
          rot[side].apply(rotated, n);
          const key = `${side}${layer}.${h}`;
          let e = sq.get(key);
          if (!e) sq.set(key, (e = { raw: new Float64Array(d), rot: new Float64Array(d) }));
          for (let i = 0; i < n * d; i++) {
            e.raw[i % d]! += rows[i]! ** 2;
            e.rot[i % d]! += rotated[i]! ** 2;
          }
        }
      return append(layer, k, v, pos);
    };
    return inner;
  };
  const protocol = { kind: "chunked", nCtx: 1024, nChunks: Number(segs), chunkSize: 32 } as const;
  await evaluatePerplexity(model, tokens, protocol, record);
  const spread = (a: Float64Array) => {
    const s = [...a].sort((x, y) => x - y);
    return Math.sqrt(s[s.length - 1]! / s[s.length >> 1]!);
  };
  console.log(`${modelDir}, ${segs} x 1024 tokens of ${textPath}: largest / median channel RMS`);
  console.log("layer.head  keys raw  keys rotated  values raw  values rotated");
  for (const key of [...sq.keys()].filter((k) => k.startsWith("k"))) {
    const k = sq.get(key)!;
    const v = sq.get(`v${key.slice(1)}`)!;
    const f = (x: number) => x.toFixed(2).padStart(8);
    console.log(
      `${key.slice(1).padEnd(10)} ${f(spread(k.raw))}  ${f(spread(k.rot))}      ${f(spread(v.raw))}  ${f(spread(v.rot))}`,
    );
  }
  model.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
