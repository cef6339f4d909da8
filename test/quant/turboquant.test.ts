/**
 * TurboQuant's MSE codecs (src/quant/turboquant.ts; Zandieh et al. 2025, arXiv:2504.19874):
 * layout and exact bits per element from the definition (codes + one f16 norm per row), the
 * stored norm, nearest-centroid codes, the round-trip bound, non-finite and huge inputs, the
 * distortion of rotated Gaussian rows against the codebook's and the paper's, the spec's default
 * rotation, and every executor bit-identical to ref (wasm with its own kernels, no fallback).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import fc from "fast-check";
import { resolveCacheSpec } from "../../src/cache/spec.ts";
import { HadamardRotation } from "../../src/quant/hadamard.ts";
import { f16ToF32, f32ToF16 } from "../../src/quant/half.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { turboCodebook } from "../../src/quant/turboquant-codebook.ts";
import { allocRows, type Codec, type EncodedRows } from "../../src/quant/types.ts";
import { mulberry32 } from "../../src/rng.ts";
import { CODE_BITS, TURBO_CODECS } from "../helpers/codec-cases.ts";
import {
  allocRowsOn,
  availableExecutors,
  disposeTestExecutors,
  f32On,
  freeRowsOn,
} from "../helpers/executors.ts";

after(disposeTestExecutors);

/** Coordinate widths from the definition: ceil(d/2) coordinates at the high width, the rest low. */
const WIDTHS = {
  turbo2: [2, 2],
  "turbo2.5": [2, 3],
  turbo3: [3, 3],
  "turbo3.5": [3, 4],
  turbo4: [4, 4],
} as const;
type Turbo = (typeof TURBO_CODECS)[number];
const width = (t: Turbo, d: number, i: number) => (i < Math.ceil(d / 2) ? WIDTHS[t][1] : WIDTHS[t][0]);

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function roundTrip(codec: Codec, src: Float32Array, nRows: number, d: number) {
  const enc = allocRows(codec.layout(d), nRows);
  const stats = codec.encode(src, nRows, d, enc, 0);
  const dec = new Float32Array(nRows * d);
  codec.decode(enc, 0, nRows, d, dec);
  return { enc, stats, dec };
}

test("layout and exact bits per element: codes plus one f16 norm per row", () => {
  // At head_dim 64, (payload bits + 16) / 64, written out: 2.25, 2.75, 3.25, 3.75, 4.25.
  const at64 = { turbo2: 2.25, "turbo2.5": 2.75, turbo3: 3.25, "turbo3.5": 3.75, turbo4: 4.25 };
  for (const t of TURBO_CODECS) {
    for (const d of [1, 3, 13, 63, 64, 65, 128]) {
      const L = makeCodec(t).layout(d);
      let bits = 0;
      for (let i = 0; i < d; i++) bits += width(t, d, i);
      assert.equal(L.payloadBytes, Math.ceil(bits / 8), `${t} d=${d} payload`);
      assert.equal(L.payloadBytes, Math.ceil((CODE_BITS[t] * d) / 8), `${t} d=${d} = ceil(rate * d / 8)`);
      assert.equal(L.scalesPerRow, 1);
      assert.equal(L.zerosPerRow, 0);
    }
    const L = makeCodec(t).layout(64);
    assert.equal(((L.payloadBytes + 2 * L.scalesPerRow) * 8) / 64, at64[t], `${t} bits/element at d=64`);
  }
});

test("round trip: f16 norm of the row, nearest centroid per coordinate, within errorBound", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...TURBO_CODECS),
      fc.oneof(fc.constantFrom(1, 2, 3, 13, 64, 65, 128), fc.integer({ min: 1, max: 130 })),
      fc.integer({ min: -20, max: 10 }),
      fc.integer(),
      (t, d, e, seed) => {
        const rand = mulberry32(seed);
        const nRows = 3;
        const src = Float32Array.from({ length: nRows * d }, () => gaussian(rand) * 2 ** e);
        const codec = makeCodec(t);
        const { enc, stats, dec } = roundTrip(codec, src, nRows, d);
        assert.deepEqual({ ...stats }, { nonFinite: 0, saturated: 0 });
        for (let r = 0; r < nRows; r++) {
          let ss = 0;
          for (let i = 0; i < d; i++) ss += src[r * d + i]! ** 2;
          assert.equal(enc.scales[r], f32ToF16(Math.sqrt(ss)), `row ${r}: stored norm`);
          const n = f16ToF32(enc.scales[r]!);
          if (n === 0) {
            // The norm underflowed f16 (below 2^-25): the row decodes to zeros, within the bound.
            for (let i = 0; i < d; i++) {
              const x = src[r * d + i]!;
              assert.equal(dec[r * d + i], 0, `${t} d=${d} [${r},${i}]: a zero norm decodes to 0`);
              assert.ok(
                Math.abs(x) <= codec.errorBound(x, enc, r, i, d),
                `${t} [${r},${i}]: zero-norm bound`,
              );
            }
            continue;
          }
          for (let i = 0; i < d; i++) {
            const x = src[r * d + i]!;
            const got = dec[r * d + i]!;
            const c = turboCodebook(d, width(t, d, i)).centroids;
            // Decoded = n * some centroid, and no centroid lies nearer to x / n (f32 rounding aside).
            const u = x / n;
            const nearest = Math.min(...Array.from(c, (ci) => Math.abs(ci - u)));
            const chosen = Array.from(c).findIndex((ci) => Math.fround(n * ci) === got);
            assert.ok(chosen >= 0, `${t} d=${d} [${r},${i}]: ${got} is not n * a centroid`);
            assert.ok(
              Math.abs(c[chosen]! - u) <= nearest + 1e-6,
              `${t} [${r},${i}]: not the nearest centroid`,
            );
            const bound = codec.errorBound(x, enc, r, i, d);
            assert.ok(Math.abs(got - x) <= bound, `${t} [${r},${i}]: |${got} - ${x}| > ${bound}`);
            // Tight: within the widest half-gap of the book or the clip distance past its end.
            let halfGap = 0;
            for (let j = 0; j + 1 < c.length; j++) halfGap = Math.max(halfGap, (c[j + 1]! - c[j]!) / 2);
            const slack = Math.max(halfGap, Math.abs(u) - c[c.length - 1]!);
            assert.ok(bound <= n * slack + 1e-6 * (Math.abs(x) + n), `${t}: bound ${bound} too loose`);
          }
        }
      },
    ),
    { numRuns: 200 },
  );
});

test("zero rows decode to 0; NaN/±Inf are counted and leave the norm of the finite elements", () => {
  for (const t of TURBO_CODECS) {
    const codec = makeCodec(t);
    const d = 16;
    const zero = roundTrip(codec, new Float32Array(d), 1, d);
    assert.deepEqual(Array.from(zero.dec), new Array(d).fill(0));
    const x = Float32Array.from({ length: d }, (_, i) => (i % 3) - 1 + i / 32);
    const clean = roundTrip(codec, x, 1, d);
    const bad = x.slice();
    bad[2] = Number.NaN;
    bad[5] = Number.POSITIVE_INFINITY;
    bad[9] = Number.NEGATIVE_INFINITY;
    const r = roundTrip(codec, bad, 1, d);
    assert.equal(r.stats.nonFinite, 3);
    let ss = 0;
    for (let i = 0; i < d; i++) if (Number.isFinite(bad[i]!)) ss += bad[i]! ** 2;
    assert.equal(r.enc.scales[0], f32ToF16(Math.sqrt(ss)), "norm over the finite elements only");
    const n = f16ToF32(r.enc.scales[0]!);
    const hi = turboCodebook(d, width(t, d, 5)).centroids;
    const lo = turboCodebook(d, width(t, d, 9)).centroids;
    assert.equal(r.dec[5], Math.fround(n * hi[hi.length - 1]!), "+Inf: top centroid");
    assert.equal(r.dec[9], Math.fround(n * lo[0]!), "-Inf: bottom centroid");
    const c2 = turboCodebook(d, width(t, d, 2)).centroids;
    assert.equal(r.dec[2], Math.fround(n * c2[c2.length / 2]!), "NaN: the innermost positive centroid");
    for (const v of r.dec) assert.ok(Number.isFinite(v));
    assert.ok(clean.stats.nonFinite === 0);
  }
});

test("a norm beyond f16 saturates (counted) and decodes finite", () => {
  const codec = makeCodec("turbo3");
  const d = 8;
  const x = Float32Array.from({ length: d }, (_, i) => (i === 0 ? 1e6 : 1));
  const r = roundTrip(codec, x, 1, d);
  assert.equal(r.stats.saturated, d);
  assert.equal(f16ToF32(r.enc.scales[0]!), 65504);
  for (const v of r.dec) assert.ok(Number.isFinite(v));
});

test("distortion of rotated Gaussian rows: the codebook's MSE, under the paper's bound", () => {
  const d = 128;
  const nRows = 400;
  const rand = mulberry32(3);
  const rot = new HadamardRotation(d, 11);
  const x = Float32Array.from({ length: nRows * d }, () => gaussian(rand));
  rot.apply(x, nRows);
  // Theorem 1 of the paper: D_mse <= sqrt(3) pi / 2 * 4^-b for a unit vector.
  for (const t of TURBO_CODECS) {
    const { dec } = roundTrip(makeCodec(t), x, nRows, d);
    let rel = 0;
    for (let r = 0; r < nRows; r++) {
      let err = 0;
      let ss = 0;
      for (let i = 0; i < d; i++) {
        err += (dec[r * d + i]! - x[r * d + i]!) ** 2;
        ss += x[r * d + i]! ** 2;
      }
      rel += err / ss / nRows;
    }
    const [lo, hi] = WIDTHS[t];
    const want = (turboCodebook(d, lo).mse + turboCodebook(d, hi).mse) * (d / 2);
    assert.ok(Math.abs(rel - want) / want < 0.1, `${t}: measured D_mse ${rel} vs codebook ${want}`);
    const bound = ((Math.sqrt(3) * Math.PI) / 2) * (4 ** -lo + 4 ** -hi) * 0.5;
    assert.ok(rel < bound, `${t}: D_mse ${rel} above the paper's bound ${bound}`);
  }
});

test("the spec rotates TurboQuant sides by default; rotation: none is an explicit ablation", () => {
  const s = resolveCacheSpec("turbo3");
  assert.equal(s.keys.rotation, "hadamard");
  assert.equal(s.values.rotation, "hadamard");
  const off = resolveCacheSpec({ codec: { keys: { type: "turbo3", rotation: "none" }, values: "turbo4" } });
  assert.equal(off.keys.rotation, "none");
  assert.equal(off.values.rotation, "hadamard");
  assert.equal(resolveCacheSpec("int4").keys.rotation, "none");
  assert.throws(() => resolveCacheSpec({ codec: { type: "turbo3", group: 32 } }), /group/);
});

test("every executor: codes and decoded values bit-identical to ref (wasm: its kernels, no fallback)", async () => {
  for (const exec of await availableExecutors()) {
    const before = exec.fallbacks.get("encodeRows") ?? 0;
    for (const t of TURBO_CODECS) {
      const codec = makeCodec(t);
      const d = 64;
      const n = 5;
      const rand = mulberry32(7);
      const src = Float32Array.from({ length: n * d }, () => gaussian(rand));
      const want = roundTrip(codec, src, n, d);
      const rows: EncodedRows = allocRowsOn(exec, codec.layout(d), n);
      const srcOn = f32On(exec, src);
      const dec = exec.allocF32(n * d);
      try {
        await exec.encodeRows(codec, srcOn, n, d, rows, 0);
        await exec.decodeRows(codec, rows, 0, n, d, dec);
        assert.deepEqual(rows.payload.slice(), want.enc.payload, `${exec.name} ${t} payload`);
        assert.deepEqual(rows.scales.slice(), want.enc.scales, `${exec.name} ${t} norms`);
        assert.deepEqual(dec.slice(), want.dec, `${exec.name} ${t} decoded`);
      } finally {
        freeRowsOn(exec, rows);
        exec.free(srcOn);
        exec.free(dec);
      }
    }
    // webgpu's synchronous ops are ref's, counted (its GPU cache has the WGSL kernels: test/gpu/turbo.test.ts)
    if (exec.name === "wasm")
      assert.equal(exec.fallbacks.get("encodeRows") ?? 0, before, "wasm: no fallback");
    if (exec.name === "webgpu")
      assert.ok((exec.fallbacks.get("encodeRows") ?? 0) > before, "webgpu: counted");
  }
});
