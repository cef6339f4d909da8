/**
 * Attention over the GPU-resident cache on a real GPU (the `webgpu` executor, Dawn over Vulkan):
 * per-call time of `GpuKVCache.attendDevice` measured over back-to-back dispatches (one query
 * token per head, as in decoding), achieved bandwidth (cache bytes read / time) and its ratio to
 * the device's own copy bandwidth measured in the same run (bytes read + written by
 * copyBufferToBuffer, the figure GPU vendors' copy tests report), for f32 / f16 / int8 / int4 at
 * 16K-64K tokens. Each cell's output is checked against the `ref` executor's attend over a cache
 * built from the same data, so a fast wrong kernel cannot pass unnoticed.
 *
 *   node --import tsx bench/gpu-attention.ts [--tokens 16384,32768,65536] [--codecs f32,f16,int8,int4]
 *                                            [--out results/bench/gpu-<device>.md] [--quick]
 *
 * Runs only where a WebGPU adapter exists (exits 2 naming why otherwise). On llvmpipe the
 * numbers say nothing about a GPU (see src/gpu/README.md); use --quick there to check the script.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createCache } from "../src/cache/create.ts";
import type { KVCache, KVShape } from "../src/cache/types.ts";
import { getGpu } from "../src/gpu/device.ts";
import { isWebGpuExecutor } from "../src/gpu/executor.ts";
import { GpuKVCache } from "../src/gpu/kv-cache.ts";
import { getExecutor } from "../src/kernels/registry.ts";
import { fillRandom } from "./lib/executors.ts";

interface Shape {
  label: string;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

const SHAPES: Shape[] = [
  { label: "32q/8kv/128 (Llama-3-8B)", nHeads: 32, nKvHeads: 8, headDim: 128 },
  { label: "8q/4kv/64 (small)", nHeads: 8, nKvHeads: 4, headDim: 64 },
];

const { values: args } = parseArgs({
  options: {
    tokens: { type: "string", default: "16384,32768,65536" },
    codecs: { type: "string", default: "f32,f16,int8,int4" },
    out: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const TOKENS = (args.quick ? "1024,4096" : args.tokens!).split(",").map(Number);
const CODECS = args.codecs!.split(",");
/** Wall time each measurement runs for (enough dispatches that launch overhead is amortised). */
const MEASURE_MS = args.quick ? 100 : 400;

const exec = await getExecutor("webgpu").catch((err: Error) => {
  console.error(`gpu-attention: no webgpu executor: ${err.message}`);
  process.exit(2);
});
if (!isWebGpuExecutor(exec)) throw new Error("the webgpu executor is not a WebGpuExecutor");
const ref = await getExecutor("ref");
const rt = exec.gpu.rt;
const { report } = await getGpu();
console.log(
  `adapter: ${report.vendor} ${report.device} (${report.description}), backend ${report.backend}, ${report.featureLevel}; maxStorageBufferBindingSize ${report.limits.maxStorageBufferBindingSize}`,
);

/** Repeat `step` (which only records GPU work) until MEASURE_MS have passed; ms per step. */
async function perCall(step: () => void | Promise<void>): Promise<number> {
  for (let i = 0; i < 3; i++) await step();
  await rt.sync();
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await step();
    await rt.sync();
    const ms = performance.now() - t0;
    if (ms >= MEASURE_MS || n >= 1 << 16) return ms / n;
    n = Math.min(1 << 16, Math.max(n * 2, Math.ceil((n * MEASURE_MS) / Math.max(ms, 0.01))));
  }
}

/** Device copy bandwidth, GB/s counting bytes read and written. */
async function copyGBps(bytes: number): Promise<number> {
  const a = rt.buffer(bytes, "copy src");
  const b = rt.buffer(bytes, "copy dst");
  try {
    const ms = await perCall(() => rt.copy(a, 0, b, 0, bytes));
    return (2 * bytes) / (ms * 1e6);
  } finally {
    a.destroy();
    b.destroy();
  }
}

/** Append `tokens` tokens of the same pseudo-random keys/values to layer 0 (chunks of 512). */
async function fill(cache: KVCache, kv: KVShape, tokens: number): Promise<void> {
  const CHUNK = 512;
  const k = fillRandom(new Float32Array(kv.nKvHeads * CHUNK * kv.headDim), 11); // (nKvHeads, CHUNK, headDim)
  const v = fillRandom(new Float32Array(k.length), 13);
  const pos = new Int32Array(CHUNK);
  for (let start = 0; start < tokens; start += CHUNK) {
    const n = Math.min(CHUNK, tokens - start);
    for (let i = 0; i < n; i++) pos[i] = start + i;
    const kk = n === CHUNK ? k : k.subarray(0, kv.nKvHeads * n * kv.headDim);
    await cache.append(0, kk, n === CHUNK ? v : v.subarray(0, kk.length), pos.subarray(0, n));
  }
}

interface Row {
  shape: string;
  codec: string;
  tokens: number;
  ms: number;
  cacheBytes: number;
  gbps: number;
  ofCopy: number;
  maxAbsErr: number;
}

const copyBw = await copyGBps(256 * 1024 * 1024);
console.log(`device copy bandwidth (read + write): ${copyBw.toFixed(0)} GB/s`);
const rows: Row[] = [];
for (const shape of SHAPES) {
  for (const codec of CODECS) {
    for (const tokens of TOKENS) {
      const kv: KVShape = { nLayers: 1, ...shape, maxTokens: tokens };
      const gpuCache = await createCache(codec, kv, { executor: exec });
      if (!(gpuCache instanceof GpuKVCache)) {
        console.log(
          `${shape.label} ${codec}: not a GPU cache here (${[...exec.fallbacks.keys()].join(", ")})`,
        );
        gpuCache.dispose();
        continue;
      }
      const refCache = await createCache(codec, kv, { executor: ref });
      try {
        await fill(gpuCache, kv, tokens);
        await fill(refCache, kv, tokens);
        const group = shape.nHeads / shape.nKvHeads;
        const qFloats = shape.nHeads * shape.headDim;
        const q = fillRandom(new Float32Array(qFloats), 17); // (nHeads, 1, headDim)
        const qPos = Int32Array.of(tokens);
        // attendDevice's input: q at word 0, then the (group * nQ) query-row positions.
        const qin = rt.buffer((qFloats + group) * 4, "bench q");
        rt.upload(qin, q, 0);
        rt.upload(qin, new Int32Array(group).fill(tokens), qFloats * 4);
        const outBuf = rt.buffer(qFloats * 4, "bench out");
        const ms = await perCall(() => gpuCache.attendDevice(0, qin, qFloats, qPos, outBuf));
        qin.destroy();
        outBuf.destroy();
        const got = new Float32Array(qFloats);
        await gpuCache.attend(0, q, qPos, got);
        const want = new Float32Array(qFloats);
        await refCache.attend(0, q, qPos, want);
        let maxAbsErr = 0;
        for (let i = 0; i < qFloats; i++) maxAbsErr = Math.max(maxAbsErr, Math.abs(got[i]! - want[i]!));
        const cacheBytes = gpuCache.memory().total;
        const gbps = cacheBytes / (ms * 1e6);
        const row = {
          shape: shape.label,
          codec,
          tokens,
          ms,
          cacheBytes,
          gbps,
          ofCopy: gbps / copyBw,
          maxAbsErr,
        };
        rows.push(row);
        console.log(
          `${shape.label} ${codec} ${tokens}: ${ms.toFixed(3)} ms, ${(cacheBytes / 2 ** 20).toFixed(1)} MiB, ${gbps.toPrecision(4)} GB/s (${(100 * row.ofCopy).toFixed(1)}% of copy), |gpu - ref| max ${maxAbsErr.toExponential(2)}`,
        );
      } finally {
        gpuCache.dispose();
        refCache.dispose();
      }
    }
  }
}

const f32Ms = new Map(rows.filter((r) => r.codec === "f32").map((r) => [`${r.shape} ${r.tokens}`, r.ms]));
const lines = [
  `# Attention over the GPU cache: ${report.vendor} ${report.device}`,
  "",
  `Adapter: ${report.description} (Dawn, backend ${report.backend}, ${report.featureLevel}). One query token per head, one layer, full cache; time per attend over back-to-back dispatches (\`GpuKVCache.attendDevice\`, flash-decoding split over ${GpuKVCache.splitSlots}-slot ranges). Device copy bandwidth in the same run: **${copyBw.toFixed(0)} GB/s** (copyBufferToBuffer of 256 MiB, bytes read + written). Achieved = cache bytes / time. |gpu - ref| is the largest difference from the \`ref\` executor's attend over the same data.`,
  "",
  "Command: `node --import tsx bench/gpu-attention.ts" + (args.quick ? " --quick" : "") + "`",
  "",
  "| shape | codec | tokens | ms / attend | cache MiB | achieved GB/s | of copy bandwidth | time / f32 | max abs err vs ref |",
  "|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ...rows.map((r) => {
    const base = f32Ms.get(`${r.shape} ${r.tokens}`);
    return `| ${r.shape} | ${r.codec} | ${r.tokens} | ${r.ms.toFixed(3)} | ${(r.cacheBytes / 2 ** 20).toFixed(1)} | ${r.gbps.toPrecision(4)} | ${(100 * r.ofCopy).toFixed(1)}% | ${base ? (r.ms / base).toFixed(2) : "-"} | ${r.maxAbsErr.toExponential(2)} |`;
  }),
  "",
];
if (args.out) writeFileSync(args.out, lines.join("\n"));
console.log(lines.join("\n"));
exec.dispose?.();
