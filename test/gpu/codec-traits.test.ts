/**
 * The WGSL codec trait table (src/gpu/wgsl/codec.ts) and the GPU cache's codec check: every
 * codec of the registry has a row, a codec outside the table is a clear error from the WGSL
 * generators (never another codec's code), and a spec the GPU cache cannot hold is named. No
 * device needed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePolicy } from "../../src/cache/policies/registry.ts";
import { resolveCacheSpec } from "../../src/cache/spec.ts";
import { ConfigError } from "../../src/errors.ts";
import { gpuCacheUnsupported } from "../../src/gpu/kv-cache.ts";
import { gpuRowLayout } from "../../src/gpu/layout.ts";
import { decodeElemWgsl, encodeRowWgsl, hasWgslCodec, WGSL_CODECS } from "../../src/gpu/wgsl/codec.ts";
import { CODEC_NAMES, makeCodec } from "../../src/quant/registry.ts";
import type { Codec } from "../../src/quant/types.ts";
import { GGML_CODECS, TURBO_CODECS, TURBO_QJL_CODECS } from "../helpers/codec-cases.ts";

const shape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 32, maxTokens: 64 };

test("every registered codec has a WGSL row, and the rows are exactly the registry's codecs", () => {
  assert.deepEqual(Object.keys(WGSL_CODECS).sort(), [...CODEC_NAMES].sort());
  // TurboQuant_prod (QJL) has no WGSL kernels yet (null rows: the standard cache runs them);
  // TurboQuant's MSE codecs (wgsl/turbo.ts) and ggml's block types (wgsl/ggml.ts) do.
  assert.deepEqual(
    CODEC_NAMES.filter((name) => !hasWgslCodec(name)),
    [...TURBO_QJL_CODECS],
  );
  for (const name of [...TURBO_CODECS, ...GGML_CODECS]) assert.ok(hasWgslCodec(name), name);
});

test("a codec without WGSL kernels is an error naming it, not another codec's code", () => {
  const f16 = makeCodec("f16");
  const unknown = { ...f16, options: { ...f16.options, type: "int3" } } as unknown as Codec;
  const L = gpuRowLayout(f16, 32);
  for (const gen of [
    () => encodeRowWgsl(unknown, L, "enc", "src", "dst"),
    () => decodeElemWgsl(unknown, L, "dec", "buf"),
  ])
    assert.throws(
      gen,
      (e: unknown) => e instanceof ConfigError && /int3 has no WGSL kernels/.test(e.message),
    );
  assert.equal(hasWgslCodec("int3"), false);
});

test("gpuCacheUnsupported names what the GPU cache lacks, null for what it holds", () => {
  const why = (input: unknown) => {
    const spec = resolveCacheSpec(input);
    return gpuCacheUnsupported(spec, parsePolicy(spec.policy, "cache.policy").make({ shape, seed: 0 }));
  };
  assert.equal(why({ codec: { type: "int4", symmetric: true } }), null);
  assert.equal(why("q4_0"), null);
  assert.equal(why("turbo3-qjl"), "codec turbo3-qjl");
  assert.equal(why({ codec: "fp8-e4m3", policy: { type: "h2o", budget: 8 } }), null);
  assert.equal(why("kivi2"), "channel-axis keys");
  // Rotation runs on the device (kernels/hadamard.ts), except for a policy reading stored keys.
  assert.equal(why("int4-hadamard"), null);
  assert.equal(why({ codec: { values: { type: "int8", rotation: "hadamard" } } }), null);
  assert.equal(
    why({ codec: { type: "int8", rotation: "hadamard" }, policy: { type: "knorm", budget: 8 } }),
    "rotated keys read by the policy",
  );
  assert.equal(why({ codec: { keys: "int8", values: { type: "int8", residual: 16 } } }), "residual windows");
  assert.equal(why({ codec: "int8", policy: { type: "tiered", budget: 16 } }), "tiers");
  assert.equal(
    why({ codec: "int8", policy: { type: "sinks", budget: 16, positions: "cache" } }),
    "cache positions",
  );
});
