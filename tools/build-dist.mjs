#!/usr/bin/env node
// Builds dist/ for the npm package: compiles src/ with tsconfig.build.json (tsc rewrites the
// relative `.ts` imports of the emitted JavaScript to `.js`), then rewrites the relative `.ts`
// specifiers tsc leaves in the emitted declaration files, so a TypeScript consumer resolves them.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });

const relTs = /(["'])(\.\.?\/[^"']*?)\.ts\1/g;
let fixed = 0;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !/\.(d\.ts|js)$/.test(entry.name)) continue;
  const file = join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(file, "utf8");
  const out = text.replace(relTs, (_m, q, p) => `${q}${p}.js${q}`);
  if (out !== text) {
    writeFileSync(file, out);
    fixed++;
  }
}
console.error(`dist/ built (${fixed} files with relative .ts specifiers rewritten)`);
