#!/usr/bin/env node
// Launcher. In a checkout of the repository (src/ present) it registers the tsx loader and runs
// the TypeScript sources as they are; in the installed npm package (no src/) it runs the
// compiled JavaScript in dist/, with no TypeScript loader.
import { existsSync } from "node:fs";

const source = new URL("../src/cli.ts", import.meta.url);
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else {
  await import("../dist/cli.js");
}
