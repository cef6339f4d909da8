/** State shared by the sections of one run: options, budgets and the bandwidth baselines. */
import type { BenchArgs } from "./args.ts";
import type { MachineInfo } from "./machine.ts";
import { BUDGET_FULL, BUDGET_QUICK, type Budget, gbps, repsFor, timeEach } from "./measure.ts";
import { loadWasmBaseline, type WasmBaseline } from "./wasm-baseline.ts";
import { loadParallelRead, type ParallelRead } from "./wasm-baseline-mt.ts";

export interface BenchContext {
  args: BenchArgs;
  machine: MachineInfo;
  budget: Budget;
  wasm: WasmBaseline;
  /** GB/s of TypedArray.set copying `bytes` (measured once per size in this process). */
  memcpyGBps(bytes: number): Promise<number>;
  /** GB/s of the WASM SIMD read pass over `bytes` (once per size in this process unless `fresh`). */
  readGBps(bytes: number, fresh?: boolean): Promise<number>;
  /**
   * GB/s of the same read pass over `bytes` split between `threads` threads (workers over one
   * shared memory, each reading a contiguous slice); once per size and thread count.
   */
  readGBpsThreads(bytes: number, threads: number): Promise<number>;
  /** Stop the baseline's worker threads. */
  dispose(): void;
}

/** The largest buffer the multi-threaded read baseline is asked for (DRAM-sized). */
const MT_MAX_BYTES = 256 * 2 ** 20;

export async function createContext(args: BenchArgs, machine: MachineInfo): Promise<BenchContext> {
  const wasm = await loadWasmBaseline();
  const budget = args.quick ? BUDGET_QUICK : BUDGET_FULL;
  const memcpy = new Map<number, number>();
  const read = new Map<number, number>();
  const readMt = new Map<string, number>();
  const pools = new Map<number, ParallelRead>();
  return {
    args,
    machine,
    budget,
    wasm,
    async memcpyGBps(bytes) {
      const hit = memcpy.get(bytes);
      if (hit !== undefined) return hit;
      const n = Math.ceil(bytes / 4);
      const src = new Float32Array(n).fill(1);
      const dst = new Float32Array(n);
      const t = await timeEach(`memcpy ${bytes}`, () => dst.set(src), repsFor(bytes), budget);
      const g = gbps(bytes, t.ms);
      memcpy.set(bytes, g);
      return g;
    },
    async readGBps(bytes, fresh = false) {
      const hit = read.get(bytes);
      if (hit !== undefined && !fresh) return hit;
      const n = Math.ceil(bytes / 64) * 16; // readSum takes multiples of 16 floats
      const base = wasm.reserve(n * 4);
      new Float32Array(wasm.memory.buffer, base, n).fill(1);
      // A re-measure sits next to every attention figure: a shorter budget keeps the run short.
      const b = fresh ? { ...budget, time: Math.min(budget.time, 120) } : budget;
      const t = await timeEach(`read ${bytes}`, () => wasm.readSum(base, n), repsFor(bytes), b);
      const g = gbps(n * 4, t.ms);
      read.set(bytes, g);
      return g;
    },
    async readGBpsThreads(bytes, threads) {
      const key = `${bytes}/${threads}`;
      const hit = readMt.get(key);
      if (hit !== undefined) return hit;
      if (bytes > MT_MAX_BYTES) throw new Error(`readGBpsThreads: at most ${MT_MAX_BYTES} bytes`);
      let p = pools.get(threads);
      if (!p) {
        p = await loadParallelRead(threads, MT_MAX_BYTES);
        pools.set(threads, p);
      }
      const n = Math.ceil(bytes / 64) * 16;
      const base = p.reserve(n * 4);
      new Float32Array(p.memory.buffer, base, n).fill(1);
      const pr = p;
      const t = await timeEach(`read ${bytes} x${threads}`, () => pr.read(base, n), repsFor(bytes), budget);
      const g = gbps(n * 4, t.ms);
      readMt.set(key, g);
      return g;
    },
    dispose() {
      for (const p of pools.values()) p.dispose();
      pools.clear();
    },
  };
}
