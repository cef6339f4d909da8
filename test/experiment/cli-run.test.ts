import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const bin = join(import.meta.dirname, "..", "..", "bin", "kvlab.js");

test("kvlab run on a config with an error exits non-zero with the path and writes nothing", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-cli-"));
  const cfg = join(dir, "bad.yaml");
  await writeFile(
    cfg,
    "name: bad\nmodel: m\ntext: t\nprotocol: { type: llamacpp, ctx: 64 }\ncaches:\n  - f16\n  - { codec: { type: int4, group: 33 } }\n",
  );
  const out = join(dir, "results");
  const err = await promisify(execFile)(process.execPath, [bin, "run", cfg, "--out", out]).then(
    () => assert.fail("expected a non-zero exit"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 1);
  assert.match(err.stderr, /^error: .*bad\.yaml: caches\[1\]\.codec/);
  assert.doesNotMatch(err.stderr, /\n\s+at /); // no stack trace
  assert.equal(existsSync(out), false);
});

test("kvlab run: an error found after validation (text too short for the protocol) names the config file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-cli-"));
  const cfg = join(dir, "short.yaml");
  await writeFile(join(dir, "t.txt"), "Only a few words here.");
  const model = join(import.meta.dirname, "..", "..", "models", "sotu-llama");
  await writeFile(
    cfg,
    `name: short\nmodel: ${model}\ntext: t.txt\nprotocol: { type: llamacpp, ctx: 512 }\ncaches: [f16]\n`,
  );
  const err = await promisify(execFile)(process.execPath, [bin, "run", cfg, "--out", join(dir, "r")]).then(
    () => assert.fail("expected a non-zero exit"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 1);
  assert.match(err.stderr, /^error: .*short\.yaml: protocol: the text has \d+ tokens/);
  assert.doesNotMatch(err.stderr, /\n\s+at /);
});

test("kvlab run --executor: an unknown executor is an error naming the flag and the choices", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-cli-"));
  const cfg = join(dir, "ok.yaml");
  await writeFile(cfg, "name: ok\nmodel: m\ntext: t\nprotocol: { type: llamacpp, ctx: 64 }\ncaches: [f16]\n");
  const out = join(dir, "results");
  const err = await promisify(execFile)(process.execPath, [
    bin,
    "run",
    cfg,
    "--executor",
    "tpu",
    "--out",
    out,
  ]).then(
    () => assert.fail("expected a non-zero exit"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 1);
  assert.match(err.stderr, /^error: --executor: unknown executor "tpu"; known: ref, wasm, webgpu/);
  assert.equal(existsSync(out), false);
});
