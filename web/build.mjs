#!/usr/bin/env node
import { fileURLToPath } from "node:url";
// Builds the web app (web/dist/main.js and worker.js) with esbuild from src/browser.ts's core:
// platform "browser" takes src/platform/host.browser.ts through package.json's "browser" field,
// and resvg (a Node addon that plot.ts imports for PNGs) is replaced by web/src/resvg-stub.ts.
import { build } from "esbuild";

const web = fileURLToPath(new URL(".", import.meta.url));
const stubResvg = {
  name: "stub-resvg",
  setup(b) {
    b.onResolve({ filter: /^@resvg\/resvg-js$/ }, () => ({ path: `${web}src/resvg-stub.ts` }));
  },
};
const t0 = performance.now();
await build({
  entryPoints: { main: `${web}src/main.ts`, worker: `${web}src/worker.ts` },
  outdir: `${web}dist`,
  bundle: true,
  platform: "browser",
  format: "esm",
  target: "es2022",
  minify: !process.argv.includes("--dev"),
  sourcemap: true,
  plugins: [stubResvg],
  logLevel: "warning",
});
console.error(`web/dist built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
