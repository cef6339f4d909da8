/**
 * Executor registry: name -> async factory. Executors are created once per process and
 * shared (the WASM module and the GPU device are process-wide resources).
 */
import { ConfigError } from "../errors.ts";
import type { Executor, ExecutorName } from "./executor.ts";
import { createRefExecutor } from "./ref.ts";
import { createWasmExecutor, probeWasm } from "./wasm.ts";

export interface ExecutorEntry {
  name: ExecutorName;
  description: string;
  create(): Promise<Executor>;
  /** Whether it can run here, and why not. */
  probe(): Promise<{ available: boolean; detail: string }>;
}

export const EXECUTORS: Record<string, ExecutorEntry> = {
  ref: {
    name: "ref",
    description: "plain TypeScript reference (the oracle)",
    create: async () => createRefExecutor(),
    probe: async () => ({ available: true, detail: "always available" }),
  },
  wasm: {
    name: "wasm",
    description: "AssemblyScript v128 SIMD kernels over shared memory, worker threads ($KVLAB_THREADS)",
    create: () => createWasmExecutor(),
    probe: () => probeWasm(),
  },
  webgpu: {
    name: "webgpu",
    description: "WGSL kernels on Dawn's WebGPU (Vulkan on a GPU, OpenGL on Mesa llvmpipe without one)",
    // Loaded on demand: importing Dawn costs time and native memory that CPU runs never need.
    create: async () => (await import("../gpu/executor.ts")).createWebGpuExecutor(),
    probe: async () => (await import("../gpu/device.ts")).probeGpu(),
  },
};

/** The executor used when none is named. */
export const DEFAULT_EXECUTOR: ExecutorName = "wasm";

const instances = new Map<string, Promise<Executor>>();

export function getExecutor(name: string = DEFAULT_EXECUTOR): Promise<Executor> {
  const entry = Object.hasOwn(EXECUTORS, name) ? EXECUTORS[name] : undefined;
  if (!entry)
    throw new ConfigError(
      "executor",
      `unknown executor "${name}"; known: ${Object.keys(EXECUTORS).join(", ")}`,
    );
  let inst = instances.get(name);
  if (!inst) {
    inst = entry.create();
    instances.set(name, inst);
  }
  return inst;
}

/** Dispose every executor created in this process (lets node exit when a GPU device is held). */
export async function disposeExecutors(): Promise<void> {
  for (const inst of instances.values()) (await inst).dispose();
  instances.clear();
}
