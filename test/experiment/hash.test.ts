import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { canonicalJson, contentHash, specHash } from "../../src/experiment/hash.ts";

test("spec hashes ignore key order and see every value", () => {
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: 3 } }), '{"a":{"c":3,"d":2},"b":1}');
  assert.equal(specHash({ a: 1, b: [1, 2] }), specHash({ b: [1, 2], a: 1 }));
  assert.notEqual(specHash({ a: 1, b: [1, 2] }), specHash({ a: 1, b: [2, 1] }));
});

test("a model folder's hash follows its weights and config, not its README or logs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kvlab-hash-"));
  await writeFile(join(dir, "config.json"), "{}");
  await writeFile(join(dir, "model.safetensors"), "weights");
  await writeFile(join(dir, "README.md"), "v1");
  const h0 = await contentHash(dir);
  await writeFile(join(dir, "README.md"), "v2");
  await writeFile(join(dir, "training.json"), "{}");
  assert.equal(await contentHash(dir), h0);
  await writeFile(join(dir, "model.safetensors"), "weightz");
  assert.notEqual(await contentHash(dir), h0);
});
