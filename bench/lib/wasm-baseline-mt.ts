/**
 * The multi-threaded read baseline: the same WASM SIMD read pass as wasm-baseline.ts, compiled
 * over an imported shared memory so that worker threads run it on one buffer, each over its own
 * contiguous slice. This is the DRAM bandwidth that T threads can draw together, the ceiling of
 * a forward whose decode step streams every weight once per token (the forward section's
 * roofline column compares with it).
 */
import { Worker } from "node:worker_threads";
import asc from "assemblyscript/asc";
import { READ_SUM_SOURCE } from "./wasm-baseline.ts";

const SOURCE = `
${READ_SUM_SOURCE}
export function heapBase(): usize {
  return (__heap_base + 63) & ~63;
}
`;

// Control words (Int32, own SharedArrayBuffer): [generation, done count]. Per worker i the slice
// to read is (ptr, n) in a Float64Array after them. A worker spins a little on the generation
// before sleeping, so the wake-up costs microseconds against a pass of milliseconds.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { module, memory, ctrl, slot } = workerData;
const c = new Int32Array(ctrl, 0, 2);
const job = new Float64Array(ctrl, 8 + 16 * slot, 2);
WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error("abort"); } } }).then((inst) => {
  const read = inst.exports.readSum;
  let gen = 0;
  let sink = 0;
  parentPort.postMessage("ready");
  for (;;) {
    for (let i = 0; i < 200000 && Atomics.load(c, 0) === gen; i++);
    Atomics.wait(c, 0, gen);
    gen = Atomics.load(c, 0);
    if (gen < 0) break;
    sink += read(job[0], job[1]);
    Atomics.add(c, 1, 1);
    Atomics.notify(c, 1);
  }
  if (sink === 0.5) console.log(sink);
});
`;

export interface ParallelRead {
  threads: number;
  /** One pass over `n` f32 at `ptr`, split in `threads` contiguous slices (main thread reads the first). */
  read(ptr: number, n: number): void;
  /** Base of a buffer of `bytes` in the shared memory (grown as needed). */
  reserve(bytes: number): number;
  memory: WebAssembly.Memory;
  dispose(): void;
}

const PAGE = 65536;

export async function loadParallelRead(threads: number, maxBytes: number): Promise<ParallelRead> {
  const maximumMemory = Math.ceil((maxBytes + (1 << 20)) / PAGE);
  const { binary, error, stderr } = await asc.compileString(SOURCE, {
    optimizeLevel: 3,
    runtime: "stub",
    enable: ["simd", "threads"],
    noAssert: true,
    importMemory: true,
    sharedMemory: true,
    initialMemory: 1,
    maximumMemory,
  });
  if (error || !binary)
    throw new Error(`compiling the parallel read kernel failed: ${error?.message}\n${stderr}`);
  // Asynchronous compile: the synchronous one stays in Liftoff (see wasm-baseline.ts).
  const module = await WebAssembly.compile(binary as Uint8Array<ArrayBuffer>);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: maximumMemory, shared: true });
  const env = { memory, abort: () => {} };
  const inst = await WebAssembly.instantiate(module, { env });
  const ex = inst.exports as unknown as { readSum(p: number, n: number): number; heapBase(): number };
  const ctrl = new SharedArrayBuffer(8 + 16 * threads);
  const c = new Int32Array(ctrl, 0, 2);
  const workers: Worker[] = [];
  for (let i = 1; i < threads; i++) {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, ctrl, slot: i } });
    await new Promise<void>((resolve, reject) => {
      w.once("message", () => resolve());
      w.once("error", reject);
    });
    w.unref();
    workers.push(w);
  }
  const jobs = Array.from({ length: threads }, (_, i) => new Float64Array(ctrl, 8 + 16 * i, 2));
  let sink = 0;
  return {
    threads,
    memory,
    reserve(bytes) {
      const base = ex.heapBase() >>> 0;
      const need = Math.ceil((base + bytes) / PAGE) - memory.buffer.byteLength / PAGE;
      if (need > 0) memory.grow(need);
      return base;
    },
    read(ptr, n) {
      // Slices of whole 16-float blocks (readSum's step).
      const per = Math.ceil(n / threads / 16) * 16;
      for (let i = 0; i < threads; i++) {
        const s = Math.min(n, i * per);
        jobs[i]![0] = ptr + 4 * s;
        jobs[i]![1] = Math.min(n, s + per) - s;
      }
      Atomics.store(c, 1, 0);
      Atomics.add(c, 0, 1);
      Atomics.notify(c, 0);
      sink += ex.readSum(jobs[0]![0]!, jobs[0]![1]!);
      for (;;) {
        const d = Atomics.load(c, 1);
        if (d >= threads - 1) break;
        Atomics.wait(c, 1, d, 50);
      }
      if (sink === 0.5) console.log(sink);
    },
    dispose() {
      Atomics.store(c, 0, -1);
      Atomics.notify(c, 0);
      for (const w of workers) void w.terminate();
    },
  };
}
