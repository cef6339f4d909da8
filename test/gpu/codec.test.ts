/**
 * Every codec's WGSL encoder against the TypeScript reference: codes, scales and zero-points
 * bit-identical, the same non-finite/saturation counts; the WGSL decoder reproduces the
 * reference decode bit for bit. Inputs mix normal data with the edge cases the spec names
 * (NaN, +-Inf, -0, zero-range and constant groups, values beyond f16 range, f16 subnormals).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions } from "../../src/quant/types.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

const CASES: CodecOptions[] = [
  { type: "f32" },
  { type: "f16" },
  { type: "bf16" },
  { type: "fp8-e4m3" },
  { type: "int8", symmetric: true, group: 32 },
  { type: "int8", symmetric: false, group: 8 },
  { type: "int8", symmetric: true, group: "head" },
  { type: "int4", symmetric: false, group: 32 },
  { type: "int4", symmetric: true, group: 16 },
  { type: "int4", symmetric: false, group: 8 },
  { type: "int2", symmetric: false, group: 32 },
  { type: "int2", symmetric: true, group: 8 },
  { type: "int2", symmetric: false, group: "head" },
];

/** Rows of mixed data: scaled normals per row, plus special rows. (nRows, headDim) */
function makeRows(nRows: number, headDim: number, seed: number, withSubnormalF32: boolean): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(nRows * headDim);
  for (let row = 0; row < nRows; row++) {
    const kind = row % 8;
    const mag = 10 ** (r() * 8 - 4);
    for (let i = 0; i < headDim; i++) {
      let v = (r() * 2 - 1) * mag;
      if (kind === 1) v = 0; // all-zero row
      if (kind === 2) v = 1.2345; // constant (not an f16)
      if (kind === 3 && i % 5 === 0)
        v = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0][i % 4]!;
      if (kind === 4) v = (r() * 2 - 1) * 1e6; // beyond f16: scales saturate
      if (kind === 5) v = (r() * 2 - 1) * 2 ** -20; // f16 subnormal range
      if (kind === 6 && i % 3 === 0) v = Math.round(v * 4) / 4 + 0.5; // ties
      if (kind === 7 && withSubnormalF32) v = (r() * 2 - 1) * 2 ** -130;
      x[row * headDim + i] = v;
    }
  }
  return x;
}

function label(o: CodecOptions): string {
  return `${o.type}${o.symmetric === undefined ? "" : o.symmetric ? " sym" : " asym"}${o.group ? ` g${o.group}` : ""}`;
}

for (const opts of CASES) {
  for (const headDim of [64, 40, 6]) {
    test(`${label(opts)} headDim ${headDim}: GPU codes bit-identical to ref`, {
      skip: env.skip,
    }, async () => {
      const ops = env.ops!;
      const codec = makeCodec(opts);
      const nRows = 24;
      const src = makeRows(nRows, headDim, headDim * 31 + nRows, false);
      const L = codec.layout(headDim);
      const ref = allocRows(L, nRows + 2);
      const gpu = allocRows(L, nRows + 2);
      const refStats = codec.encode(src, nRows, headDim, ref, 2);
      const gpuStats = await ops.encodeRows(codec, src, nRows, headDim, gpu, 2);
      assert.deepEqual(gpuStats, refStats);
      for (let row = 2; row < nRows + 2; row++) {
        const what = `row ${row - 2} (${[...src.subarray((row - 2) * headDim, (row - 2) * headDim + 6)].join(", ")}...)`;
        assert.deepEqual(
          gpu.payload.subarray(row * L.payloadBytes, (row + 1) * L.payloadBytes),
          ref.payload.subarray(row * L.payloadBytes, (row + 1) * L.payloadBytes),
          `payload ${what}`,
        );
        assert.deepEqual(
          gpu.scales.subarray(row * L.scalesPerRow, (row + 1) * L.scalesPerRow),
          ref.scales.subarray(row * L.scalesPerRow, (row + 1) * L.scalesPerRow),
          `scales ${what}`,
        );
        assert.deepEqual(
          gpu.zeros.subarray(row * L.zerosPerRow, (row + 1) * L.zerosPerRow),
          ref.zeros.subarray(row * L.zerosPerRow, (row + 1) * L.zerosPerRow),
          `zeros ${what}`,
        );
      }
      // Decode: the GPU decoder on the reference codes equals the reference decode, bit for bit.
      const want = new Float32Array(nRows * headDim);
      const got = new Float32Array(nRows * headDim);
      codec.decode(ref, 2, nRows, headDim, want);
      await ops.decodeRows(codec, ref, 2, nRows, headDim, got);
      for (let i = 0; i < want.length; i++) {
        if (Number.isNaN(want[i]!)) assert.ok(Number.isNaN(got[i]!), `element ${i}: want NaN, got ${got[i]}`);
        else assert.ok(Object.is(got[i], want[i]), `element ${i}: want ${want[i]}, got ${got[i]}`);
      }
    });
  }
}

// WGSL allows a backend to flush f32 subnormals; the kernels avoid float arithmetic on inputs
// where it matters (bit-pattern comparisons, integer division), so llvmpipe is bit-exact here.
// Kept separate so that a backend that does flush shows up as exactly this test failing.
for (const opts of [
  { type: "f16" },
  { type: "int8", symmetric: false, group: 8 },
  { type: "int4", symmetric: true, group: 16 },
] as CodecOptions[]) {
  test(`${label(opts)}: f32 subnormal inputs encode bit-identically`, { skip: env.skip }, async () => {
    const codec = makeCodec(opts);
    const headDim = 32;
    const nRows = 8;
    const r = rng(7);
    const src = new Float32Array(nRows * headDim).map(() => (r() * 2 - 1) * 2 ** -130);
    const L = codec.layout(headDim);
    const ref = allocRows(L, nRows);
    const gpu = allocRows(L, nRows);
    assert.deepEqual(
      await env.ops!.encodeRows(codec, src, nRows, headDim, gpu, 0),
      codec.encode(src, nRows, headDim, ref, 0),
    );
    assert.deepEqual(gpu, ref);
  });
}
