/**
 * tiered: a multi-level cache (in the spirit of KVQuant's dense-and-sparse / MiKV's mixed
 * precision, Yang et al. 2024, arXiv:2402.18096, and of CPU cache hierarchies): the `recent`
 * newest tokens stay in the cache's own codec, older ones move to a cheaper codec (re-encoded
 * once, from the higher-precision copy), and past `budget` the oldest are evicted. The cache
 * does the moving (it owns the codecs); this object only carries the settings.
 */
import { z } from "zod";
import { ConfigError } from "../../errors.ts";
import { makeCodec } from "../../quant/registry.ts";
import type { CodecOptions } from "../../quant/types.ts";
import type { RetentionPolicy, TierSpec } from "../policy.ts";
import { fullPolicy } from "./full.ts";
import { count } from "./options.ts";

/** The older tier's codec: a name, codec options, or { keys, values }; validated by constructing it. */
function tierCodecs(x: unknown, path: string): { keys: CodecOptions; values: CodecOptions } {
  const one = (c: unknown, p: string): CodecOptions => {
    const opts = (typeof c === "string" ? { type: c } : c) as CodecOptions;
    if (typeof opts !== "object" || opts === null)
      throw new ConfigError(p, `expected a codec name or { type: <codec>, ... }, got ${JSON.stringify(c)}`);
    return makeCodec(opts, p).options;
  };
  if (typeof x === "object" && x !== null && ("keys" in x || "values" in x)) {
    const o = x as { keys?: unknown; values?: unknown };
    return { keys: one(o.keys ?? "int4", `${path}.keys`), values: one(o.values ?? "int4", `${path}.values`) };
  }
  const c = one(x, path);
  return { keys: c, values: c };
}

export const tieredOptions = z.strictObject({
  type: z.literal("tiered"),
  /** Newest tokens kept in the cache's own codec: a count or a share (< 1) of the budget. */
  recent: count().default(0.25),
  budget: count(),
  /** Codec of the older tier: a name, codec options, or { keys, values } (default int4). */
  codec: z
    .unknown()
    .optional()
    .transform((x, ctx) => {
      try {
        return tierCodecs(x ?? "int4", "codec");
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        // Path relative to this field: "codec.keys.group" -> ["keys", "group"].
        ctx.addIssue({ code: "custom", path: e.path.split(".").slice(1), message: e.detail });
        return z.NEVER;
      }
    }),
});
export type TieredOptions = z.output<typeof tieredOptions>;

/** full's hooks (no eviction, no state, positions implicit: both tiers are FIFO by age) with the tiers. */
export function tieredPolicy(tiers: TierSpec): RetentionPolicy {
  return { ...fullPolicy(), name: "tiered", tiers };
}
