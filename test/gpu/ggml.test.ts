/**
 * ggml's block types on WebGPU (src/gpu/wgsl/ggml.ts) against the TypeScript reference
 * (src/quant/ggml-*.ts, bit-identical to ggml's quantize_row_*_ref): the WGSL encoder's payload,
 * d, m and non-finite/saturation counts bit for bit on hard inputs (zero, constant and tied
 * blocks, ±Inf/NaN, blocks with no finite element, values beyond f16 range, magnitudes 1e-12 to
 * 1e30); the WGSL decoder bit for bit; and the GPU-resident cache's attention over ggml keys and
 * values (and f16 mixes) against the standard cache on `ref` within kv-cache.test.ts's ATTN_TOL.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import type { CacheSpecInput, KVShape } from "../../src/cache/types.ts";
import { GpuKVCache } from "../../src/gpu/kv-cache.ts";
import { createRefExecutor } from "../../src/kernels/ref.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows } from "../../src/quant/types.ts";
import { GGML_CODECS } from "../helpers/codec-cases.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

/** kv-cache.test.ts's tolerance (f32 online softmax on the GPU vs f64 in ref). */
const ATTN_TOL = 1e-4;

/** Rows of hard inputs (nRows, headDim): each row one kind. */
function hardRows(nRows: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(nRows * d);
  for (let row = 0; row < nRows; row++) {
    const kind = row % 10;
    const scale = 10 ** (Math.floor(r() * 43) - 12);
    for (let i = 0; i < d; i++) {
      let v = (r() + r() + r() - 1.5) * scale;
      if (kind === 0) v = 0;
      if (kind === 1) v = 1.2345 * scale;
      if (kind === 2) v = Math.round((r() - 0.5) * 32) * 0.25; // ties on the grids
      if (kind === 3) v = (r() - 0.5) * 3e38; // d / m beyond f16: saturated
      if (kind === 4) v = r() < 0.5 ? -scale : scale; // equal |max| of both signs
      if (kind === 5 && i % 7 === 0) v = [Number.NaN, Infinity, -Infinity, -0][i % 4]!;
      if (kind === 6 && i < 32) v = Number.NaN; // a block with no finite element
      if (kind === 7) v = (r() - 0.5) * 1e22; // iq4_nl: x^2 w overflows its refit sums
      x[row * d + i] = v;
    }
  }
  return x;
}

for (const type of GGML_CODECS)
  for (const headDim of [32, 64, 96]) {
    test(`${type} headDim ${headDim}: GPU codes and counts bit-identical to ref, decode too`, {
      skip: env.skip,
    }, async () => {
      const ops = env.ops!;
      const codec = makeCodec(type);
      const nRows = 30;
      const src = hardRows(nRows, headDim, headDim * 7 + type.length);
      const L = codec.layout(headDim);
      const ref = allocRows(L, nRows + 2);
      const gpu = allocRows(L, nRows + 2);
      const refStats = codec.encode(src, nRows, headDim, ref, 2);
      const gpuStats = await ops.encodeRows(codec, src, nRows, headDim, gpu, 2);
      for (let row = 2; row < nRows + 2; row++) {
        const what = `row ${row - 2} (${[...src.subarray((row - 2) * headDim, (row - 2) * headDim + 4)].join(", ")}...)`;
        const part = (a: Uint8Array | Uint16Array, per: number) => [
          ...a.subarray(row * per, (row + 1) * per),
        ];
        assert.deepEqual(
          part(gpu.payload, L.payloadBytes),
          part(ref.payload, L.payloadBytes),
          `payload ${what}`,
        );
        assert.deepEqual(part(gpu.scales, L.scalesPerRow), part(ref.scales, L.scalesPerRow), `d ${what}`);
        assert.deepEqual(part(gpu.zeros, L.zerosPerRow), part(ref.zeros, L.zerosPerRow), `m ${what}`);
      }
      assert.deepEqual(gpuStats, refStats);
      const want = new Float32Array(nRows * headDim);
      const got = new Float32Array(nRows * headDim);
      codec.decode(ref, 2, nRows, headDim, want);
      await ops.decodeRows(codec, ref, 2, nRows, headDim, got);
      for (let i = 0; i < want.length; i++)
        assert.ok(Object.is(got[i], want[i]), `element ${i}: want ${want[i]}, got ${got[i]}`);
    });
  }

test("random rows at random scales: GPU codes bit-identical to ref for every ggml type", {
  skip: env.skip,
}, async () => {
  const ops = env.ops!;
  for (const type of GGML_CODECS) {
    const codec = makeCodec(type);
    const d = 128;
    const nRows = 64;
    const r = rng(99);
    const src = new Float32Array(nRows * d);
    for (let row = 0; row < nRows; row++) {
      const s = 10 ** (r() * 16 - 8);
      for (let i = 0; i < d; i++) src[row * d + i] = (r() + r() + r() - 1.5) * s;
    }
    const L = codec.layout(d);
    const ref = allocRows(L, nRows);
    const gpu = allocRows(L, nRows);
    assert.deepEqual(await ops.encodeRows(codec, src, nRows, d, gpu, 0), codec.encode(src, nRows, d, ref, 0));
    assert.deepEqual([...gpu.payload], [...ref.payload], `${type} payload`);
    assert.deepEqual([...gpu.scales], [...ref.scales], `${type} d`);
    assert.deepEqual([...gpu.zeros], [...ref.zeros], `${type} m`);
  }
});

async function compare(spec: CacheSpecInput, shape: KVShape, chunks: number[], seed: number) {
  const { createWebGpuExecutor } = await import("../../src/gpu/executor.ts");
  const gpu = await createCache(spec, shape, { executor: await createWebGpuExecutor() });
  assert.ok(gpu instanceof GpuKVCache, `${JSON.stringify(spec)}: the GPU-resident cache holds ggml types`);
  const ref = await createCache(spec, shape, { executor: createRefExecutor() });
  const r = rng(seed);
  const { nLayers, nHeads, nKvHeads, headDim: d } = shape;
  let pos = 0;
  for (const n of chunks) {
    const positions = Int32Array.from({ length: n }, (_, i) => pos + i);
    pos += n;
    for (let l = 0; l < nLayers; l++) {
      const k = new Float32Array(nKvHeads * n * d).map(() => r() * 2 - 1);
      const v = new Float32Array(nKvHeads * n * d).map(() => r() * 2 - 1);
      const q = new Float32Array(nHeads * n * d).map(() => (r() * 2 - 1) * 2);
      const outG = new Float32Array(q.length);
      const outR = new Float32Array(q.length);
      await gpu.append(l, k, v, positions);
      await ref.append(l, k, v, positions);
      await gpu.attend(l, q, positions, outG);
      await ref.attend(l, q, positions, outR);
      for (let i = 0; i < q.length; i++)
        assert.ok(
          Math.abs(outG[i]! - outR[i]!) <= ATTN_TOL,
          `${JSON.stringify(spec)} layer ${l} element ${i}: gpu ${outG[i]} ref ${outR[i]}`,
        );
    }
  }
  assert.deepEqual(gpu.memory(), ref.memory());
  gpu.dispose();
  ref.dispose();
}

test("GPU cache attention over ggml keys and values (and f16 mixes) equals ref's", {
  skip: env.skip,
}, async () => {
  const shape: KVShape = { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 64, maxTokens: 64 };
  let seed = 1;
  for (const type of GGML_CODECS) {
    await compare(type, shape, [5, 1, 1, 9], seed++);
    await compare({ codec: { keys: type, values: "f16" } }, shape, [7, 1], seed++);
    await compare({ codec: { keys: "f16", values: type } }, shape, [7, 1], seed++);
  }
});
