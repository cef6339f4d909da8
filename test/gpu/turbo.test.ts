/**
 * TurboQuant's WGSL kernels (src/gpu/wgsl/turbo.ts) against the TypeScript reference
 * (src/quant/turboquant.ts): codes and f16 norms bit-identical (the norm's f64 arithmetic is
 * reproduced in integers), the same non-finite / saturation counts, decode bit for bit, and the
 * GPU attention over TurboQuant keys and values equal to refAttend within ATTN_TOL. Rows span
 * 1e-6 to 1e7 in magnitude (norms past 65504 saturate), with zero rows and NaN / Inf elements.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AttendArgs } from "../../src/kernels/executor.ts";
import { refAttend } from "../../src/kernels/ref.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { TURBO_BITS } from "../../src/quant/turboquant.ts";
import { turboCodebook } from "../../src/quant/turboquant-codebook.ts";
import { allocRows, type CodecName } from "../../src/quant/types.ts";
import { gpuTestEnv, rng } from "./gpu-helper.ts";

const env = await gpuTestEnv();

/** Attention tolerance against ref (f32 online softmax vs f64), as test/gpu/kv-cache.test.ts. */
const ATTN_TOL = 1e-4;

const TURBO = ["turbo2", "turbo2.5", "turbo3", "turbo3.5", "turbo4"] as const;

function makeRows(nRows: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(nRows * d);
  const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0];
  for (let row = 0; row < nRows; row++) {
    const kind = row % 6;
    const mag = 10 ** (r() * 8 - 5);
    for (let i = 0; i < d; i++) {
      let v = (r() * 2 - 1) * mag;
      if (kind === 1) v = 0;
      if (kind === 2 && i % 5 === 0) v = specials[i % 4]!;
      if (kind === 3) v = (r() * 2 - 1) * 1e7; // norm beyond f16: saturates
      if (kind === 4) v = (r() * 2 - 1) * 2 ** -12; // small norms (f16 subnormal range for short rows)
      x[row * d + i] = v;
    }
  }
  return x;
}

for (const name of TURBO)
  test(`${name}: WGSL encode and decode bit-identical to ref (head sizes 64, 33, 6, 128)`, {
    skip: env.skip,
  }, async () => {
    const ops = env.ops!;
    const codec = makeCodec(name);
    for (const d of [64, 33, 6, 128]) {
      const n = 48;
      const x = makeRows(n, d, d * 13 + name.length);
      const want = allocRows(codec.layout(d), n);
      const got = allocRows(codec.layout(d), n);
      const ws = codec.encode(x, n, d, want, 0);
      const gs = await ops.encodeRows(codec, x, n, d, got, 0);
      assert.deepEqual(gs, ws, `${name} d=${d}: stats`);
      for (let r = 0; r < n; r++)
        assert.equal(got.scales[r], want.scales[r], `${name} d=${d} row ${r}: norm bits`);
      assert.deepEqual(got.payload, want.payload, `${name} d=${d}: codes`);
      const wd = new Float32Array(n * d);
      const gd = new Float32Array(n * d);
      codec.decode(want, 0, n, d, wd);
      await ops.decodeRows(codec, want, 0, n, d, gd);
      assert.deepEqual(new Uint32Array(gd.buffer), new Uint32Array(wd.buffer), `${name} d=${d}: decode`);
    }
  });

/**
 * Rows whose exact norm sits within an f32 half-ulp of the midpoint between two f16 values
 * (x = [M, e, 0...]: sqrt(M^2 + e^2) = M + ~e^2 / 2M), so only exact arithmetic rounds it as the
 * reference; and rows whose first element divided by the row's f16 norm lands within a few f32
 * ulps of a codebook boundary.
 */
function hardRows(d: number, bounds: Float32Array, seed: number): Float32Array {
  const r = rng(seed);
  const rows: number[][] = [];
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const ulp = (x: number) => {
    f32[0] = x;
    u32[0]! += 1;
    return f32[0]! - Math.fround(x);
  };
  for (let t = 0; t < 64; t++) {
    // M: an f16 midpoint (12 significant bits), e: lands sqrt(S) near M + ulp/2 (or M - ulp/2).
    const M = Math.fround((1024 + Math.floor(r() * 1024) + 0.5) * 2 ** (Math.floor(r() * 12) - 12));
    const e = Math.fround(Math.sqrt(M * ulp(M)) * (1 + (r() - 0.5) * 1e-3));
    const row = new Array(d).fill(0);
    row[0] = r() < 0.5 ? M : -M;
    if (d > 1) row[1] = t % 2 ? e : -e;
    rows.push(row);
  }
  for (let t = 0; t < 64 && d > 1; t++) {
    const H = Math.fround((1 + Math.floor(r() * 1024) / 1024) * 2 ** Math.floor(r() * 8 - 2)); // an f16
    const b = bounds[Math.floor(r() * bounds.length)]!;
    f32[0] = Math.fround(b * H);
    u32[0]! += Math.floor(r() * 7) - 3;
    const x0 = f32[0]!;
    const row = new Array(d).fill(0);
    row[0] = x0;
    row[1] = Math.fround(Math.sqrt(Math.max(0, H * H - x0 * x0)));
    rows.push(row);
  }
  return Float32Array.from(rows.flat());
}

for (const name of TURBO)
  test(`${name}: WGSL encode bit-identical on rows at f16 norm midpoints and codebook boundaries`, {
    skip: env.skip,
  }, async () => {
    const ops = env.ops!;
    const codec = makeCodec(name);
    for (const d of [64, 7]) {
      const x = hardRows(d, turboCodebook(d, TURBO_BITS[name][1]).boundaries, d + name.length);
      const n = x.length / d;
      const want = allocRows(codec.layout(d), n);
      const got = allocRows(codec.layout(d), n);
      const ws = codec.encode(x, n, d, want, 0);
      const gs = await ops.encodeRows(codec, x, n, d, got, 0);
      assert.deepEqual(gs, ws, `${name} d=${d}: stats`);
      for (let r = 0; r < n; r++)
        assert.equal(got.scales[r], want.scales[r], `${name} d=${d} row ${r}: norm bits`);
      assert.deepEqual(got.payload, want.payload, `${name} d=${d}: codes`);
    }
  });

for (const [kn, vn] of [
  ["turbo3", "turbo3"],
  ["turbo4", "turbo2.5"],
  ["turbo3.5", "f16"],
  ["int8", "turbo2"],
] as const)
  test(`GPU attend over ${kn} keys and ${vn} values equals refAttend`, { skip: env.skip }, async () => {
    const ops = env.ops!;
    for (const d of [64, 33]) {
      const r = rng(d + kn.length * 7);
      const nSlots = 90;
      const nRows = 3;
      const kc = makeCodec(kn as CodecName);
      const vc = makeCodec(vn as CodecName);
      const enc = (c: typeof kc, x: Float32Array) => {
        const rows = allocRows(c.layout(d), nSlots);
        c.encode(x, nSlots, d, rows, 0);
        return rows;
      };
      const k = new Float32Array(nSlots * d).map(() => r() * 4 - 2);
      const v = new Float32Array(nSlots * d).map(() => r() * 2 - 1);
      const args = (): AttendArgs => ({
        kCodec: kc,
        vCodec: vc,
        headDim: d,
        nRows,
        nSlots,
        scale: 1 / Math.sqrt(d),
        q: new Float32Array(nRows * d).map((_, i) => Math.sin(i * 0.37) * 2),
        qPos: Int32Array.of(100, 40, 0),
        k: enc(kc, k),
        v: enc(vc, v),
        slotPos: Int32Array.from({ length: nSlots }, (_, j) => (j * 7) % 101),
        out: new Float32Array(nRows * d),
        probs: new Float32Array(nRows * nSlots),
      });
      const want = args();
      refAttend(want);
      const got = args();
      await ops.attend(got);
      for (let i = 0; i < want.out.length; i++)
        assert.ok(
          Math.abs(got.out[i]! - want.out[i]!) <= ATTN_TOL,
          `d=${d} out[${i}]: gpu ${got.out[i]} ref ${want.out[i]}`,
        );
    }
  });
