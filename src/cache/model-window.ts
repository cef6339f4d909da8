/**
 * A model's sliding window (Mistral 7B v0.1, arXiv:2310.06825: query p sees keys k with
 * p - k < W) imposed on whatever retention policy a cache was asked for. The model says so in
 * its KVShape (`window`, per layer, 0 = no window); createCache wraps the policy so that after
 * every attend each KV head also drops the keys no later query may see (positions <= newest + 1
 * - W). The model's forward feeds tokens past the window one at a time
 * (src/model/sliding-window.ts), so every query sees exactly its window.
 */
import { ConfigError } from "../errors.ts";
import type { RetentionPolicy } from "./policy.ts";
import type { KVShape } from "./types.ts";

/** The part of a model's KVShape that carries its attention window. */
export interface ModelWindow {
  /** Per layer (nLayers): the model's attention window in tokens, 0 = the whole context. */
  window?: readonly number[];
}

/** `policy`, also evicting what the model's window hides; the policy itself when there is no window. */
export function withModelWindow(policy: RetentionPolicy, shape: KVShape & ModelWindow): RetentionPolicy {
  const win = shape.window;
  if (!win || win.every((w) => !w)) return policy;
  if (policy.tiers)
    throw new ConfigError(
      "cache.policy",
      `policy ${policy.name} keeps its own tiers and cannot also honour the model's sliding window of ${Math.max(...win)} tokens; use another policy`,
    );
  // "full" trimmed to a window is the window policy (the caches treat both alike by name);
  // any other keeps its name (caches look some names up, e.g. policies that read keys).
  const name = policy.name === "full" ? "window" : policy.name;
  const evictions: RetentionPolicy["evictions"] = (view) => {
    const drop = policy.evictions(view);
    const w = win[view.layer] ?? 0;
    if (!w || view.nSlots === 0) return drop;
    const pos = view.positions;
    let newest = pos[0]!;
    for (let j = 1; j < view.nSlots; j++) newest = Math.max(newest, pos[j]!);
    const set = new Set(drop);
    for (let j = 0; j < view.nSlots; j++) if (pos[j]! <= newest + 1 - w) set.add(j);
    return set.size === drop.length ? drop : [...set];
  };
  // Everything else (hooks, flags, optional hooks added later) is the policy's own, bound to it.
  return new Proxy(policy, {
    get(target, key) {
      if (key === "name") return name;
      if (key === "evictions") return evictions;
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
