/**
 * Cache option query: q8w (issue 15 lever 1, second half), on every available executor: the
 * resolved spec records it (name, hash apart from q8's and the exact spec's), and a cache's
 * attention equals attention computed here in f64, written independently of
 * src/quant/q8-weights.ts: query rows in q8_0 (as query-q8.test.ts), softmax in f64, then per
 * block of 32 slots and value group the weights times the slots' group scales rounded to
 * 127 * a / max a (ties to even), the weighted sum taken over the raw codes. Value codecs
 * int8 / int4, symmetric and asymmetric; f16 values (no q8w form: exact weights); GQA groups
 * of 1, 2 and 4 rows; 70 tokens (a partial last block); causal masks. On an executor whose
 * attend is ref's (webgpu: the GPU's own cache does not take query options), the fallback is
 * counted.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import { resolveCacheSpec } from "../../src/cache/spec.ts";
import type { KVShape } from "../../src/cache/types.ts";
import { specHash } from "../../src/experiment/hash.ts";
import { f16ToF32 } from "../../src/quant/half.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions } from "../../src/quant/types.ts";
import { mulberry32 as rng } from "../../src/rng.ts";
import { availableExecutors, disposeTestExecutors } from "../helpers/executors.ts";
import { causalSoftmax, q8Row } from "../helpers/q8-oracle.ts";

after(disposeTestExecutors);

test("spec: query q8w is recorded, named and hashed apart from q8 and exact", () => {
  const exact = resolveCacheSpec("int4");
  const q8 = resolveCacheSpec({ codec: "int4", query: "q8" });
  const q8w = resolveCacheSpec({ codec: "int4", query: "q8w" });
  assert.equal(q8w.query, "q8w");
  assert.equal(q8w.name, "int4a-g32+q8w-query");
  assert.deepEqual(resolveCacheSpec(q8w), q8w);
  const id = ({ name: _, ...rest }: typeof exact) => specHash(rest);
  assert.notEqual(id(q8w), id(q8));
  assert.notEqual(id(q8w), id(exact));
  assert.throws(
    () => resolveCacheSpec({ codec: "int4", query: "w8" as "q8" }),
    /cache\.query: expected "f32"/,
  );
});

/** nearest, ties to even */
function rne(x: number): number {
  const f = Math.floor(x);
  return x - f > 0.5 || (x - f === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

const VALUES: CodecOptions[] = [
  { type: "int8", symmetric: false },
  { type: "int8", symmetric: true },
  { type: "int4" },
  { type: "int4", symmetric: true, group: 64 },
  { type: "f16" },
];

const executors = await availableExecutors();
for (const exec of executors)
  test(`${exec.name}: cache attention with query q8w equals q8w attention computed here`, async () => {
    let seed = 11;
    let fallbacksSeen = 0;
    for (const vOpts of VALUES)
      for (const kType of ["int8", "f32"])
        for (const [headDim, group] of [
          [64, 2],
          [128, 4],
          [64, 1],
        ] as const) {
          const r = rng(seed++);
          const nKvHeads = 2;
          const nHeads = nKvHeads * group;
          const tokens = 70;
          const shape: KVShape = { nLayers: 1, nHeads, nKvHeads, headDim, maxTokens: tokens };
          const spec = { codec: { keys: { type: kType }, values: vOpts }, query: "q8w" as const };
          const cache = await createCache(spec as never, shape, { executor: exec });
          const k = new Float32Array(nKvHeads * tokens * headDim).map(() => r() * 4 - 2);
          const v = new Float32Array(nKvHeads * tokens * headDim).map(() => r() * 2 - 1 + 0.3);
          const pos = Int32Array.from({ length: tokens }, (_, i) => i);
          cache.append(0, k, v, pos);
          const nQ = 2;
          const q = new Float32Array(nHeads * nQ * headDim).map(() => (r() * 2 - 1) * 3);
          const qPos = Int32Array.of(tokens - 1, 40);
          const out = new Float32Array(q.length);
          const fb0 = exec.fallbacks.get("attend") ?? 0;
          cache.attend(0, q, qPos, out);
          fallbacksSeen += (exec.fallbacks.get("attend") ?? 0) - fb0;
          cache.dispose();
          // expected, in f64
          const kc = makeCodec({ type: kType } as CodecOptions);
          const kRows = allocRows(kc.layout(headDim), nKvHeads * tokens);
          kc.encode(k, nKvHeads * tokens, headDim, kRows, 0);
          const kd = new Float32Array(k.length);
          kc.decode(kRows, 0, nKvHeads * tokens, headDim, kd);
          const vc = makeCodec(vOpts);
          const L = vc.layout(headDim);
          const vRows = allocRows(L, nKvHeads * tokens);
          vc.encode(v, nKvHeads * tokens, headDim, vRows, 0);
          const vd = new Float32Array(v.length);
          vc.decode(vRows, 0, nKvHeads * tokens, headDim, vd);
          const isInt = vOpts.type === "int8" || vOpts.type === "int4";
          const bits = vOpts.type === "int8" ? 8 : 4;
          const sym = vc.options.symmetric;
          const off = sym ? 1 << (bits - 1) : 0;
          const code = (row: number, i: number) => {
            const b = vRows.payload[row * L.payloadBytes + (bits === 8 ? i : i >> 1)]!;
            return bits === 8 ? b : (b >> ((i & 1) * 4)) & 15;
          };
          let maxV = 0;
          for (const x of vd) maxV = Math.max(maxV, Math.abs(x));
          for (let h = 0; h < nHeads; h++) {
            const kvh = Math.floor(h / group);
            for (let t = 0; t < nQ; t++) {
              const row = (h * nQ + t) * headDim;
              const qh = q8Row(q.subarray(row, row + headDim));
              const p = causalSoftmax(qh, kd, kvh * tokens, tokens, headDim, pos, qPos[t]!);
              const want = new Float64Array(headDim);
              const ties = new Float64Array(headDim);
              if (!isInt)
                for (let j = 0; j < tokens; j++)
                  for (let i = 0; i < headDim; i++) want[i] += p[j]! * vd[(kvh * tokens + j) * headDim + i]!;
              else
                for (let j0 = 0; j0 < tokens; j0 += 32)
                  for (let g = 0; g < L.nGroups; g++) {
                    const js = Array.from({ length: Math.min(32, tokens - j0) }, (_, t2) => j0 + t2);
                    const slot = (j: number) => kvh * tokens + j;
                    const a = js.map((j) => p[j]! * f16ToF32(vRows.scales[slot(j) * L.nGroups + g]!));
                    const D = Math.max(...a) / 127;
                    for (let i = g * L.groupSize; i < Math.min(headDim, (g + 1) * L.groupSize); i++)
                      js.forEach((j, t2) => {
                        const x = D === 0 ? 0 : a[t2]! / D;
                        const u = code(slot(j), i) - off;
                        want[i] += D * rne(x) * u;
                        if (!sym) want[i] += p[j]! * f16ToF32(vRows.zeros[slot(j) * L.nGroups + g]!);
                        // a weight within float error of a half-integer code may round either way
                        if (Math.abs(x - Math.floor(x) - 0.5) < 0.01) ties[i] += D * Math.abs(u);
                      });
                  }
              for (let i = 0; i < headDim; i++) {
                const tol = 1e-6 + 1e-4 * maxV + ties[i]!;
                assert.ok(
                  Math.abs(out[row + i]! - want[i]!) <= tol,
                  `${exec.name} K ${kType} V ${JSON.stringify(vOpts)} d=${headDim} head ${h} t ${t} i ${i}: ${out[row + i]} vs ${want[i]} (tol ${tol})`,
                );
              }
            }
          }
        }
    // webgpu runs the standard cache's attend through ref for query options: counted, not silent
    if (exec.name === "webgpu") assert.ok(fallbacksSeen > 0, "webgpu: q8w attention is a counted fallback");
  });

test("query q8w changes attention against q8 (the weights are rounded): int4 values, ref", async () => {
  const r = rng(5);
  const shape: KVShape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim: 64, maxTokens: 40 };
  const k = new Float32Array(40 * 64).map(() => r() * 4 - 2);
  const v = new Float32Array(40 * 64).map(() => r() * 2 - 1);
  const pos = Int32Array.from({ length: 40 }, (_, i) => i);
  const q = new Float32Array(2 * 64).map(() => (r() * 2 - 1) * 3);
  const outs: Float32Array[] = [];
  for (const query of ["q8", "q8w"] as const) {
    const c = await createCache({ codec: "int4", query }, shape, { executor: "ref" });
    c.append(0, k, v, pos);
    const o = new Float32Array(q.length);
    c.attend(0, q, Int32Array.of(39), o);
    c.dispose();
    outs.push(o);
  }
  let diff = 0;
  for (let i = 0; i < q.length; i++) diff = Math.max(diff, Math.abs(outs[0]![i]! - outs[1]![i]!));
  assert.ok(diff > 1e-6, `q8 and q8w gave the same output (max diff ${diff})`);
});
