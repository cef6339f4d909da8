/**
 * Timing through tinybench. Every figure is the median latency of a task (robust to the
 * noise of a shared 2-core machine), measured for a time budget after a warm-up.
 */
import { Bench } from "tinybench";

export interface Timing {
  /** Median latency, ms. */
  ms: number;
  /** Relative margin of error of the mean, percent. */
  rme: number;
  samples: number;
}

export interface Budget {
  /** Measuring time per task, ms. */
  time: number;
  /** Minimum iterations per task. */
  iterations: number;
  warmupTime: number;
}

export const BUDGET_FULL: Budget = { time: 300, iterations: 5, warmupTime: 50 };
export const BUDGET_QUICK: Budget = { time: 80, iterations: 3, warmupTime: 20 };

/** Time one synchronous function. */
export async function time(name: string, fn: () => void, budget: Budget): Promise<Timing> {
  const bench = new Bench({
    name,
    time: budget.time,
    iterations: budget.iterations,
    warmupTime: budget.warmupTime,
    warmupIterations: 1,
    throws: true,
  });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0]!.result;
  if (!("latency" in r) || !r.latency) throw new Error(`benchmark ${name} produced no timing (${r.state})`);
  return { ms: r.latency.p50 ?? r.latency.mean, rme: r.latency.rme, samples: r.latency.samplesCount };
}

/** GB/s (1e9 bytes per second) of `bytes` moved in `ms` milliseconds. */
export function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e6);
}
