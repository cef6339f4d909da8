/**
 * Decode-time attention, f32 vs kivi2 caches on the wasm executor, 1 thread (issue 7's kivi2
 * target: kivi2 time <= 0.3x f32 at >= 16K tokens). Caches are filled first, then each round
 * times one attend per cache back to back; the fastest round is kept per cache, so load on a
 * shared machine hits all of them alike. WASM=<path> times another build of the kernels;
 * WASM_BASE=<path> adds a kivi2 cache on a second build (e.g. the previous commit's) to the
 * same rounds, so old and new kernels are compared next to the same f32 figure.
 *   node --import tsx bench/attend-kivi.ts [tokens=16384] [rounds=15] [shape name]
 */

import { execSync } from "node:child_process";
import { benchCache, fillCache } from "../bench/lib/cache.ts";
import { fillRandom } from "../bench/lib/executors.ts";
import type { KVCache } from "../src/cache/types.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";

const tokens = Number(process.argv[2] ?? 16384);
const rounds = Number(process.argv[3] ?? 15);
const only = process.argv[4];
const exec = await createWasmExecutor({ threads: 1, wasmPath: process.env.WASM || undefined });
const base = process.env.WASM_BASE
  ? await createWasmExecutor({ threads: 1, wasmPath: process.env.WASM_BASE })
  : null;
const shapes = [
  { name: "32q/8kv/128", nLayers: 1, nHeads: 32, nKvHeads: 8, headDim: 128, maxTokens: tokens },
  { name: "8q/4kv/64", nLayers: 1, nHeads: 8, nKvHeads: 4, headDim: 64, maxTokens: tokens },
].filter((s) => !only || s.name === only);
const load = () =>
  execSync("uptime")
    .toString()
    .trim()
    .replace(/.*load/, "load");
console.log(`${load()} (before)`);
for (const sh of shapes) {
  const runs: { label: string; cache: KVCache }[] = [];
  const add = async (label: string, spec: string, ex: typeof exec) => {
    const cache = await benchCache(spec, sh, ex);
    fillCache(cache, sh, tokens);
    runs.push({ label, cache });
  };
  await add("f32", "f32", exec);
  await add("kivi2", "kivi2", exec);
  if (base) await add("kivi2(base)", "kivi2", base);
  const q = fillRandom(new Float32Array(sh.nHeads * sh.headDim), 17);
  const out = new Float32Array(q.length);
  const best = runs.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    runs.forEach((c, i) => {
      const t0 = performance.now();
      c.cache.attend(0, q, Int32Array.of(tokens), out);
      best[i] = Math.min(best[i]!, performance.now() - t0);
    });
  }
  const f = best[0]!;
  const parts = runs.map((c, i) =>
    i === 0
      ? `f32 ${f.toFixed(2)} ms`
      : `${c.label} ${best[i]!.toFixed(2)} ms = ${(best[i]! / f).toFixed(3)}x f32`,
  );
  console.log(`${sh.name} ${tokens} tok: ${parts.join(" | ")}`);
  for (const c of runs) c.cache.dispose();
}
console.log(`${load()} (after)`);
exec.dispose();
base?.dispose();
