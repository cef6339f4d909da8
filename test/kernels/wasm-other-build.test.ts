/**
 * Both wasm builds against ref (issue 15 lever 2). The other test files here run the build this
 * engine loads by default (src/kernels/wasm-build.ts: the relaxed-SIMD build where the engine
 * runs it correctly, else the baseline). This file reruns the wasm parity suites on the other
 * build in a child process: on Node 20 (baseline here) the relaxed build on Node 24
 * (`npx -y -p node@24 node`, or $KVLAB_RELAXED_NODE; empty skips), on Node 22+ (relaxed here)
 * the baseline build via KVLAB_WASM=baseline on this node.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createWasmExecutor } from "../../src/kernels/wasm.ts";
import { relaxedLocation } from "../../src/kernels/wasm-build.ts";
import { WASM_PATH } from "../../src/kernels/wasm-loader.ts";
import { wasmSkip } from "./wasm-helpers.ts";

const SUITES = [
  "wasm-attend.test.ts",
  "wasm-channel.test.ts",
  "wasm-model-ops.test.ts",
  "wasm-threads.test.ts",
  "wasm-codecs.test.ts",
  "wasm-nll.test.ts",
  "wasm-matmul-weights.test.ts",
  "wasm-ggml.test.ts",
].map((f) => fileURLToPath(new URL(f, import.meta.url)));

async function loadedHere(): Promise<string | undefined> {
  if (wasmSkip) return undefined;
  const ex = await createWasmExecutor({ threads: 1 });
  ex.dispose();
  return ex.wasmSource;
}
const here = await loadedHere();
const relaxedHere = here !== undefined && /kvlab-relaxed\.wasm$/.test(here);
const childNode = relaxedHere
  ? process.execPath
  : (process.env.KVLAB_RELAXED_NODE ?? "npx -y -p node@24 node");
const other = relaxedHere ? "baseline" : "relaxed";

test(`wasm parity suites on the ${other} build (this engine loads ${here ?? "none"})`, {
  skip: wasmSkip
    ? wasmSkip
    : !existsSync(String(relaxedLocation(WASM_PATH)))
      ? "build/kvlab-relaxed.wasm missing: run npm run asbuild"
      : childNode === ""
        ? "KVLAB_RELAXED_NODE is empty"
        : false,
  timeout: 1_200_000,
}, () => {
  const [cmd, ...pre] = childNode.split(" ");
  // NODE_TEST_CONTEXT would make the child report to this runner instead of printing TAP
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const res = spawnSync(cmd!, [...pre, "--import", "tsx", "--test", "--test-reporter=tap", ...SUITES], {
    env: { ...env, KVLAB_WASM: other },
    encoding: "utf8",
    timeout: 1_200_000,
  });
  assert.equal(res.status, 0, `child failed:\n${res.stdout.slice(-6000)}\n${res.stderr.slice(-3000)}`);
  assert.match(res.stdout, /# pass [1-9]/);
  assert.match(res.stdout, /# fail 0/);
});
