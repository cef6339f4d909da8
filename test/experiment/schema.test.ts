import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.ts";
import { loadConfig, validateConfig } from "../../src/experiment/schema.ts";
import { rawConfig } from "./fake-runtime.ts";

function configError(raw: unknown): ConfigError {
  try {
    validateConfig(raw, "/tmp");
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err;
  }
  assert.fail("expected a ConfigError");
}

test("a valid config puts the f32 baseline first and resolves paths", () => {
  const c = validateConfig(rawConfig(), "/cfg");
  assert.equal(c.caches.length, 4);
  assert.ok(c.caches[0]!.baseline);
  assert.equal(c.caches[0]!.spec.keys.type, "f32");
  assert.equal(c.modelPath, "/cfg/model-dir");
  assert.equal(c.seed, 0);
});

test("unknown keys are errors at their path", () => {
  assert.equal(configError(rawConfig({ sede: 1 })).path, "sede");
  assert.equal(
    configError(rawConfig({ protocol: { type: "chunked", ctx: 8, chunkSize: 2, chunksize: 1 } })).path,
    "protocol.chunksize",
  );
});

test("wrong types name the path and the value", () => {
  const e = configError(rawConfig({ protocol: { type: "llamacpp", ctx: "128" } }));
  assert.equal(e.path, "protocol.ctx");
  assert.match(e.message, /protocol\.ctx: .*number.*got "128"/);
  assert.equal(configError(rawConfig({ protocol: { type: "sliding", ctx: 8 } })).path, "protocol.type");
  assert.equal(configError(rawConfig({ name: "a b" })).path, "name");
});

test("cache spec errors carry caches[i] paths from the spec parser", () => {
  const e = configError(rawConfig({ caches: ["f16", "int8", "f16", { codec: { type: "int4", grup: 32 } }] }));
  assert.match(e.path, /^caches\[3\]\.codec/);
  assert.match(configError(rawConfig({ caches: ["f16", "int9"] })).message, /^caches\[1\]: /);
  assert.match(
    configError(rawConfig({ caches: [{ policy: { type: "nope" } }] })).path,
    /^caches\[0\]\.policy/,
  );
});

test("chunkSize larger than ctx is rejected", () => {
  assert.equal(
    configError(rawConfig({ protocol: { type: "chunked", ctx: 8, chunkSize: 16 } })).path,
    "protocol.chunkSize",
  );
});

test("loadConfig reads YAML and JSON and names the file in errors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-cfg-"));
  const y = join(dir, "x.yaml");
  await writeFile(
    y,
    "name: x\nmodel: m\ntext: t\nprotocol: { type: llamacpp, ctx: 64 }\ncaches: [f16, int8]\n",
  );
  assert.equal(loadConfig(y).caches.length, 3);
  const j = join(dir, "x.json");
  await writeFile(j, JSON.stringify(rawConfig({ caches: ["f16"], extra: true })));
  assert.throws(
    () => loadConfig(j),
    (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${j}: extra:`),
  );
});
