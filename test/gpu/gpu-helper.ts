/**
 * Shared set-up of the GPU tests: one device per test process, or a printed skip reason when
 * this machine has no WebGPU adapter (on CPU-only machines install Mesa's llvmpipe: see README).
 */
import { after } from "node:test";
import { destroyGpu, getGpu } from "../../src/gpu/device.ts";
import { GpuOps } from "../../src/gpu/ops.ts";

export interface GpuTestEnv {
  ops?: GpuOps;
  /** false when a device is available, else the reason (node:test prints it). */
  skip: string | false;
}

export async function gpuTestEnv(): Promise<GpuTestEnv> {
  try {
    const ctx = await getGpu();
    after(() => destroyGpu());
    return { ops: new GpuOps(ctx), skip: false };
  } catch (err) {
    return { skip: `no WebGPU device: ${(err as Error).message}` };
  }
}

/** A deterministic PRNG (mulberry32) so failures reproduce. (src/rng.ts) */
export { mulberry32 as rng } from "../../src/rng.ts";
