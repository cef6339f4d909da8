/**
 * In-process A/B of the wasm builds on the ggml cache types (assembly/attend-ggml.ts) on one
 * engine that runs both (Node 22+): build/kvlab.wasm (baseline), build/kvlab-relaxed.wasm and,
 * when $OLD names one, an older relaxed build to compare with (e.g. built from an earlier
 * commit: git archive <commit> assembly | tar -x -C tmp/old && npx asc tmp/old/assembly/index.ts
 * --config asconfig.json --target relaxed --outFile tmp/old/kvlab-relaxed.wasm). One cache per
 * build and spec (1 layer, f32 and the ggml types with f32 and q8 queries), attend timed in
 * turns (round-robin, so machine load falls on all alike), fastest turn per cache. The f32-query
 * ggml rows run the same code in both relaxed builds: their ratio shows the noise.
 * Issue 15 lever 2 (relaxed i8 dot in the q8-query scores).
 *   N=16384 R=30 [SMALL=1] [OLD=tmp/old/kvlab-relaxed.wasm] npx -p node@24 node --import tsx bench/attend-ggml-builds.ts
 */
import { loadavg } from "node:os";
import { createCache } from "../src/cache/create.ts";
import type { CacheSpecInput, KVCache } from "../src/cache/types.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";
import { fillCache } from "./lib/cache.ts";
import { fillRandom } from "./lib/executors.ts";

const builds: Record<string, Awaited<ReturnType<typeof createWasmExecutor>>> = {
  baseline: await createWasmExecutor({ threads: 1, build: "baseline" }),
};
if (process.env.OLD)
  builds["relaxed (OLD)"] = await createWasmExecutor({ threads: 1, wasm: process.env.OLD });
builds.relaxed = await createWasmExecutor({ threads: 1, build: "relaxed" });
const tokens = Number(process.env.N ?? 16384);
const rounds = Number(process.env.R ?? 30);
const shape = process.env.SMALL
  ? { nHeads: 8, nKvHeads: 4, headDim: 64 }
  : { nHeads: 32, nKvHeads: 8, headDim: 128 };
const specs: [string, unknown][] = [
  ["f32", "f32"],
  ["q8_0", "q8_0"],
  ["q4_0", "q4_0"],
];
for (const t of ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"])
  specs.push([`${t} q8`, { codec: t, query: "q8" }]);
const load0 = loadavg()[0]!;
const kv = { nLayers: 1, ...shape, maxTokens: tokens };
const runs: { b: string; name: string; c: KVCache; t: number }[] = [];
for (const [b, ex] of Object.entries(builds))
  for (const [name, spec] of specs) {
    const c = await createCache(spec as CacheSpecInput, kv, { executor: ex });
    fillCache(c, kv, tokens);
    runs.push({ b, name, c, t: Number.POSITIVE_INFINITY });
  }
const q = fillRandom(new Float32Array(shape.nHeads * shape.headDim), 17);
const out = new Float32Array(q.length);
const qPos = Int32Array.of(tokens);
for (let r = 0; r < rounds; r++)
  for (const x of runs) {
    const t0 = performance.now();
    x.c.attend(0, q, qPos, out);
    x.t = Math.min(x.t, performance.now() - t0);
  }
console.log(
  `${process.version}, ${tokens} tokens, ${shape.nHeads}q/${shape.nKvHeads}kv/${shape.headDim}, ${rounds} turns (fastest), load ${load0.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}`,
);
const names = Object.keys(builds);
const ms = (b: string, name: string) => runs.find((x) => x.b === b && x.name === name)!.t;
const header = ["spec", ...names.map((n) => `${n} ms`), "relaxed / baseline"];
if (process.env.OLD) header.push("relaxed / OLD");
header.push("baseline / f32", "relaxed / f32");
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => "---").join("|")}|`);
for (const [name] of specs) {
  const cells = [
    name,
    ...names.map((b) => ms(b, name).toFixed(3)),
    (ms("relaxed", name) / ms("baseline", name)).toFixed(2),
  ];
  if (process.env.OLD) cells.push((ms("relaxed", name) / ms("relaxed (OLD)", name)).toFixed(2));
  cells.push(
    (ms("baseline", name) / ms("baseline", "f32")).toFixed(2),
    (ms("relaxed", name) / ms("relaxed", "f32")).toFixed(2),
  );
  console.log(`| ${cells.join(" | ")} |`);
}
for (const ex of Object.values(builds)) ex.dispose();
