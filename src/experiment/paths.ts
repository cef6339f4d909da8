/**
 * Where `builtin:` and `shared:` names point. Built-in material ships in the repository
 * (models/<name>/, data/<name>/); shared material lives at ../shared beside the checkout or
 * at $KVLAB_SHARED, and is optional.
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function sharedDir(): string {
  return process.env.KVLAB_SHARED ?? join(REPO_ROOT, "..", "shared");
}

/** Candidate files for a built-in text, first existing wins. */
function builtinTextCandidates(name: string): string[] {
  const dir = join(REPO_ROOT, "data", name);
  return ["heldout.txt", "test.txt", `${name}.txt`].map((f) => join(dir, f));
}

/**
 * Resolve a model reference: `builtin:<name>` -> <repo>/models/<name>, `shared:<rel>` ->
 * <shared>/<rel>, anything else is a path relative to the config file's directory.
 */
export function resolveModelRef(ref: string, configDir: string): string {
  if (ref.startsWith("builtin:")) return join(REPO_ROOT, "models", ref.slice("builtin:".length));
  if (ref.startsWith("shared:")) return join(sharedDir(), ref.slice("shared:".length));
  return isAbsolute(ref) ? ref : resolve(configDir, ref);
}

/** Resolve a text reference like a model reference; `builtin:<name>` -> <repo>/data/<name>/heldout.txt. */
export function resolveTextRef(ref: string, configDir: string): string {
  if (ref.startsWith("builtin:")) {
    const c = builtinTextCandidates(ref.slice("builtin:".length));
    return c.find((p) => existsSync(p)) ?? c[0]!;
  }
  if (ref.startsWith("shared:")) return join(sharedDir(), ref.slice("shared:".length));
  return isAbsolute(ref) ? ref : resolve(configDir, ref);
}
