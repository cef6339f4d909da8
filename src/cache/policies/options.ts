/**
 * Option schemas shared by the policies (zod). Each policy file declares its options once, as a
 * strict zod object with its defaults; the registry parses specs with it (errors name the spec
 * path) and the experiment JSON Schema is generated from the same objects.
 */
import { z } from "zod";
import { ConfigError } from "../../errors.ts";

const COUNT_MSG = "a token count (an integer >= 1) or a fraction in (0, 1)";

/**
 * A count: an integer >= 1 (tokens) or a fraction in (0, 1) (of the tokens seen, or of the
 * budget for `recent` and `sinks`).
 */
export const count = () =>
  z
    .number({
      error: (i) =>
        i.input === undefined
          ? `needs ${COUNT_MSG}`
          : `expected ${COUNT_MSG}, got ${JSON.stringify(i.input)}`,
    })
    .refine((v) => Number.isFinite(v) && v > 0 && (v < 1 || Number.isInteger(v)), {
      error: (i) => `expected ${COUNT_MSG}, got ${JSON.stringify(i.input)}`,
    });

/** A count that may also be 0 (none). */
export const countOrZero = () =>
  z
    .number({ error: (i) => `expected 0 or ${COUNT_MSG}, got ${JSON.stringify(i.input)}` })
    .refine((v) => v === 0 || (Number.isFinite(v) && v > 0 && (v < 1 || Number.isInteger(v))), {
      error: (i) => `expected 0 or ${COUNT_MSG}, got ${JSON.stringify(i.input)}`,
    });

/** An integer >= min. */
export const intAtLeast = (min: number) =>
  z
    .number({ error: (i) => `expected an integer >= ${min}, got ${JSON.stringify(i.input)}` })
    .refine((v) => Number.isInteger(v) && v >= min, {
      error: (i) => `expected an integer >= ${min}, got ${JSON.stringify(i.input)}`,
    });

/** A number within [lo, hi]. */
export const numberIn = (lo: number, hi: number) =>
  z
    .number({ error: (i) => `expected a number in [${lo}, ${hi}], got ${JSON.stringify(i.input)}` })
    .refine((v) => Number.isFinite(v) && v >= lo && v <= hi, {
      error: (i) => `expected a number in [${lo}, ${hi}], got ${JSON.stringify(i.input)}`,
    });

/**
 * Parse a policy spec with its schema; the first issue becomes a ConfigError naming the path of
 * the field (`caches[3].policy.budget`), an unknown key naming that key.
 */
export function parseOptions<S extends z.ZodType>(schema: S, spec: unknown, path: string): z.output<S> {
  const r = schema.safeParse(spec);
  if (r.success) return r.data;
  const issues = r.error.issues;
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0]!;
  const type = (spec as { type?: unknown }).type;
  if (issue.code === "unrecognized_keys") {
    const where = [path, ...issue.path.map(String), issue.keys[0]].join(".");
    if (issue.path.length > 0) throw new ConfigError(where, "unknown option");
    const known = Object.keys((schema as unknown as { shape?: object }).shape ?? {}).filter(
      (k) => k !== "type",
    );
    throw new ConfigError(
      where,
      `unknown option for policy ${String(type)}${known.length ? ` (known: ${known.join(", ")})` : ""}`,
    );
  }
  const where = [path, ...issue.path.map(String)].join(".");
  const message =
    issue.code === "invalid_type" && issue.input === undefined && issue.path.length === 1
      ? `policy ${String(type)} needs ${String(issue.path[0])}: ${issue.message.replace(/^needs /, "")}`
      : issue.message;
  throw new ConfigError(where, message);
}

/** `recent` (or `sinks`) as a count or a share of the budget b; clamped to [0, b]. */
export function shareOf(value: number, b: number): number {
  const n = value < 1 ? Math.floor(value * b) : Math.floor(value);
  return Math.max(0, Math.min(n, b));
}

/**
 * `merge`, an option of every eviction policy (declared here once; the registry adds it to each
 * evicting policy's schema): what happens to an evicted token's value. none (the default when
 * absent): dropped. nearest: averaged into the kept token whose stored key is most similar,
 * weighted by the tokens each stands for (D2O / CaM style; the exact rule: src/cache/merge.ts).
 * Optional rather than defaulted so that specs without it resolve exactly as before.
 */
export const mergeOption = () =>
  z
    .enum(["none", "nearest"], {
      error: (i) => `expected "none" or "nearest", got ${JSON.stringify(i.input)}`,
    })
    .optional()
    .describe(
      "evicted values: none (dropped, default) | nearest (averaged into the kept token with the most similar key, weighted by tokens merged; src/cache/merge.ts)",
    );

/** The shared `merge` option as `kvlab info` lists it (registry.ts adds the policies that take it). */
export const MERGE_INFO = {
  name: "merge",
  values: "none | nearest",
  description:
    "an evicted token's value is dropped (none, default) or averaged into the kept token with the most similar stored key, weighted by the tokens each stands for (nearest; rule in src/cache/merge.ts)",
  paper: "D2O, Wan et al. 2024, arXiv:2406.13035; CaM, Zhang et al., ICML 2024",
};

/** A policy's option schema with `merge` added. */
export function withMergeOption<S extends z.ZodObject>(schema: S) {
  return schema.safeExtend({ merge: mergeOption() });
}
