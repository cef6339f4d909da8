// Run inside a fresh project that installed the kvlab tarball: imports the compiled package on
// plain Node (no TypeScript loader), attends through an int8 cache on the default (wasm)
// executor and checks the output against an f32 cache on the same inputs.
import { createCache, EXECUTORS } from "kvlab";

const shape = { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 64, maxTokens: 256 };
const n = 200;
let s = 12345;
const rand = () => {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  return s / 2 ** 32 - 0.5;
};
const fill = (len) => Float32Array.from({ length: len }, rand);
const k = fill(shape.nKvHeads * n * shape.headDim);
const v = fill(shape.nKvHeads * n * shape.headDim);
const q = fill(shape.nHeads * shape.headDim);
const positions = Int32Array.from({ length: n }, (_, i) => i);
const qPositions = Int32Array.of(n - 1);

async function attendWith(spec) {
  const cache = await createCache(spec, shape);
  await cache.append(0, k, v, positions);
  const out = new Float32Array(shape.nHeads * shape.headDim);
  await cache.attend(0, q, qPositions, out);
  return { out, memory: cache.memory(), executor: cache.stats().executor };
}

const ref = await attendWith("f32");
const int8 = await attendWith("int8");
let maxErr = 0;
let maxRef = 0;
for (let i = 0; i < ref.out.length; i++) {
  maxErr = Math.max(maxErr, Math.abs(ref.out[i] - int8.out[i]));
  maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
}
if (!(maxRef > 0)) throw new Error("f32 attention output is all zero");
if (!(maxErr < 0.02)) throw new Error(`int8 vs f32 attention differs by ${maxErr} (tolerance 0.02)`);
if (!(int8.memory.total < ref.memory.total))
  throw new Error(`int8 cache (${int8.memory.total} B) is not smaller than f32 (${ref.memory.total} B)`);
console.log(
  JSON.stringify({
    node: process.version,
    executors: Object.keys(EXECUTORS),
    executor: int8.executor,
    maxAbsErr: maxErr,
    bytes: { f32: ref.memory.total, int8: int8.memory.total },
  }),
);
process.exit(0);
