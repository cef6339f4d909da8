/**
 * Quick measurement of the wasm executor's worker pool: a large matmul (and one attention call)
 * with 1 and 2 threads on the same data. Usage: node --import tsx tools/wasm-threads.ts [n dIn dOut]
 * Prints ms per call and the 1-thread / 2-thread ratio. The two executors run interleaved and
 * the minimum over repeats is reported: on a shared, loaded machine the minimum is the least
 * disturbed run (the median is printed too). Not a test: timings belong here, not in assertions.
 */
import { createWasmExecutor, type WasmExecutor } from "../src/kernels/wasm.ts";
import { makeCodec } from "../src/quant/registry.ts";

const [n, dIn, dOut] = process.argv.slice(2).map(Number).concat([64, 576, 1536]).slice(0, 3) as [
  number,
  number,
  number,
];

const REPS = 40;

function stats(xs: number[]): { min: number; median: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]! };
}

function timeOnce(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

function fill(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.37) * 0.5;
  return a;
}

async function setup(threads: number) {
  const e: WasmExecutor = await createWasmExecutor({ threads });
  const x = fill(e.allocF32(n * dIn));
  const w = fill(e.allocF32(dOut * dIn));
  const out = e.allocF32(n * dOut);
  const mm = () => e.matmul(out, x, w, n, dIn, dOut);
  // Attention: 4096 cached int8 tokens, head_dim 64, 64 query rows (prefill-like) on one KV head.
  const codec = makeCodec("int8");
  const d = 64;
  const nSlots = 4096;
  const nRows = 64;
  const L = codec.layout(d);
  const rows = () => ({
    payload: e.allocU8(L.payloadBytes * nSlots),
    scales: e.allocU16(L.scalesPerRow * nSlots),
    zeros: e.allocU16(L.zerosPerRow * nSlots),
  });
  const k = rows();
  const v = rows();
  const src = fill(e.allocF32(nSlots * d));
  e.encodeRows(codec, src, nSlots, d, k, 0);
  e.encodeRows(codec, src, nSlots, d, v, 0);
  const q = fill(e.allocF32(nRows * d));
  const qPos = e.allocI32(nRows).fill(nSlots);
  const slotPos = e.allocI32(nSlots).map((_, j) => j);
  const o = e.allocF32(nRows * d);
  const at = () =>
    e.attend({
      kCodec: codec,
      vCodec: codec,
      headDim: d,
      q,
      qPos,
      nRows,
      k,
      v,
      slotPos,
      nSlots,
      scale: 0.125,
      out: o,
    });
  return { e, mm, at };
}

type Stats = { min: number; median: number };
const runs = [await setup(1), await setup(2)];
const times = runs.map(() => ({ mm: [] as number[], at: [] as number[] }));
for (let rep = 0; rep <= REPS; rep++)
  runs.forEach((r, i) => {
    const mm = timeOnce(r.mm);
    const at = timeOnce(r.at);
    if (rep > 0) {
      // rep 0 warms up
      times[i]!.mm.push(mm);
      times[i]!.at.push(at);
    }
  });
const pool = runs[1]!.e.poolStats();
for (const r of runs) r.e.dispose();
const [m1, m2] = times.map((t) => stats(t.mm)) as [Stats, Stats];
const [a1, a2] = times.map((t) => stats(t.at)) as [Stats, Stats];
const gflop = (2 * n * dIn * dOut) / 1e9;
const f = (s: Stats) => `${s.min.toFixed(2)} ms (median ${s.median.toFixed(2)})`;
console.log(
  `matmul n=${n} dIn=${dIn} dOut=${dOut}: 1 thread ${f(m1)} = ${(gflop / (m1.min / 1e3)).toFixed(1)} GFLOP/s; ` +
    `2 threads ${f(m2)} = ${(gflop / (m2.min / 1e3)).toFixed(1)} GFLOP/s; speedup ${(m1.min / m2.min).toFixed(2)}x`,
);
console.log(
  `attend int8, 4096 slots x 64 rows, d=64: 1 thread ${f(a1)}; 2 threads ${f(a2)}; speedup ${(a1.min / a2.min).toFixed(2)}x`,
);
console.log(
  `2-thread pool: ${pool?.parallel} jobs in parallel, ${pool?.sequential} on the main thread after ${pool?.backoffs} back-offs from late workers`,
);
