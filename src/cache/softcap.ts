/**
 * Attention logit soft-capping (Gemma 2, arXiv:2408.00118 section 2; HF modeling_gemma2's
 * attn_logit_softcapping): each scaled score s becomes cap * tanh(s / cap) before the softmax
 * and before masking. It changes attention itself, which the caches compute (they read the
 * compressed K/V), so the model states it in its KVShape (`softcap`) and createCache builds a
 * cache that applies it:
 *  - the standard cache's executor is wrapped (withSoftcap) so that every attend and
 *    channelAttend call carries AttendArgs.softcap; `ref` applies it, `wasm` runs those calls
 *    through `ref` (counted as "attend (soft-capping)"), `webgpu`'s synchronous ops are `ref`'s;
 *  - the GPU cache's attention kernels apply it themselves (src/gpu/kernels/attention.ts, the
 *    shape's cap in their parameters);
 *  - the forward refuses a cache whose shape lacks the model's cap (assertCacheSoftcap), so a
 *    cache built for another shape never silently attends without it.
 */
import { ConfigError } from "../errors.ts";
import type { AttendArgs, ChannelAttendArgs, Executor } from "../kernels/executor.ts";
import type { KVShape } from "./types.ts";

/** The part of a model's KVShape that carries its attention soft-cap. */
export interface ModelSoftcap {
  /** Attention scores (already scaled) become softcap * tanh(score / softcap) before the softmax. */
  softcap?: number;
}

/** The shape's attention soft-cap, or undefined; a cap that is not a finite number > 0 is refused. */
export function softcapOf(shape: KVShape): number | undefined {
  const cap = (shape as KVShape & ModelSoftcap).softcap;
  if (cap !== undefined && !(cap > 0 && Number.isFinite(cap)))
    throw new ConfigError("softcap", `attention soft-cap must be a finite number > 0, got ${cap}`);
  return cap;
}

/**
 * `exec` with the shape's soft-cap added to every attend / channelAttend call; `exec` itself
 * when the shape has none. Everything else is the executor's own, bound to it.
 */
export function withSoftcap(exec: Executor, shape: KVShape): Executor {
  const cap = softcapOf(shape);
  if (cap === undefined) return exec;
  const attend = (a: AttendArgs) => exec.attend({ ...a, softcap: cap });
  const channelAttend = (a: ChannelAttendArgs) => exec.channelAttend({ ...a, softcap: cap });
  return new Proxy(exec, {
    get(target, key) {
      if (key === "attend") return attend;
      if (key === "channelAttend") return channelAttend;
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** Throw unless `cacheShape` carries the model's attention soft-cap (the cache then applies it). */
export function assertCacheSoftcap(modelCap: number | undefined, cacheShape: KVShape): void {
  const got = softcapOf(cacheShape);
  if (modelCap === got) return;
  throw new ConfigError(
    "cache",
    modelCap === undefined
      ? `the cache soft-caps attention scores at ${got} but this model does not; build the cache from this model's kvShape()`
      : `this model soft-caps attention scores at ${modelCap} (attn_logit_softcapping) and the cache's shape ${got === undefined ? "has no soft-cap" : `says ${got}`}; build the cache with createCache(spec, model.kvShape(n))`,
  );
}
