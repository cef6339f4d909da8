/**
 * Issue 12, items 2 and 7: sweep grids. Dotted keys never reach a prototype (every segment
 * named __proto__, prototype or constructor is a ConfigError naming the grid key, and nothing
 * is set before the check), only own properties are walked, and the grid's size is checked
 * axis by axis and capped before any point is built.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { ConfigError } from "../../src/errors.ts";
import { validateConfig } from "../../src/experiment/schema.ts";
import { expandSweep, MAX_GRID_POINTS } from "../../src/experiment/sweep.ts";
import { rawConfig } from "../experiment/fake-runtime.ts";
import { FUZZ_SEED, fuzzRuns } from "./fuzz.ts";

const POLLUTERS = ["policy", "budget", "type", "codec", "x"];

function assertNoPollution(): void {
  for (const k of POLLUTERS) {
    assert.equal(Object.hasOwn(Object.prototype, k), false, `Object.prototype.${k} was set`);
    assert.equal(({} as Record<string, unknown>)[k], undefined);
  }
  assert.equal(Object.hasOwn(Function.prototype, "x"), false);
}

const BAD_KEYS = [
  "__proto__.policy",
  "__proto__",
  "policy.__proto__.budget",
  "constructor.prototype.policy",
  "constructor",
  "prototype.x",
  "codec.constructor.prototype.type",
  "policy..budget",
  ".policy",
];

test("grid keys reaching a prototype are refused with a ConfigError naming the key", () => {
  for (const key of BAD_KEYS) {
    assert.throws(
      () =>
        expandSweep(
          { spec: { policy: "full" }, grid: { [key]: [{ type: "window", budget: 8 }] } },
          "sweep[0]",
        ),
      (e: unknown) => e instanceof ConfigError && e.path === `sweep[0].grid.${key}`,
      key,
    );
    assertNoPollution();
  }
});

test("the issue's example through a whole config: rejected, the baseline not polluted", () => {
  assert.throws(
    () =>
      validateConfig(
        rawConfig({
          sweep: [{ spec: "f16", grid: { "__proto__.policy": [{ type: "window", budget: 8 }] } }],
        }),
        "/",
      ),
    ConfigError,
  );
  assertNoPollution();
  const ok = validateConfig(rawConfig(), "/");
  assert.equal(ok.caches[0]!.spec.policy.type, "full", "the f32 baseline keeps policy full");
});

test("only own properties are walked: an inherited field is neither read nor written through", () => {
  const inherited = { policy: { type: "window", budget: 4 } };
  const spec = Object.create(inherited) as Record<string, unknown>;
  const out = expandSweep({ spec: "int4", grid: { "policy.budget": [8] } }, "s");
  assert.deepEqual(out[0]!.spec, { codec: "int4", policy: { budget: 8 } });
  // structuredClone of the base drops the prototype; setPath itself never follows one either.
  const out2 = expandSweep({ spec, grid: { "policy.budget": [8] } }, "s");
  assert.deepEqual(out2[0]!.spec, { policy: { budget: 8 } });
  assert.deepEqual(inherited, { policy: { type: "window", budget: 4 } });
});

test("each axis is checked and the product capped before expansion", () => {
  const values = Array.from({ length: 200 }, (_, i) => i);
  const grid = { "policy.a": values, "policy.b": values, "policy.c": values, "policy.d": values };
  assert.throws(
    () => expandSweep({ spec: "int4", grid }, "sweep[0]"),
    (e: unknown) =>
      e instanceof ConfigError && e.path === "sweep[0].grid" && /more than 4096 points/.test(e.message),
  );
  // 160,000 points through a whole config: a ConfigError, no stack overflow.
  const big = Array.from({ length: 400 }, (_, i) => i + 1);
  assert.throws(
    () =>
      validateConfig(
        rawConfig({ sweep: [{ spec: "int4", grid: { "policy.a": big, "policy.b": big } }] }),
        "/",
      ),
    ConfigError,
  );
  assert.throws(() => expandSweep({ spec: "int4", grid: { "codec.group": [] } }, "s"), /at least one value/);
  assert.throws(
    () => expandSweep({ spec: "int4", grid: { "codec.group": 32 as unknown as unknown[] } }, "s"),
    (e: unknown) => e instanceof ConfigError && e.path === "s.grid.codec.group",
  );
  // Exactly at the cap expands.
  assert.equal(
    expandSweep(
      {
        spec: "int4",
        grid: {
          "policy.a": Array.from({ length: 64 }, (_, i) => i),
          "policy.b": Array.from({ length: 64 }, (_, i) => i),
        },
      },
      "s",
    ).length,
    MAX_GRID_POINTS,
  );
});

test("property: random dotted keys either expand onto own fields or are refused; never pollute", () => {
  const segment = fc.constantFrom(
    "policy",
    "codec",
    "budget",
    "type",
    "__proto__",
    "prototype",
    "constructor",
    "",
    "x",
  );
  fc.assert(
    fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.jsonValue(), (segs, value) => {
      const key = segs.join(".");
      const bad = segs.some((s) => s === "" || s === "__proto__" || s === "prototype" || s === "constructor");
      try {
        const out = expandSweep({ spec: { policy: { type: "full" } }, grid: { [key]: [value] } }, "s");
        assert.ok(!bad, `${key} was accepted`);
        let node: unknown = out[0]!.spec;
        for (const s of segs) {
          assert.ok(Object.hasOwn(node as object, s), `${key}: ${s} is not an own field`);
          node = (node as Record<string, unknown>)[s];
        }
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
      }
      assertNoPollution();
    }),
    { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
  );
});
