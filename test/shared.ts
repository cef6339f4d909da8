/** Locating ../shared (or $KVLAB_SHARED) for tests that use the real model and reference data. */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const SHARED_DIR = process.env.KVLAB_SHARED ?? join(repoRoot, "..", "shared");

/** Path inside shared/ if it exists; otherwise undefined (callers skip with a printed reason). */
export function sharedPath(rel: string): string | undefined {
  const p = join(SHARED_DIR, rel);
  return existsSync(p) ? p : undefined;
}

/** A skip reason for node:test's `skip` option, printed in the report. */
export function skipUnlessShared(rel: string): string | false {
  return sharedPath(rel) ? false : `shared material ${join(SHARED_DIR, rel)} is absent (set KVLAB_SHARED)`;
}
