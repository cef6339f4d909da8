/**
 * src/platform/host.browser.ts on its own (it uses no Node API, so it runs here): its POSIX path
 * functions against Node's path.posix (the reference) on a table of awkward inputs, and its
 * in-memory files through the fs-shaped calls the model loaders make. And loadModelFromFiles
 * on Node (files written to a temporary directory) gives the model loadModel gives from disk.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createCache, evaluatePerplexity, loadModel, loadModelFromFiles } from "../../src/index.ts";
import * as host from "../../src/platform/host.browser.ts";
import { wasmSkip } from "../kernels/wasm-helpers.ts";

const PATHS = [
  "/a/b/c",
  "a/b/../c",
  "/a//b/./c/",
  "../x/y",
  "/..",
  "/",
  ".",
  "",
  "a/..",
  "/a/b/../../..",
  "x/y.safetensors",
];

test("host.browser paths agree with Node's path.posix", () => {
  for (const p of PATHS) {
    assert.equal(host.dirname(p), posix.dirname(p), `dirname(${p})`);
    assert.equal(host.basename(p), posix.basename(p), `basename(${p})`);
    assert.equal(host.isAbsolute(p), posix.isAbsolute(p), `isAbsolute(${p})`);
    assert.equal(host.resolve("/base", p), posix.resolve("/base", p), `resolve(/base, ${p})`);
    for (const q of PATHS) {
      assert.equal(host.join(p, q), posix.join(p, q), `join(${p}, ${q})`);
      if (posix.isAbsolute(p) && posix.isAbsolute(q)) assert.equal(host.relative(p, q), posix.relative(p, q));
    }
  }
});

test("host.browser files: mount, stat, list, read by descriptor, unmount", () => {
  const dir = host.mountFiles("/m", {
    "config.json": new TextEncoder().encode('{"a":1}'),
    "sub/w.bin": Uint8Array.of(1, 2, 3, 4),
  });
  assert.equal(dir, "/m");
  assert.ok(host.existsSync("/m") && host.statSync("/m").isDirectory() && !host.statSync("/m").isFile());
  assert.deepEqual(host.readdirSync("/m"), ["config.json", "sub"]);
  assert.equal(host.readFileSync("/m/config.json", "utf8"), '{"a":1}');
  const fd = host.openSync("/m/sub/w.bin", "r");
  assert.equal(host.fstatSync(fd).size, 4);
  const dst = new Uint8Array(3);
  assert.equal(host.readSync(fd, dst, 0, 3, 2), 2, "short read at the end of the file");
  assert.deepEqual([...dst], [3, 4, 0]);
  host.closeSync(fd);
  assert.throws(() => host.openSync("/m/missing", "r"), /ENOENT/);
  assert.throws(() => host.mountFiles("/m", { "../escape": new Uint8Array(0) }), /outside/);
  host.unmountFiles("/m");
  assert.equal(host.existsSync("/m/config.json"), false);
});

test("loadModelFromFiles (bytes) = loadModel (path) on the built-in model", { skip: wasmSkip }, async () => {
  const dir = fileURLToPath(new URL("../../models/sotu-llama-long/", import.meta.url));
  const names = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];
  const files = Object.fromEntries(names.map((n) => [n, new Uint8Array(readFileSync(dir + n))]));
  const a = await loadModel(dir, { executor: "ref" });
  const b = await loadModelFromFiles(files, { executor: "ref" });
  const text = readFileSync(
    fileURLToPath(new URL("../../data/sotu/heldout.txt", import.meta.url)),
    "utf8",
  ).slice(0, 2000);
  const tokens = a.tokenizer.encode(text, { addBos: true });
  assert.deepEqual(b.tokenizer.encode(text, { addBos: true }), tokens);
  const protocol = { kind: "llamacpp" as const, nCtx: 64, nChunks: 1 };
  const ppl = async (m: typeof a) =>
    (
      await evaluatePerplexity(m, tokens, protocol, (shape) =>
        createCache("f32", shape, { executor: m.executor }),
      )
    ).ppl;
  assert.equal(await ppl(b), await ppl(a));
  a.dispose();
  b.dispose();
});
