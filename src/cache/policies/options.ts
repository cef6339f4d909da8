/** Option parsing shared by the policies: counts given as a number >= 1 or a fraction in (0, 1). */
import { ConfigError } from "../../errors.ts";
import type { PolicySpec } from "../types.ts";

/**
 * A count option: an integer >= 1 (tokens) or a fraction in (0, 1) (of the tokens seen, or of
 * the budget for `recent`). Returns `fallback` when absent; throws naming the path otherwise.
 */
export function countOption(spec: PolicySpec, key: string, path: string, fallback?: number): number {
  const v = spec[key];
  if (v === undefined) {
    if (fallback === undefined)
      throw new ConfigError(
        `${path}.${key}`,
        `policy ${spec.type} needs ${key}: a token count (>= 1) or a fraction in (0, 1)`,
      );
    return fallback;
  }
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || (v >= 1 && !Number.isInteger(v)))
    throw new ConfigError(
      `${path}.${key}`,
      `expected a token count (an integer >= 1) or a fraction in (0, 1), got ${JSON.stringify(v)}`,
    );
  return v;
}

/** A non-negative integer option (e.g. recent: 0). */
export function intOption(spec: PolicySpec, key: string, path: string, fallback: number, min = 0): number {
  const v = spec[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min)
    throw new ConfigError(`${path}.${key}`, `expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/** A number option within [lo, hi]. */
export function numberOption(
  spec: PolicySpec,
  key: string,
  path: string,
  fallback: number,
  lo: number,
  hi: number,
): number {
  const v = spec[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi)
    throw new ConfigError(`${path}.${key}`, `expected a number in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  return v;
}

/** `recent` (or `sinks`) as a count or a share of the budget b; clamped to [0, b]. */
export function shareOf(value: number, b: number): number {
  const n = value < 1 ? Math.floor(value * b) : Math.floor(value);
  return Math.max(0, Math.min(n, b));
}
