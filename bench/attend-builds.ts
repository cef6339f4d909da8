/**
 * In-process A/B of the two wasm builds (build/kvlab.wasm vs build/kvlab-relaxed.wasm) on one
 * engine that runs both (Node 22+): Llama-3-8B-shaped caches (32q/8kv/128, 1 layer) for f32,
 * int8, int4 with f32 and q8 queries, one cache per build and codec, attend timed in turns,
 * fastest turn per cache. Issue 15 lever 2 (FMA, relaxed i8 dot).
 *   N=4096 R=60 npx -p node@24 node --import tsx bench/attend-builds.ts
 */
import { createCache } from "../src/cache/create.ts";
import type { CacheSpecInput, KVCache } from "../src/cache/types.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";
import { fillCache } from "./lib/cache.ts";
import { fillRandom } from "./lib/executors.ts";

const builds = {
  baseline: await createWasmExecutor({ threads: 1, build: "baseline" }),
  relaxed: await createWasmExecutor({ threads: 1, build: "relaxed" }),
};
const tokens = Number(process.env.N ?? 4096);
const rounds = Number(process.env.R ?? 60);
const shape = { nHeads: 32, nKvHeads: 8, headDim: 128 };
const specs: [string, unknown][] = [
  ["f32", "f32"],
  ["int8", "int8"],
  ["int8 q8", { codec: "int8", query: "q8" }],
  ["int4", "int4"],
  ["int4 q8", { codec: "int4", query: "q8" }],
];
console.log(
  process.version,
  tokens,
  "tokens, Llama shape,",
  rounds,
  "turns; load",
  (await import("node:os")).loadavg()[0],
);
const kv = { nLayers: 1, ...shape, maxTokens: tokens };
const runs: { b: string; name: string; c: KVCache; t: number }[] = [];
for (const [b, ex] of Object.entries(builds))
  for (const [name, spec] of specs) {
    const c = await createCache(spec as CacheSpecInput, kv, { executor: ex });
    fillCache(c, kv, tokens);
    runs.push({ b, name, c, t: 1e9 });
  }
const q = fillRandom(new Float32Array(shape.nHeads * shape.headDim), 17),
  out = new Float32Array(q.length),
  qPos = Int32Array.of(tokens);
for (let r = 0; r < rounds; r++)
  for (const x of runs) {
    const t0 = performance.now();
    x.c.attend(0, q, qPos, out);
    x.t = Math.min(x.t, performance.now() - t0);
  }
for (const [name] of specs) {
  const a = runs.find((x) => x.b === "baseline" && x.name === name)!,
    b = runs.find((x) => x.b === "relaxed" && x.name === name)!;
  console.log(
    `${name.padEnd(8)} baseline ${a.t.toFixed(3)} ms  relaxed ${b.t.toFixed(3)} ms  relaxed/baseline ${(b.t / a.t).toFixed(2)}`,
  );
}
