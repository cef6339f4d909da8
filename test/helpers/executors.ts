/**
 * The executors the contract suites run over: every entry of the executor registry whose
 * probe says it is available on this machine. `ref` is always first (it is the oracle the
 * others are compared to). When the `wasm` or `webgpu` executor lands in EXECUTORS, every
 * suite picks it up with no change here.
 *
 * KVLAB_TEST_EXECUTORS=ref,wasm restricts the list (e.g. to debug one executor).
 */
import type { AttendArgs, Executor } from "../../src/kernels/executor.ts";
import { disposeExecutors, EXECUTORS, getExecutor } from "../../src/kernels/registry.ts";
import type { EncodedRows, RowLayout } from "../../src/quant/types.ts";

export interface ExecutorInfo {
  name: string;
  available: boolean;
  detail: string;
}

let probed: Promise<{ executors: Executor[]; info: ExecutorInfo[] }> | undefined;

function probeAll(): Promise<{ executors: Executor[]; info: ExecutorInfo[] }> {
  probed ??= (async () => {
    const only = process.env.KVLAB_TEST_EXECUTORS?.split(",").map((s) => s.trim());
    const names = Object.keys(EXECUTORS).sort((a, b) => (a === "ref" ? -1 : b === "ref" ? 1 : 0));
    const executors: Executor[] = [];
    const info: ExecutorInfo[] = [];
    for (const name of names) {
      if (only && name !== "ref" && !only.includes(name)) {
        info.push({ name, available: false, detail: "excluded by KVLAB_TEST_EXECUTORS" });
        continue;
      }
      const probe = await EXECUTORS[name]!.probe();
      info.push({ name, ...probe });
      if (probe.available) executors.push(await getExecutor(name));
    }
    return { executors, info };
  })();
  return probed;
}

/** Every available executor, `ref` first. */
export async function availableExecutors(): Promise<Executor[]> {
  return (await probeAll()).executors;
}

/** Every available executor other than `ref` (the ones compared against it). */
export async function executorsUnderTest(): Promise<Executor[]> {
  return (await availableExecutors()).filter((e) => e.name !== "ref");
}

/** The reference executor. */
export async function refExecutor(): Promise<Executor> {
  return getExecutor("ref");
}

/** A skip reason for parity tests when only `ref` is available (printed by node:test). */
export async function skipUnlessOtherExecutors(): Promise<string | false> {
  const { executors, info } = await probeAll();
  if (executors.some((e) => e.name !== "ref")) return false;
  const others = info.filter((i) => i.name !== "ref");
  return others.length === 0
    ? "only the ref executor is registered (no wasm/webgpu in EXECUTORS yet)"
    : `no executor besides ref is available: ${others.map((i) => `${i.name}: ${i.detail}`).join("; ")}`;
}

/** Release executors (a GPU device keeps node alive otherwise); call from `after`. */
export async function disposeTestExecutors(): Promise<void> {
  await disposeExecutors();
  probed = undefined;
}

/** Encoded storage for nRows rows in the executor's own memory (its fast path). */
export function allocRowsOn(exec: Executor, layout: RowLayout, nRows: number): EncodedRows {
  return {
    payload: exec.allocU8(layout.payloadBytes * nRows),
    scales: exec.allocU16(layout.scalesPerRow * nRows),
    zeros: exec.allocU16(layout.zerosPerRow * nRows),
  };
}

export function freeRowsOn(exec: Executor, rows: EncodedRows): void {
  exec.free(rows.payload);
  exec.free(rows.scales);
  exec.free(rows.zeros);
}

/**
 * The executor's own attend kernel: the async device op where the executor has a device op list
 * (webgpu's `gpu`, whose synchronous `attend` is a counted ref fallback), else `attend`. The
 * caller checks `exec.fallbacks.get("attend")` did not grow, so a parity test never compares
 * ref with ref.
 */
export function deviceAttend(exec: Executor): (a: AttendArgs) => Promise<void> | void {
  const gpu = (exec as { gpu?: { attend(a: AttendArgs): Promise<void> } }).gpu;
  return gpu ? (a) => gpu.attend(a) : (a) => exec.attend(a);
}

/** An f32 array in the executor's memory holding a copy of `src`. */
export function f32On(exec: Executor, src: ArrayLike<number>): Float32Array {
  const a = exec.allocF32(src.length);
  a.set(src);
  return a;
}

/**
 * fast-check runs for a property on `exec`: the full count on CPU executors; a quarter (at least
 * 3) on webgpu, where every encode/attend is a dispatch plus a readback (slow on llvmpipe in CI).
 */
export function runsFor(exec: Executor, runs: number): number {
  return exec.name === "webgpu" ? Math.max(3, Math.floor(runs / 4)) : Math.max(1, Math.floor(runs));
}
