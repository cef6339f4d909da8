import assert from "node:assert/strict";
import { test } from "node:test";
import { validateConfig } from "../../src/experiment/schema.ts";
import { expandSweep } from "../../src/experiment/sweep.ts";
import { rawConfig } from "./fake-runtime.ts";

test("a grid expands to the cartesian product, last key fastest", () => {
  const out = expandSweep(
    { spec: { policy: "full" }, grid: { codec: ["f16", "int8"], "policy.extra": [1, 2, 3] } },
    "sweep[0]",
  );
  assert.equal(out.length, 6);
  assert.deepEqual(out[0]!.spec, { policy: { type: "full", extra: 1 }, codec: "f16" });
  assert.deepEqual(out[1]!.spec, { policy: { type: "full", extra: 2 }, codec: "f16" });
  assert.deepEqual(out[3]!.spec, { policy: { type: "full", extra: 1 }, codec: "int8" });
  assert.equal(out[4]!.path, 'sweep[0]{codec="int8",policy.extra=2}');
});

test("the base spec is not mutated between grid points", () => {
  const spec = { codec: { type: "int4" } };
  const out = expandSweep({ spec, grid: { "codec.group": [32, 64] } }, "s");
  assert.deepEqual(spec, { codec: { type: "int4" } });
  assert.deepEqual(
    out.map((o) => o.spec),
    [{ codec: { type: "int4", group: 32 } }, { codec: { type: "int4", group: 64 } }],
  );
});

test("sweeps in a config become runs after caches, duplicates dropped, errors name the grid point", () => {
  const c = validateConfig(
    rawConfig({ caches: ["f32", "f16"], sweep: [{ spec: "int4", grid: { "codec.group": [32, 64] } }] }),
    "/",
  );
  // f32 is the baseline itself: baseline + f16 + two int4 groups.
  assert.equal(c.caches.length, 4);
  assert.deepEqual(
    c.caches.slice(2).map((x) => x.spec.keys.group),
    [32, 64],
  );
  assert.throws(
    () => validateConfig(rawConfig({ sweep: [{ spec: "int4", grid: { "codec.group": [32, 7] } }] }), "/"),
    /sweep\[0\]\{codec\.group=7\}/,
  );
});

test("name placeholders are filled from each grid point", () => {
  const out = expandSweep(
    {
      spec: { name: "h2o-{policy.budget}+{codec}", policy: "h2o" },
      grid: { "policy.budget": [8], codec: ["f16", { type: "int4" }] },
    },
    "s",
  );
  assert.deepEqual(
    out.map((o) => (o.spec as { name: string }).name),
    ["h2o-8+f16", "h2o-8+int4"],
  );
  assert.throws(
    () => expandSweep({ spec: { name: "x-{nope}" }, grid: { codec: ["f16"] } }, "s"),
    /s\.spec\.name: placeholder \{nope\}/,
  );
});
