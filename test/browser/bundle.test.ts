/**
 * The browser entry (src/browser.ts) bundles for the web: esbuild with --platform=browser
 * resolves no Node module (fs, path, worker_threads, child_process, Dawn, resvg would each be an
 * error), taking src/platform/host.browser.ts through package.json's "browser" field. And the
 * two hosts export the same names, so the swap cannot leave the browser build without one.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("../../", import.meta.url));

test("src/browser.ts bundles for the browser with no Node module", async () => {
  const out = await build({
    entryPoints: [`${root}src/browser.ts`],
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(out.metafile.inputs);
  assert.ok(inputs.includes("src/platform/host.browser.ts"), "the browser host is bundled");
  assert.ok(!inputs.includes("src/platform/host.ts"), "the Node host is not bundled");
  const nodeOnly = inputs.filter((f) => /node_modules\/(webgpu|@resvg|cli-progress|vega)/.test(f));
  assert.deepEqual(nodeOnly, []);
  // (An unresolvable import such as "node:fs" fails the build itself, before these checks.)
  assert.doesNotMatch(out.outputFiles[0]!.text, /\bBuffer\./, "Buffer is Node's");
});

test("host.ts and host.browser.ts export the same names", async () => {
  const names = (file: string) => {
    const text = readFileSync(`${root}src/platform/${file}`, "utf8");
    const declared = [...text.matchAll(/export (?:async )?(?:function|const|interface) (\w+)/g)].map(
      (m) => m[1]!,
    );
    const reexported = [...text.matchAll(/export \{([^}]*)\} from/g)].flatMap((m) =>
      m[1]!.split(",").map((s) => s.trim()),
    );
    return [...new Set([...declared, ...reexported].filter(Boolean))].sort();
  };
  assert.deepEqual(names("host.browser.ts"), names("host.ts"));
});
