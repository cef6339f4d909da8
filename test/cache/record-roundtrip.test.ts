/**
 * A runs.jsonl record rebuilds its exact cache: every preset (alone and under a policy), resolved
 * as an experiment config resolves it, written as JSON the way the run store writes it, read
 * back and handed to createCache, gives a cache with the same spec, the same spec hash, the
 * same bytes by part and bit-identical attention outputs as the cache built from the preset
 * name. Before the resolved spec carried storage options, kivi2 was recorded as plain int2
 * per-token rows and this test failed on its bytes and outputs.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PRESETS } from "../../src/cache/presets.ts";
import { specHash } from "../../src/experiment/hash.ts";
import { validateConfig } from "../../src/experiment/schema.ts";
import { drive, makeCache, smallShape } from "./policies/drive.ts";

const shape = smallShape({ nLayers: 1, headDim: 32, maxTokens: 512 });
const POLICIES = [undefined, { type: "h2o", budget: 160 }, { type: "window", budget: 150 }];

for (const preset of Object.keys(PRESETS))
  test(`preset ${preset}: record -> createCache rebuilds the same cache`, async () => {
    const caches = POLICIES.map((policy) => (policy ? { preset, policy } : preset));
    const config = validateConfig(
      {
        name: "roundtrip",
        model: "m",
        text: "t",
        protocol: { type: "chunked", ctx: 256, chunkSize: 32 },
        caches,
      },
      ".",
    );
    for (const [i, input] of caches.entries()) {
      const { spec } = config.caches[i + 1]!; // [0] is the f32 baseline
      const record = JSON.parse(JSON.stringify({ spec: { cache: spec } })).spec.cache;
      const byName = await makeCache(input, shape);
      const byRecord = await makeCache(record, shape);
      assert.deepEqual(byRecord.spec, byName.spec);
      const { name: _n, ...identity } = byRecord.spec;
      const { name: _m, ...recorded } = record;
      assert.equal(specHash(identity), specHash(recorded));
      // 300 tokens: past KIVI's 128-token residual, so whole channel groups are quantized.
      const outs: Float32Array[] = [];
      drive(byName, shape, 300, [7, 32], 5, (s) => outs.push(s.out));
      let j = 0;
      drive(byRecord, shape, 300, [7, 32], 5, (s) => {
        assert.deepEqual(s.out, outs[j++], `${spec.name}: attention output of step ${j}`);
      });
      assert.deepEqual(byRecord.memory(), byName.memory(), `${spec.name}: bytes by part`);
      byName.dispose();
      byRecord.dispose();
    }
  });
