/**
 * In-process A/B of two wasm builds on one engine: by default build/kvlab.wasm vs
 * build/kvlab-relaxed.wasm (needs an engine that runs both: Node 22+); WASM=<path> WASM_B=<path>
 * compares any two modules instead (e.g. a saved copy of a build before a kernel change vs
 * after it, both relaxed). One cache per build and codec (1 layer, SHAPE = "32q/8kv/128"
 * Llama-3-8B by default, or e.g. "8q/4kv/64"), attend timed in turns, fastest turn per cache.
 * Prints per codec the time on each build, B / A, and each build's codec / f32 time. SPECS
 * picks the codecs ("int8+q8" = int8 with query: q8, "+q8w" = query: q8w; f32 first).
 * Issue 15 levers 1 and 2 (integer scores and weighted sum, FMA, relaxed i8 dot).
 *   N=4096 R=60 PATH=<node 24 dir>:$PATH node --import tsx bench/attend-builds.ts
 *   WASM=tmp/old-relaxed.wasm WASM_B=build/kvlab-relaxed.wasm SHAPE=8q/4kv/64 N=16384 R=30 ...
 */
import { loadavg } from "node:os";
import { createCache } from "../src/cache/create.ts";
import type { CacheSpecInput, KVCache } from "../src/cache/types.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";
import { fillCache } from "./lib/cache.ts";
import { fillRandom } from "./lib/executors.ts";

const named = process.env.WASM && process.env.WASM_B;
const builds = named
  ? {
      A: await createWasmExecutor({ threads: 1, wasmPath: process.env.WASM }),
      B: await createWasmExecutor({ threads: 1, wasmPath: process.env.WASM_B }),
    }
  : {
      A: await createWasmExecutor({ threads: 1, build: "baseline" }),
      B: await createWasmExecutor({ threads: 1, build: "relaxed" }),
    };
const tokens = Number(process.env.N ?? 4096);
const rounds = Number(process.env.R ?? 60);
const shapeName = process.env.SHAPE ?? "32q/8kv/128";
const sm = /^(\d+)q\/(\d+)kv\/(\d+)$/.exec(shapeName);
if (!sm) throw new Error(`SHAPE=${shapeName}: expected <heads>q/<kv heads>kv/<head dim>, e.g. 32q/8kv/128`);
const shape = { nHeads: Number(sm[1]), nKvHeads: Number(sm[2]), headDim: Number(sm[3]) };
const names = (process.env.SPECS ?? "f32,int8,int8+q8,int8+q8w,int4,int4+q8,int4+q8w").split(",");
if (names[0] !== "f32") names.unshift("f32");
const specOf = (s: string): CacheSpecInput => {
  const m = /^(.*)\+(q8w?)$/.exec(s);
  return (m ? { codec: m[1], query: m[2] } : s) as CacheSpecInput;
};
console.log(
  process.version,
  tokens,
  `tokens, ${shapeName},`,
  rounds,
  "turns; A",
  builds.A.wasmSource,
  "B",
  builds.B.wasmSource,
  "; load",
  loadavg()[0]!.toFixed(2),
);
const kv = { nLayers: 1, ...shape, maxTokens: tokens };
const runs: { b: string; name: string; c: KVCache; t: number }[] = [];
for (const name of names)
  for (const [b, ex] of Object.entries(builds)) {
    const c = await createCache(specOf(name), kv, { executor: ex });
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
const at = (b: string, name: string) => runs.find((x) => x.b === b && x.name === name)!.t;
for (const name of names) {
  const a = at("A", name),
    b = at("B", name);
  console.log(
    `${name.padEnd(9)} A ${a.toFixed(3)} ms  B ${b.toFixed(3)} ms  B/A ${(b / a).toFixed(2)}  ` +
      `/f32: A ${(a / at("A", "f32")).toFixed(2)}  B ${(b / at("B", "f32")).toFixed(2)}`,
  );
}
console.log("load after", loadavg()[0]!.toFixed(2));
for (const x of runs) x.c.dispose();
