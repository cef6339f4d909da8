/**
 * Where `builtin:` and `shared:` names point. Built-in material ships in the repository
 * (models/<name>/, data/<name>/); shared material lives at ../shared beside the checkout or
 * at $KVLAB_SHARED, and is optional.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../errors.ts";

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
  if (ref.startsWith("builtin:")) return join(REPO_ROOT, "models", builtinName(ref, "model"));
  if (ref.startsWith("shared:")) return join(sharedDir(), ref.slice("shared:".length));
  return isAbsolute(ref) ? ref : resolve(configDir, ref);
}

/** Resolve a text reference like a model reference; `builtin:<name>` -> <repo>/data/<name>/heldout.txt. */
export function resolveTextRef(ref: string, configDir: string): string {
  let path: string;
  if (ref.startsWith("builtin:")) {
    const c = builtinTextCandidates(builtinName(ref, "text"));
    path = c.find((p) => existsSync(p)) ?? c[0]!;
  } else if (ref.startsWith("shared:")) path = join(sharedDir(), ref.slice("shared:".length));
  else path = isAbsolute(ref) ? ref : resolve(configDir, ref);
  checkTextFile(path, "text");
  return path;
}

/**
 * The name of a `builtin:<name>` reference: one plain folder name, so that it cannot leave
 * models/ or data/ (`builtin:../..`, `builtin:/etc`, `builtin:a/b` are refused).
 */
function builtinName(ref: string, field: "model" | "text"): string {
  const name = ref.slice("builtin:".length);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes(".."))
    throw new ConfigError(
      field,
      `${JSON.stringify(ref)}: a built-in name is one folder name (letters, digits, ".", "_", "-"), e.g. builtin:sotu-llama`,
    );
  return name;
}

/**
 * A text to read must be a regular file: a directory (EISDIR), a device such as /dev/zero
 * (never ends), a FIFO or a path the OS refuses (ENAMETOOLONG, ELOOP) is a ConfigError naming
 * `field`. A missing file passes (the caller reports it with its own advice).
 */
export function checkTextFile(path: string, field: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    throw new ConfigError(field, `${path}: cannot be read (${code ?? (err as Error).message})`);
  }
  if (!st.isFile())
    throw new ConfigError(
      field,
      `${path} is ${st.isDirectory() ? "a directory" : "not a regular file (a device, FIFO or socket)"}; give a text file`,
    );
}
