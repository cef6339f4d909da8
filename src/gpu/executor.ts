/**
 * The `webgpu` executor. The Executor interface is synchronous, and WebGPU can only return
 * results asynchronously (mapAsync), so its synchronous ops run the `ref` implementation and
 * count every call in `fallbacks` (written into results, so it is never silent). The GPU work
 * happens where the interface allows awaiting:
 *  - the KV cache (createCache with executor "webgpu" builds a GpuKVCache: encode, attention
 *    and eviction run on device buffers; append/attend return promises);
 *  - the whole model forward on device (src/gpu/forward.ts, GpuLlamaModel);
 *  - `gpu`: the async op list on host arrays (GpuOps) for callers that can await.
 */
import { countFallback, type Executor } from "../kernels/executor.ts";
import { createRefExecutor } from "../kernels/ref.ts";
import { destroyGpu, type GpuOptions, getGpu } from "./device.ts";
import { GpuOps } from "./ops.ts";

export interface WebGpuExecutor extends Executor {
  readonly name: "webgpu";
  readonly gpu: GpuOps;
}

export function isWebGpuExecutor(e: Executor): e is WebGpuExecutor {
  return e.name === "webgpu" && "gpu" in e;
}

export async function createWebGpuExecutor(options: GpuOptions = {}): Promise<WebGpuExecutor> {
  const ctx = await getGpu(options);
  const gpu = new GpuOps(ctx);
  const ref = createRefExecutor();
  const fallbacks = new Map<string, number>();
  const exec: WebGpuExecutor = {
    name: "webgpu",
    gpu,
    fallbacks,
    allocF32: ref.allocF32,
    allocU8: ref.allocU8,
    allocU16: ref.allocU16,
    allocI32: ref.allocI32,
    free: ref.free,
    encodeRows(...a) {
      countFallback(exec, "encodeRows");
      return ref.encodeRows(...a);
    },
    decodeRows(...a) {
      countFallback(exec, "decodeRows");
      ref.decodeRows(...a);
    },
    attend(a) {
      countFallback(exec, "attend");
      ref.attend(a);
    },
    matmul(...a) {
      countFallback(exec, "matmul");
      ref.matmul(...a);
    },
    rmsnorm(...a) {
      countFallback(exec, "rmsnorm");
      ref.rmsnorm(...a);
    },
    rope(...a) {
      countFallback(exec, "rope");
      ref.rope(...a);
    },
    swiglu(...a) {
      countFallback(exec, "swiglu");
      ref.swiglu(...a);
    },
    dispose() {
      gpu.rt.dispose();
      destroyGpu();
    },
  };
  return exec;
}
