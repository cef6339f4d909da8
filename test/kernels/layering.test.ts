/**
 * Executors own their specialisations: no module outside src/gpu/ imports from it or compares
 * an executor's name (createCache and loadModel call the executor's createCache/prepareModel
 * hooks instead). The exceptions are the composition points, each with its reason. A new
 * import of src/gpu/ (or `name === "webgpu"`) in a lower layer fails here.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { REPO_ROOT } from "../../src/experiment/paths.ts";

const ALLOWED: Record<string, string> = {
  "src/core.ts": "the public API re-exports the GPU forward",
  "src/kernels/registry.ts": "the executor table's webgpu row (loaded on demand)",
  "src/commands/info.ts": "a type-only import of the adapter report it prints",
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

test("nothing outside src/gpu imports it or names the webgpu executor", () => {
  const src = join(REPO_ROOT, "src");
  const bad: string[] = [];
  for (const f of files(src)) {
    const rel = relative(REPO_ROOT, f);
    if (rel.startsWith("src/gpu/") || Object.hasOwn(ALLOWED, rel)) continue;
    const text = readFileSync(f, "utf8");
    if (/(from|import\()\s*"(\.\.\/)+gpu\//.test(text)) bad.push(`${rel}: imports src/gpu`);
    if (/name\s*[!=]==?\s*"webgpu"|"webgpu"\s*[!=]==?/.test(text))
      bad.push(`${rel}: compares an executor name`);
  }
  assert.deepEqual(bad, []);
});
