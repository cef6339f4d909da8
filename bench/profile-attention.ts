/**
 * A focused profile target: fill one layer of the Llama-3-8B-shaped cache (32q/8kv/128) with
 * N tokens under a codec and call attend repeatedly on the wasm executor (1 thread).
 *   KVLAB_THREADS=1 node --cpu-prof --cpu-prof-dir=tmp/prof --import tsx bench/profile-attention.ts int8 16384 30
 *   node --import tsx bench/profile-summary.ts tmp/prof/<largest>.cpuprofile
 * The spec may be JSON, e.g. '{"codec":"int8","query":"q8"}'.
 */
import { getExecutor } from "../src/kernels/registry.ts";
import { benchCache, fillCache } from "./lib/cache.ts";
import { fillRandom } from "./lib/executors.ts";

const [spec = "int8", tokensArg = "16384", itersArg = "30"] = process.argv.slice(2);
const tokens = Number(tokensArg);
const shape = { nLayers: 1, nHeads: 32, nKvHeads: 8, headDim: 128, maxTokens: tokens };
const exec = await getExecutor("wasm");
const cache = await benchCache(spec.startsWith("{") ? JSON.parse(spec) : spec, shape, exec);
fillCache(cache, shape, tokens);
const q = fillRandom(new Float32Array(shape.nHeads * shape.headDim), 17); // (nHeads, 1, headDim)
const out = new Float32Array(q.length);
const t0 = performance.now();
for (let i = 0; i < Number(itersArg); i++) cache.attend(0, q, Int32Array.of(tokens), out);
const ms = (performance.now() - t0) / Number(itersArg);
console.log(
  `${spec} ${tokens} tokens: ${ms.toFixed(2)} ms per attend (mean), fallbacks ${JSON.stringify(Object.fromEntries(exec.fallbacks))}`,
);
cache.dispose();
exec.dispose();
