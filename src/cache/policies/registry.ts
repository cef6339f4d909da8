/**
 * The policy registry: an explicit table of retention policies with their option parser,
 * one-line description and paper. `parse` validates options (errors carry the spec path)
 * and returns a factory, so a spec is checked before any model is loaded.
 */
import { ConfigError } from "../../errors.ts";
import type { PolicyContext, RetentionPolicy } from "../policy.ts";
import type { PolicySpec } from "../types.ts";
import { fullPolicy } from "./full.ts";

export interface PolicyEntry {
  name: string;
  description: string;
  paper?: string;
  /** Validate a spec and return the resolved spec (defaults filled) and a factory. */
  parse(spec: PolicySpec, path: string): { resolved: PolicySpec; make(ctx: PolicyContext): RetentionPolicy };
}

/** Reject keys a policy does not know, naming the path. */
export function checkKeys(spec: PolicySpec, allowed: string[], path: string): void {
  for (const key of Object.keys(spec)) {
    if (key !== "type" && !allowed.includes(key))
      throw new ConfigError(
        `${path}.${key}`,
        `unknown option for policy ${spec.type}${allowed.length ? ` (known: ${allowed.join(", ")})` : ""}`,
      );
  }
}

export const POLICIES: Record<string, PolicyEntry> = {
  full: {
    name: "full",
    description: "keep every token",
    parse(spec, path) {
      checkKeys(spec, [], path);
      return { resolved: { type: "full" }, make: () => fullPolicy() };
    },
  },
};

export function parsePolicy(spec: PolicySpec, path: string) {
  const entry = Object.hasOwn(POLICIES, spec.type) ? POLICIES[spec.type] : undefined;
  if (!entry)
    throw new ConfigError(
      `${path}.type`,
      `unknown policy "${String(spec.type)}"; known policies: ${Object.keys(POLICIES).join(", ")}`,
    );
  return entry.parse(spec, path);
}
