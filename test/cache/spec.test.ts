/**
 * Cache spec parsing (src/cache/spec.ts): bare codec and preset names, codec objects, separate
 * key/value codecs, presets with overrides, defaults; every malformed field is a ConfigError
 * whose path names it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PRESETS } from "../../src/cache/presets.ts";
import { resolveCacheSpec } from "../../src/cache/spec.ts";
import { ConfigError } from "../../src/errors.ts";
import { specHash } from "../../src/experiment/hash.ts";

/** A side's storage defaults: per-token rows, no residual window, no rotation, post-RoPE keys. */
const plain = { axis: "token", residual: 0, rotation: "none", preRope: false };
const int8Default = { type: "int8", group: 32, symmetric: true, ...plain };
const int4Default = { type: "int4", group: 32, symmetric: false, ...plain };
const q8Default = { type: "q8_0", group: 32, symmetric: true, ...plain };

test("a bare codec name means that codec, with its defaults, for keys and values", () => {
  for (const name of ["f32", "f16", "bf16", "fp8-e4m3", "int8", "int4", "int2"]) {
    const r = resolveCacheSpec(name);
    assert.equal(r.keys.type, name);
    assert.deepEqual(r.values, r.keys);
    assert.deepEqual(r.policy, { type: "full" });
    assert.ok(r.name.length > 0);
  }
  assert.deepEqual(resolveCacheSpec("int8").keys, int8Default);
  assert.deepEqual(resolveCacheSpec("int4").keys, int4Default);
  assert.deepEqual(resolveCacheSpec("int2").keys, { ...int4Default, type: "int2" });
});

test("a bare preset name expands to the full spec, labelled with the preset's name", () => {
  // llama.cpp's cache types are ggml's block codecs (fixed blocks of 32, src/quant/ggml-*.ts).
  const q4 = resolveCacheSpec("q4_0");
  assert.deepEqual(q4.keys, { type: "q4_0", group: 32, symmetric: true, ...plain });
  assert.deepEqual(q4.values, q4.keys);
  assert.equal(q4.name, "q4_0");
  assert.deepEqual(resolveCacheSpec("q8_0").keys, q8Default);
  assert.deepEqual(resolveCacheSpec({ preset: "q8_0" }), resolveCacheSpec("q8_0"));
});

test("codec objects, separate key/value codecs, preset overrides, defaults and labels", () => {
  const r = resolveCacheSpec({ codec: { type: "int4", group: 64, symmetric: true } });
  assert.deepEqual(r.keys, { type: "int4", group: 64, symmetric: true, ...plain });
  assert.deepEqual(r.values, r.keys);

  const kv = resolveCacheSpec({ codec: { keys: "int8", values: { type: "int2", group: 16 } } });
  assert.deepEqual(kv.keys, int8Default);
  assert.deepEqual(kv.values, { type: "int2", group: 16, symmetric: false, ...plain });
  assert.notEqual(kv.name, resolveCacheSpec("int8").name, "K/V label must differ from K=V label");

  const head = resolveCacheSpec({ codec: { type: "int8", group: "head" } });
  assert.equal(head.keys.group, "head");

  // A preset with an explicit codec: the codec overrides the preset's (only the named side).
  const over = resolveCacheSpec({ preset: "q8_0", codec: { values: "f16" } });
  assert.deepEqual(over.keys, q8Default);
  assert.equal(over.values.type, "f16");

  const empty = resolveCacheSpec({});
  assert.equal(empty.keys.type, "f32");
  assert.equal(empty.values.type, "f32");
  assert.deepEqual(empty.policy, { type: "full" });

  assert.equal(resolveCacheSpec({ codec: "f16", name: "my-f16" }).name, "my-f16");
  assert.deepEqual(resolveCacheSpec({ codec: "f16", policy: "full" }).policy, { type: "full" });
  // Resolving a resolved spec's codecs again is stable (createCache passes them back).
  const again = resolveCacheSpec({ codec: { keys: kv.keys, values: kv.values } });
  assert.deepEqual([again.keys, again.values], [kv.keys, kv.values]);
  const f = resolveCacheSpec("f16");
  assert.deepEqual(resolveCacheSpec({ codec: f.keys }).keys, f.keys);
});

test("unknown keys and bad values are ConfigErrors naming the path", () => {
  const cases: [unknown, string][] = [
    ["int9", "cache"],
    [42, "cache"],
    [null, "cache"],
    [["int8"], "cache"],
    [{ foo: 1 }, "cache.foo"],
    [{ codec: "int9" }, "cache.codec"],
    [{ codec: 8 }, "cache.codec"],
    [{ codec: null }, "cache.codec"],
    [{ codec: { type: "int9" } }, "cache.codec.type"],
    [{ codec: { type: "int4", group: 33 } }, "cache.codec.group"],
    [{ codec: { type: "int4", group: 0 } }, "cache.codec.group"],
    [{ codec: { type: "int4", group: "32" } }, "cache.codec.group"],
    [{ codec: { type: "int4", bits: 4 } }, "cache.codec.bits"],
    [{ codec: { type: "int4", symmetric: "yes" } }, "cache.codec.symmetric"],
    [{ codec: { type: "int4", axis: "channel" } }, "cache.codec.axis"],
    [{ codec: { keys: { type: "int4", axis: "row" } } }, "cache.codec.keys.axis"],
    [{ codec: { keys: { type: "f16", axis: "channel", residual: 128 } } }, "cache.codec.keys.type"],
    [
      { codec: { keys: { type: "int2", group: "head", axis: "channel", residual: 128 } } },
      "cache.codec.keys.group",
    ],
    [{ codec: { keys: { type: "int2", axis: "channel", residual: 16 } } }, "cache.codec.keys.residual"],
    [{ codec: { keys: { type: "int2", residual: 128 } } }, "cache.codec.keys.residual"],
    [{ codec: { values: { type: "int2", residual: -1 } } }, "cache.codec.values.residual"],
    [{ codec: { values: { type: "int2", rotation: "rotate" } } }, "cache.codec.values.rotation"],
    [{ codec: { keys: { type: "int2", rotation: "givens" } } }, "cache.codec.keys.rotation"],
    [{ codec: { values: { type: "int2", preRope: true } } }, "cache.codec.values.preRope"],
    [{ codec: { keys: { type: "int2", preRope: "yes" } } }, "cache.codec.keys.preRope"],
    [{ preset: "kivi2", policy: { type: "tiered", budget: 64 } }, "cache.policy"],
    [{ codec: "int8", keys: "int8" }, "cache.codec"],
    [{ codec: { type: "f16", group: 32 } }, "cache.codec.group"],
    [{ codec: { type: "f16", symmetric: false } }, "cache.codec.symmetric"],
    [{ codec: { keys: "int8", extra: 1 } }, "cache.codec.extra"],
    [{ codec: { keys: { type: "int4", group: 7 } } }, "cache.codec.keys.group"],
    [{ codec: { keys: "int8", values: "nope" } }, "cache.codec.values"],
    [{ codec: { values: { type: "int2", symmetric: 1 } } }, "cache.codec.values.symmetric"],
    [{ preset: "nope" }, "cache.preset"],
    [{ preset: 3 }, "cache.preset"],
    [{ name: 5 }, "cache.name"],
    [{ policy: 5 }, "cache.policy"],
    [{ policy: { budget: 3 } }, "cache.policy"],
    [{ policy: { type: "nope" } }, "cache.policy.type"],
    [{ policy: "nope" }, "cache.policy.type"],
    [{ policy: { type: "full", budget: 3 } }, "cache.policy.budget"],
    [{ preset: "int4-hadamard", policy: { type: "expected-attention", budget: 8 } }, "cache.policy"],
  ];
  for (const [input, path] of cases) {
    assert.throws(
      () => resolveCacheSpec(input),
      (e: unknown) => {
        assert.ok(
          e instanceof ConfigError,
          `${JSON.stringify(input)}: threw ${String(e)}, not a ConfigError`,
        );
        assert.equal(e.path, path, `${JSON.stringify(input)}: path`);
        assert.ok(e.message.startsWith(`${path}: `), `${JSON.stringify(input)}: message "${e.message}"`);
        return true;
      },
      `${JSON.stringify(input)} should be rejected`,
    );
  }
});

test("the caller's path prefixes every error path", () => {
  assert.throws(
    () => resolveCacheSpec({ codec: { keys: { type: "int4", group: 7 } } }, "caches[3]"),
    (e: unknown) => e instanceof ConfigError && e.path === "caches[3].codec.keys.group",
  );
});

test("presets expand into the full spec: storage options are fields, not the preset's name", () => {
  const kivi = resolveCacheSpec("kivi2");
  assert.deepEqual(kivi.keys, { ...int4Default, type: "int2", axis: "channel", residual: 128 });
  assert.deepEqual(kivi.values, { ...int4Default, type: "int2", residual: 128 });
  assert.equal(resolveCacheSpec("kivi2-prerope").keys.preRope, true);
  assert.equal(resolveCacheSpec("int4-hadamard").keys.rotation, "hadamard");
  // Rotation is an option of either side: the label and the resolved spec (hence the hash) say so.
  const rv = resolveCacheSpec({ codec: { keys: "int4", values: { type: "int4", rotation: "hadamard" } } });
  assert.equal(rv.values.rotation, "hadamard");
  assert.equal(rv.keys.rotation, "none");
  assert.equal(rv.name, "K:int4a-g32/V:int4a-g32-hadamard");
  // Records are keyed by the hash of the resolved spec: rotation on either side is a different run.
  const { name: _n, ...plainInt4 } = resolveCacheSpec("int4");
  const { name: _r, ...rotValues } = rv;
  assert.notEqual(specHash(plainInt4), specHash(rotValues));
  // The same cache written without the preset resolves to the same spec (only the label differs).
  const { name: _a, ...byPreset } = kivi;
  const { name: _b, ...byFields } = resolveCacheSpec({ codec: { keys: kivi.keys, values: kivi.values } });
  assert.deepEqual(byFields, byPreset);
});

test("resolving is idempotent: every preset's resolved spec (a runs.jsonl record) resolves to itself", () => {
  for (const name of [...Object.keys(PRESETS), "int4", "f16"]) {
    const r = resolveCacheSpec({
      preset: Object.hasOwn(PRESETS, name) ? name : undefined,
      ...(Object.hasOwn(PRESETS, name) ? {} : { codec: name }),
      policy: { type: "h2o", budget: 64 },
    });
    const again = resolveCacheSpec(JSON.parse(JSON.stringify(r)));
    assert.deepEqual(again, r, name);
  }
});
