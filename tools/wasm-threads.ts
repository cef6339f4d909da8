/**
 * Quick measurement of the wasm executor's worker pool: a large matmul (and one attention call)
 * with 1 and 2 threads on the same data. Usage: node --import tsx tools/wasm-threads.ts [n dIn dOut]
 * Prints ms per call (median of repeats) and the 1-thread / 2-thread ratio. Not a test: timings
 * belong here, not in assertions.
 */
import { createWasmExecutor, type WasmExecutor } from "../src/kernels/wasm.ts";
import { makeCodec } from "../src/quant/registry.ts";

const [n, dIn, dOut] = process.argv.slice(2).map(Number).concat([64, 576, 1536]).slice(0, 3) as [
  number,
  number,
  number,
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => void, reps = 15): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function fill(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.37) * 0.5;
  return a;
}

async function measure(threads: number) {
  const e: WasmExecutor = await createWasmExecutor({ threads });
  const x = fill(e.allocF32(n * dIn));
  const w = fill(e.allocF32(dOut * dIn));
  const out = e.allocF32(n * dOut);
  const mm = time(() => e.matmul(out, x, w, n, dIn, dOut));
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
  const at = time(() =>
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
    }),
  );
  e.dispose();
  return { mm, at };
}

const r1 = await measure(1);
const r2 = await measure(2);
const gflop = (2 * n * dIn * dOut) / 1e9;
console.log(
  `matmul n=${n} dIn=${dIn} dOut=${dOut}: 1 thread ${r1.mm.toFixed(2)} ms (${(gflop / (r1.mm / 1e3)).toFixed(1)} GFLOP/s), 2 threads ${r2.mm.toFixed(2)} ms (${(gflop / (r2.mm / 1e3)).toFixed(1)} GFLOP/s), speedup ${(r1.mm / r2.mm).toFixed(2)}x`,
);
console.log(
  `attend int8 4096 slots x 64 rows, d=64: 1 thread ${r1.at.toFixed(2)} ms, 2 threads ${r2.at.toFixed(2)} ms, speedup ${(r1.at / r2.at).toFixed(2)}x`,
);
