/** The executors this machine can run (src/kernels/registry.ts), each created once. */
import type { Executor } from "../../src/kernels/executor.ts";
import { EXECUTORS, getExecutor } from "../../src/kernels/registry.ts";

export interface AvailableExecutors {
  executors: Executor[];
  /** "skipped: ..." reasons for registered executors that cannot run here or failed to start. */
  unavailable: string[];
}

/** Executor names the bench knows about; those not registered are reported as skipped. */
const EXPECTED = ["ref", "wasm", "webgpu"];

let cached: Promise<AvailableExecutors> | undefined;

export function availableExecutors(): Promise<AvailableExecutors> {
  cached ??= (async () => {
    const executors: Executor[] = [];
    const unavailable: string[] = [];
    for (const name of EXPECTED)
      if (!Object.hasOwn(EXECUTORS, name))
        unavailable.push(`executor ${name}: not registered in src/kernels/registry.ts`);
    for (const [name, entry] of Object.entries(EXECUTORS)) {
      try {
        const probe = await entry.probe();
        if (!probe.available) {
          unavailable.push(`executor ${name}: ${probe.detail}`);
          continue;
        }
        executors.push(await getExecutor(name));
      } catch (err) {
        unavailable.push(`executor ${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return { executors, unavailable };
  })();
  return cached;
}

/** Deterministic pseudo-normal data (sum of uniforms) so runs see the same values. */
export function fillRandom(a: Float32Array, seed = 1, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  for (let i = 0; i < a.length; i++) a[i] = (next() + next() + next() - 1.5) * 2 * scale;
  return a;
}

/** Total fallbacks to ref counted by an executor so far, by op (a copy). */
export function fallbackSnapshot(exec: Executor): Map<string, number> {
  return new Map(exec.fallbacks);
}

/** Ops that fell back to ref since `before`, as "op xN, ..." ("" when none). */
export function fallbacksSince(exec: Executor, before: Map<string, number>): string {
  const out: string[] = [];
  for (const [op, n] of exec.fallbacks) {
    const d = n - (before.get(op) ?? 0);
    if (d > 0) out.push(`${op} x${d}`);
  }
  return out.join(", ");
}
