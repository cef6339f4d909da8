/**
 * Timing through tinybench, for a time budget after a warm-up. Every figure uses the fastest
 * sample: on a shared 2-core machine (load averages of 10+ while others build and test) a
 * sample is mostly slowed by being descheduled, never sped up, so the minimum is the best
 * estimate of what the code itself costs; the median is kept beside it in the JSON.
 */
import { Bench } from "tinybench";

export interface Timing {
  /** Fastest sample, ms. */
  ms: number;
  /** Median sample, ms. */
  p50: number;
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
  return {
    ms: r.latency.min,
    p50: r.latency.p50 ?? r.latency.mean,
    rme: r.latency.rme,
    samples: r.latency.samplesCount,
  };
}

/** GB/s (1e9 bytes per second) of `bytes` moved in `ms` milliseconds. */
export function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e6);
}

/**
 * Calls per sample so that one sample moves at least 4 MiB: a 256 KiB pass takes a few
 * microseconds, where timer overhead and resolution would dominate a single call.
 */
export function repsFor(bytes: number): number {
  return Math.max(1, Math.floor((4 << 20) / bytes));
}

/** time() of `reps` calls per sample, reported per call. */
export async function timeEach(name: string, fn: () => void, reps: number, budget: Budget): Promise<Timing> {
  const t = await time(
    name,
    () => {
      for (let i = 0; i < reps; i++) fn();
    },
    budget,
  );
  return { ...t, ms: t.ms / reps, p50: t.p50 / reps };
}
