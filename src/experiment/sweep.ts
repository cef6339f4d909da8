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

function setPath(target: Record<string, unknown>, dotted: string, value: unknown, path: string): void {
  const parts = dotted.split(".");
  let obj: Record<string, unknown> = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    const next = obj[p];
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
  obj[parts[parts.length - 1]!] = structuredClone(value);
}

function placeholderText(v: unknown): string {
  if (typeof v === "object" && v !== null && "type" in v) return String((v as { type: unknown }).type);
  return typeof v === "string" || typeof v === "number" ? String(v) : JSON.stringify(v);
}

export function expandSweep(block: SweepBlock, path: string): ExpandedSpec[] {
  const keys = Object.keys(block.grid);
  let points: [string, unknown][][] = [[]];
  for (const key of keys) {
    const values = block.grid[key]!;
    if (values.length === 0) throw new ConfigError(`${path}.grid.${key}`, "expected at least one value");
    points = points.flatMap((pt) => values.map((v) => [...pt, [key, v] as [string, unknown]]));
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
