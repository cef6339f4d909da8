/**
 * The `webgpu` executor. The Executor interface is synchronous, and WebGPU can only return
 * results asynchronously (mapAsync), so it implements none of the synchronous ops: withFallbacks
 * runs `ref`'s and counts every call in `fallbacks` (written into results, so it is never
 * silent). The GPU work happens in its specialisation hooks, where the interface allows awaiting:
 *  - createCache: a GpuKVCache (encode, attention and eviction on device buffers; append/attend
 *    return promises) for every spec it holds (gpuCacheUnsupported), else null and the standard
 *    cache runs over the counted fallbacks (the reason is counted too: "createCache: <why>");
 *  - prepareModel: the whole model forward on device (src/gpu/forward.ts, GpuLlamaModel);
 *  - `gpu`: the async op list on host arrays (GpuOps) for callers that can await.
 */
import { countFallback, type Executor, type OpName, withFallbacks } from "../kernels/executor.ts";
import { createRefExecutor } from "../kernels/ref.ts";
import { destroyGpu, type GpuOptions, getGpu } from "./device.ts";
import { toGpuModel } from "./forward.ts";
import { GpuKVCache, gpuCacheUnsupported } from "./kv-cache.ts";
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
  const backend: Omit<WebGpuExecutor, OpName> = {
    name: "webgpu",
    gpu,
    fallbacks: new Map<string, number>(),
    allocF32: ref.allocF32,
    allocU8: ref.allocU8,
    allocU16: ref.allocU16,
    allocI32: ref.allocI32,
    free: ref.free,
    createCache(spec, shape, { kCodec, vCodec, policy, seed }) {
      const why = gpuCacheUnsupported(spec, policy);
      if (why === null) return new GpuKVCache(spec, shape, kCodec, vCodec, policy, gpu, seed);
      countFallback(exec, `createCache: ${why}`);
      return null;
    },
    prepareModel: (model) => toGpuModel(model, exec),
    dispose() {
      gpu.rt.dispose();
      destroyGpu();
    },
  };
  const exec: WebGpuExecutor = withFallbacks(backend, ref);
  return exec;
}
