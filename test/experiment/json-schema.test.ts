/**
 * experiments/schema.json is `kvlab schema`'s output and describes every committed config:
 * top-level fields, cache names (codecs and presets), cache object keys and policy types.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { POLICIES } from "../../src/cache/policies/registry.ts";
import { PRESETS } from "../../src/cache/presets.ts";
import { schemaText } from "../../src/commands/schema.ts";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import { CODECS } from "../../src/quant/registry.ts";

const DIR = join(REPO_ROOT, "experiments");
// biome-ignore lint/suspicious/noExplicitAny: parsed JSON and YAML, read by shape in assertions
type Json = Record<string, any>;

describe("experiment JSON Schema", () => {
  const committed = readFileSync(join(DIR, "schema.json"), "utf8");
  const schema = JSON.parse(committed) as Json;
  const [names, object] = schema.properties.caches.items.anyOf as [Json, Json];

  it("the committed experiments/schema.json is what `kvlab schema` prints now", () => {
    assert.equal(committed, schemaText(), "regenerate: npx kvlab schema --out experiments/schema.json");
  });

  it("names every codec, preset and policy of the registries", () => {
    assert.deepEqual(new Set(names.enum), new Set([...Object.keys(CODECS), ...Object.keys(PRESETS)]));
    const policy = object.properties.policy.anyOf[0] as Json;
    assert.deepEqual(new Set(policy.enum), new Set(Object.keys(POLICIES)));
  });

  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".yaml"))) {
    it(`${file}: fields, cache names and policy types are in the schema`, () => {
      const config = parse(readFileSync(join(DIR, file), "utf8")) as Json;
      for (const key of Object.keys(config)) assert.ok(key in schema.properties, `${file}: field ${key}`);
      for (const cache of (config.caches ?? []) as unknown[]) {
        if (typeof cache === "string") {
          assert.ok(names.enum.includes(cache), `${file}: cache ${cache}`);
          continue;
        }
        for (const key of Object.keys(cache as Json))
          assert.ok(key in object.properties, `${file}: cache key ${key}`);
        const policy = (cache as Json).policy;
        const type = typeof policy === "string" ? policy : policy?.type;
        if (type !== undefined) assert.ok(type in POLICIES, `${file}: policy ${type}`);
      }
    });
  }
});
