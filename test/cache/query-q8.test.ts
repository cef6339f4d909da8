/**
 * Cache option query: q8 (issue 15), on every available executor: the resolved spec records it
 * (and its hash differs from the exact spec's), and a cache's attention equals naive attention
 * computed here in f64 with each query row replaced by its q8_0 form, written here
 * independently of src/quant/q8-query.ts (per block of 32: d = amax / 127 in f32,
 * c = round half away from zero of x / d), over keys and values decoded with the codec's
 * reference decode. Shapes with head_dim 64 and 128 reach wasm's integer scores (int8/int4 keys),
 * the others its f32 path over the rounded rows; GQA groups of 1, 2 and 4 rows; causal masks.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { resolveCacheSpec } from "../../src/cache/spec.ts";
import type { KVShape } from "../../src/cache/types.ts";
import { specHash } from "../../src/experiment/hash.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions } from "../../src/quant/types.ts";
import { mulberry32 as rng } from "../../src/rng.ts";
import { availableExecutors, disposeTestExecutors } from "../helpers/executors.ts";
import { causalSoftmax, q8Row } from "../helpers/q8-oracle.ts";

after(disposeTestExecutors);

test("spec: query q8 is recorded, named and hashed; f32 (default) leaves the spec as it was", () => {
  const exact = resolveCacheSpec("int4");
  const q8 = resolveCacheSpec({ codec: "int4", query: "q8" });
  assert.equal(q8.query, "q8");
  assert.equal(q8.name, "int4a-g32+q8-query");
  assert.deepEqual(resolveCacheSpec({ codec: "int4", query: "f32" }), exact);
  assert.equal("query" in exact, false);
  assert.deepEqual(resolveCacheSpec(q8), q8);
  const { name: _a, ...idExact } = exact;
  const { name: _b, ...idQ8 } = q8;
  assert.notEqual(specHash(idQ8), specHash(idExact));
  assert.equal(resolveCacheSpec({ preset: "kivi2", query: "q8" }).query, "q8");
  assert.throws(() => resolveCacheSpec({ codec: "int4", query: "int8" }), /cache\.query: expected "f32"/);
});

const CODECS: CodecOptions[] = [
  { type: "f32" },
  { type: "int8" },
  { type: "int4" },
  { type: "int4", symmetric: true },
  { type: "int8", symmetric: false, group: 64 },
];

const executors = await availableExecutors();
for (const exec of executors)
  test(`${exec.name}: cache attention with query q8 equals naive attention over q8_0 queries`, async () => {
    let seed = 1;
    for (const codec of CODECS)
      for (const [headDim, group] of [
        [64, 2],
        [128, 4],
        [40, 1],
      ] as const) {
        const r = rng(seed++);
        const nKvHeads = 2;
        const nHeads = nKvHeads * group;
        const tokens = 70;
        const shape: KVShape = { nLayers: 1, nHeads, nKvHeads, headDim, maxTokens: tokens };
        const cache = await createCache({ codec, query: "q8" }, shape, { executor: exec });
        const k = new Float32Array(nKvHeads * tokens * headDim).map(() => r() * 4 - 2);
        const v = new Float32Array(nKvHeads * tokens * headDim).map(() => r() * 2 - 1 + 0.3);
        const pos = Int32Array.from({ length: tokens }, (_, i) => i);
        cache.append(0, k, v, pos);
        const nQ = 2;
        const q = new Float32Array(nHeads * nQ * headDim).map(() => (r() * 2 - 1) * 3);
        const qPos = Int32Array.of(tokens - 1, 30);
        const out = new Float32Array(q.length);
        cache.attend(0, q, qPos, out);
        cache.dispose();
        // expected, in f64
        const c = makeCodec(codec);
        const dec = (x: Float32Array) => {
          const rows = allocRows(c.layout(headDim), nKvHeads * tokens);
          c.encode(x, nKvHeads * tokens, headDim, rows, 0);
          const o = new Float32Array(x.length);
          c.decode(rows, 0, nKvHeads * tokens, headDim, o);
          return o;
        };
        const kd = dec(k);
        const vd = dec(v);
        let maxV = 0;
        for (const x of vd) maxV = Math.max(maxV, Math.abs(x));
        for (let h = 0; h < nHeads; h++) {
          const kvh = Math.floor(h / group);
          for (let t = 0; t < nQ; t++) {
            const row = (h * nQ + t) * headDim;
            const qh = q8Row(q.subarray(row, row + headDim));
            const p = causalSoftmax(qh, kd, kvh * tokens, tokens, headDim, pos, qPos[t]!);
            for (let i = 0; i < headDim; i++) {
              let o = 0;
              for (let j = 0; j < tokens; j++) o += p[j]! * vd[(kvh * tokens + j) * headDim + i]!;
              // f32 kernels: score rounding ~ headDim * 2^-24 * |q||k| moves weights by that much
              const tol = 1e-6 + 1e-4 * maxV;
              assert.ok(
                Math.abs(out[row + i]! - o) <= tol,
                `${exec.name} ${JSON.stringify(codec)} d=${headDim} head ${h} t ${t} i ${i}: ${out[row + i]} vs ${o}`,
              );
            }
          }
        }
      }
  });

test("query q8 changes attention (the option is not ignored): int4 cache, head_dim 64", async () => {
  const r = rng(5);
  const shape: KVShape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 64, maxTokens: 40 };
  const k = new Float32Array(40 * 64).map(() => r() * 4 - 2);
  const v = new Float32Array(40 * 64).map(() => r() * 2 - 1);
  const pos = Int32Array.from({ length: 40 }, (_, i) => i);
  const q = new Float32Array(2 * 64).map(() => (r() * 2 - 1) * 3);
  const outs: Float32Array[] = [];
  for (const spec of [{ codec: "int4" }, { codec: "int4", query: "q8" as const }]) {
    const c = await createCache(spec, shape, { executor: "ref" });
    c.append(0, k, v, pos);
    const o = new Float32Array(q.length);
    c.attend(0, q, Int32Array.of(39), o);
    c.dispose();
    outs.push(o);
  }
  let diff = 0;
  for (let i = 0; i < q.length; i++) diff = Math.max(diff, Math.abs(outs[0]![i]! - outs[1]![i]!));
  assert.ok(diff > 1e-6, `q8 and f32 queries gave the same output (max diff ${diff})`);
});
