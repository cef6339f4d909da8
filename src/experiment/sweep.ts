/**
 * Sweep expansion: one base cache spec times a grid of values set at dotted paths, e.g.
 *   { spec: { policy: { type: h2o } }, grid: { "policy.budget": [0.1, 0.2], codec: [f16, int4] } }
 * gives 4 specs, the cartesian product in the order the grid keys are written (last key
 * varies fastest), each with a label naming its grid point for error messages. A `name` in the
 * base spec may use `{<grid key>}` placeholders, filled with each point's value (an object value
 * shows its `type`), e.g. `name: "h2o-{policy.budget}+{codec}"`.
 */
import { PRESETS } from "../cache/presets.ts";
import { ConfigError } from "../errors.ts";

export interface SweepBlock {
  spec: unknown;
  grid: Record<string, unknown[]>;
}

export interface ExpandedSpec {
  spec: unknown;
  /** Config path for errors, e.g. `sweep[0]{policy.budget=0.2,codec="int4"}`. */
  path: string;
}

/** Most grid points one sweep block may expand to (each point is a whole evaluation run). */
export const MAX_GRID_POINTS = 4096;

/** Key segments that would reach an object's prototype instead of one of its own fields. */
const FORBIDDEN_SEGMENTS = new Set(["__proto__", "prototype", "constructor"]);

/**
 * The segments of a dotted grid key, refused (ConfigError at `where`) when one is empty or
 * names a prototype (`__proto__`, `prototype`, `constructor`): setting those would change
 * Object.prototype for the whole process, as lodash's `set` once did.
 */
function keySegments(dotted: string, where: string): string[] {
  const parts = dotted.split(".");
  for (const p of parts) {
    if (p === "") throw new ConfigError(where, `grid key ${JSON.stringify(dotted)} has an empty segment`);
    if (FORBIDDEN_SEGMENTS.has(p))
      throw new ConfigError(
        where,
        `grid key ${JSON.stringify(dotted)}: segment "${p}" is not allowed (it would reach an object's prototype)`,
      );
  }
  return parts;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown, path: string): void {
  const parts = keySegments(dotted, path);
  let obj: Record<string, unknown> = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    // Own properties only: an inherited field is never walked into or written through.
    const next = Object.hasOwn(obj, p) ? obj[p] : undefined;
    if (next === undefined) obj[p] = {};
    else if (typeof next === "string")
      obj[p] = { type: next }; // `policy: h2o` then `policy.budget`
    else if (typeof next !== "object" || next === null || Array.isArray(next))
      throw new ConfigError(
        path,
        `cannot set "${dotted}": ${parts.slice(0, i + 1).join(".")} is not an object`,
      );
    obj = obj[p] as Record<string, unknown>;
  }
  Object.defineProperty(obj, parts[parts.length - 1]!, {
    value: structuredClone(value),
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function placeholderText(v: unknown): string {
  if (typeof v === "object" && v !== null && "type" in v) return String((v as { type: unknown }).type);
  return typeof v === "string" || typeof v === "number" ? String(v) : JSON.stringify(v);
}

/**
 * Every axis is checked (own keys, allowed segments, a non-empty array) and the product capped
 * at MAX_GRID_POINTS before a single point is built, so a small config cannot ask for billions.
 */
export function expandSweep(block: SweepBlock, path: string): ExpandedSpec[] {
  const grid = block.grid;
  if (typeof grid !== "object" || grid === null || Array.isArray(grid))
    throw new ConfigError(`${path}.grid`, "expected a mapping of dotted keys to lists of values");
  const keys = Object.keys(grid);
  let total = 1;
  for (const key of keys) {
    const where = `${path}.grid.${key}`;
    keySegments(key, where);
    const values = Object.getOwnPropertyDescriptor(grid, key)?.value as unknown;
    if (!Array.isArray(values)) throw new ConfigError(where, "expected a list of values");
    if (values.length === 0) throw new ConfigError(where, "expected at least one value");
    total *= values.length;
    if (total > MAX_GRID_POINTS)
      throw new ConfigError(
        `${path}.grid`,
        `the grid has more than ${MAX_GRID_POINTS} points (${keys.map((k) => `${k}: ${(grid[k] as unknown[] | undefined)?.length ?? "?"}`).join(" x ")}); split it into smaller sweeps`,
      );
  }
  let points: [string, unknown][][] = [[]];
  for (const key of keys) {
    const values = grid[key]!;
    const next: [string, unknown][][] = [];
    for (const pt of points) for (const v of values) next.push([...pt, [key, v]]);
    points = next;
  }
  return points.map((pt) => {
    const base =
      typeof block.spec === "string"
        ? Object.hasOwn(PRESETS, block.spec)
          ? { preset: block.spec }
          : { codec: block.spec }
        : (structuredClone(block.spec ?? {}) as Record<string, unknown>);
    const label = `${path}{${pt.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`;
    for (const [k, v] of pt) setPath(base as Record<string, unknown>, k, v, label);
    const b = base as Record<string, unknown>;
    if (typeof b.name === "string")
      b.name = b.name.replace(/\{([^}]+)\}/g, (whole, key: string) => {
        const hit = pt.find(([k]) => k === key);
        if (!hit)
          throw new ConfigError(
            `${path}.spec.name`,
            `placeholder ${whole} is not a grid key (${keys.join(", ")})`,
          );
        return placeholderText(hit[1]);
      });
    return { spec: base, path: label };
  });
}
