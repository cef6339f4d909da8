/** State shared by the sections of one run: options, budgets and the bandwidth baselines. */
import type { BenchArgs } from "./args.ts";
import type { MachineInfo } from "./machine.ts";
import { BUDGET_FULL, BUDGET_QUICK, type Budget, gbps, repsFor, timeEach } from "./measure.ts";
import { loadWasmBaseline, type WasmBaseline } from "./wasm-baseline.ts";

export interface BenchContext {
  args: BenchArgs;
  machine: MachineInfo;
  budget: Budget;
  wasm: WasmBaseline;
  /** GB/s of TypedArray.set copying `bytes` (measured once per size in this process). */
  memcpyGBps(bytes: number): Promise<number>;
  /** GB/s of the WASM SIMD read pass over `bytes` (once per size in this process unless `fresh`). */
  readGBps(bytes: number, fresh?: boolean): Promise<number>;
}

export async function createContext(args: BenchArgs, machine: MachineInfo): Promise<BenchContext> {
  const wasm = await loadWasmBaseline();
  const budget = args.quick ? BUDGET_QUICK : BUDGET_FULL;
  const memcpy = new Map<number, number>();
  const read = new Map<number, number>();
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
  };
}
