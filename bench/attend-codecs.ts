/**
 * Decode-time attention, f32 vs f16 vs int8 vs int4 caches (SPECS=f32,int8 picks others; f32 first) on the wasm executor, 1 thread (issue 7's
 * codec-ratio targets), quick to rerun after a kernel change ("int4+q8" in SPECS: int4 with
 * query: q8; "int4+q8w": with query: q8w). All the caches are filled first, then each round times one attend per codec back to back and one SIMD read pass over the f32
 * cache's byte count; the fastest of the rounds is kept per codec, so load on a shared machine
 * hits all of them alike. WASM=<path> times another build of the kernels (e.g. an older commit's);
 * WASM_B=<path> also times every codec on that second build, in the same rounds right after the
 * first build's call (a before/after in one run: rows "<codec>@B"; then per codec the median over
 * rounds of that round's B/A time ratio, which a slow moment of a shared machine moves less than
 * the two best times). Shapes: 9q/3kv/64 is SmolLM2-135M's
 * decode (GQA groups of 3 query rows), 12q/3kv/64 the same with groups of 4.
 *   node --import tsx bench/attend-codecs.ts [tokens=16384] [rounds=20] [shape name]
 */

import { benchCache, fillCache } from "../bench/lib/cache.ts";
import { fillRandom } from "../bench/lib/executors.ts";
import { loadWasmBaseline } from "../bench/lib/wasm-baseline.ts";
import { PRESETS } from "../src/cache/presets.ts";
import type { CacheSpecInput } from "../src/cache/types.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";

const tokens = Number(process.argv[2] ?? 16384);
const rounds = Number(process.argv[3] ?? 20);
const only = process.argv[4];
const exec = await createWasmExecutor({ threads: 1, wasmPath: process.env.WASM || undefined });
const execB = process.env.WASM_B
  ? await createWasmExecutor({ threads: 1, wasmPath: process.env.WASM_B })
  : null;
const base = await loadWasmBaseline();
const shapes = [
  { name: "32q/8kv/128", nLayers: 1, nHeads: 32, nKvHeads: 8, headDim: 128, maxTokens: tokens },
  { name: "8q/4kv/64", nLayers: 1, nHeads: 8, nKvHeads: 4, headDim: 64, maxTokens: tokens },
  { name: "8q/8kv/64", nLayers: 1, nHeads: 8, nKvHeads: 8, headDim: 64, maxTokens: tokens },
  { name: "8q/8kv/128", nLayers: 1, nHeads: 8, nKvHeads: 8, headDim: 128, maxTokens: tokens },
  { name: "9q/3kv/64", nLayers: 1, nHeads: 9, nKvHeads: 3, headDim: 64, maxTokens: tokens },
  { name: "12q/3kv/64", nLayers: 1, nHeads: 12, nKvHeads: 3, headDim: 64, maxTokens: tokens },
].filter((s) => !only || s.name === only);
const specs0 = (process.env.SPECS ?? "f32,f16,int8,int4").split(",");
/** Each codec on the first build, then (WASM_B) on the second: "<codec>@B". */
const specs = execB ? specs0.flatMap((s) => [s, `${s}@B`]) : specs0;
/** "int4+q8" = the codec (or preset) with query: q8 (integer dot products for the scores); "+q8w" with query: q8w. */
const specOf = (s: string): CacheSpecInput => {
  const m = /^(.*)\+(q8w?)$/.exec(s);
  if (!m) return s;
  const name = m[1]!;
  return {
    ...(Object.hasOwn(PRESETS, name) ? { preset: name } : { codec: name }),
    query: m[2],
  } as CacheSpecInput;
};
for (const sh of shapes) {
  const caches = [];
  for (const spec of specs) {
    const onB = spec.endsWith("@B");
    const cache = await benchCache(specOf(onB ? spec.slice(0, -2) : spec), sh, onB ? execB! : exec);
    fillCache(cache, sh, tokens);
    caches.push(cache);
  }
  const bytes = 2 * tokens * sh.nKvHeads * sh.headDim * 4;
  const ptr = base.reserve(bytes);
  // Written first: untouched pages all map to one zero page and would read from cache.
  new Float32Array(base.memory.buffer, ptr, bytes / 4).fill(1);
  const q = fillRandom(new Float32Array(sh.nHeads * sh.headDim), 17);
  const out = new Float32Array(q.length);
  const best = specs.map(() => Infinity);
  const times: number[][] = specs.map(() => []); // (spec, round) ms
  let rb = Infinity;
  for (let r = 0; r < rounds; r++) {
    caches.forEach((c, i) => {
      const t0 = performance.now();
      c.attend(0, q, Int32Array.of(tokens), out);
      const dt = performance.now() - t0;
      times[i]!.push(dt);
      best[i] = Math.min(best[i]!, dt);
    });
    const t0 = performance.now();
    base.readSum(ptr, bytes / 4);
    rb = Math.min(rb, performance.now() - t0);
  }
  const f = best[0]!;
  const readGBs = bytes / rb / 1e6;
  const fG = bytes / f / 1e6;
  const rest = specs
    .slice(1)
    .map((spec, i) => `${spec} ${best[i + 1]!.toFixed(2)} ms = ${(best[i + 1]! / f).toFixed(2)}x`)
    .join(" | ");
  console.log(
    `${sh.name} ${tokens} tok: ${specs[0]} ${f.toFixed(2)} ms (${fG.toFixed(1)} GB/s = ${(fG / readGBs).toFixed(2)}x read ${readGBs.toFixed(1)} GB/s) | ${rest}`,
  );
  if (execB) {
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const ratios = specs0.map((s, i) => {
      const a = times[2 * i]!,
        b = times[2 * i + 1]!;
      return `${s} ${med(a.map((x, r) => b[r]! / x)).toFixed(3)}`;
    });
    console.log(`  B/A time, median of ${rounds} per-round ratios: ${ratios.join(" | ")}`);
  }
  for (const c of caches) c.dispose();
}
exec.dispose();
execB?.dispose();
