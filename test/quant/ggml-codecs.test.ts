/**
 * ggml's block types (src/quant/ggml-*.ts) against their published definitions
 * (ggml-common.h block structs, ggml-quants.c quantize_row_*_ref): blocks computed by hand
 * here, from the definitions, byte for byte (codes, d and m as f16 bits); bits per element from
 * the block structs; head sizes that do not hold whole blocks refused by name; round trips
 * within the stated bound (and that bound tight); non-finite inputs counted; every executor
 * equal to ref; attention over ggml and mixed f16 / ggml caches, with and without rotation of
 * the ggml sides, equal to naive attention over the decoded rows.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { createCache } from "../../src/cache/create.ts";
import { resolveCacheSpec } from "../../src/cache/spec.ts";
import type { CacheSpecInput, KVShape } from "../../src/cache/types.ts";
import { ConfigError } from "../../src/errors.ts";
import { sideRotation } from "../../src/quant/hadamard.ts";
import { f16ToF32 } from "../../src/quant/half.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type Codec, type EncodedRows } from "../../src/quant/types.ts";
import { mulberry32 } from "../../src/rng.ts";
import { GGML_BITS, GGML_CODECS } from "../helpers/codec-cases.ts";
import { availableExecutors, disposeTestExecutors } from "../helpers/executors.ts";

after(disposeTestExecutors);
fc.configureGlobal({ includeErrorInReport: true });
const executors = await availableExecutors();

/** Encode one block (the given leading values, zeros after) with the registered codec. */
function block(type: string, lead: number[]) {
  const x = new Float32Array(32);
  lead.forEach((v, i) => {
    x[i] = v;
  });
  const codec = makeCodec({ type } as never);
  const rows = allocRows(codec.layout(32), 1);
  const stats = codec.encode(x, 1, 32, rows, 0);
  const dec = new Float32Array(32);
  codec.decode(rows, 0, 1, 32, dec);
  return { hex: Buffer.from(rows.payload).toString("hex"), d: rows.scales[0], m: rows.zeros[0], stats, dec };
}

/** qs bytes of 4-bit codes: element j in the low nibble of byte j, element j + 16 in its high nibble. */
function nibbles(codes: number[], rest: number): string {
  const c = Array.from({ length: 32 }, (_, j) => codes[j] ?? rest);
  return Array.from({ length: 16 }, (_, j) => (c[j]! | (c[j + 16]! << 4)).toString(16).padStart(2, "0")).join(
    "",
  );
}

describe("hand-computed blocks (ggml reference quantizers)", () => {
  test("q4_0: d = signed max / -8, code = min(15, trunc(x/d + 8.5)), d rounded to nearest f16", () => {
    // max = -8 (element 0) -> d = 1, codes trunc(x + 8.5): -8 -> 0; 7 -> 15; 7.9 -> 16 clipped
    // to 15; 0 -> 8; 0.5 -> 9 (halves go up); -0.5 -> 8; 2.49 -> 10; -3.75 -> 4; zeros -> 8.
    const b = block("q4_0", [-8, 7, 7.9, 0, 0.5, -0.5, 2.49, -3.75]);
    assert.equal(b.hex, nibbles([0, 15, 15, 8, 9, 8, 10, 4], 8));
    assert.equal(b.d, 0x3c00); // +1.0
    assert.deepEqual(Array.from(b.dec.subarray(0, 8)), [-8, 7, 7, 0, 1, 0, 2, -4]);
    // Ties on |x|: the first element wins (4, not -4): d = 4 / -8 = -0.5 (f16 0xb800); 4 -> code 0,
    // -4 -> trunc(8 + 8.5) = 16 -> clipped to 15, decoded (15 - 8) * -0.5 = -3.5 (16 levels, not 15).
    const t = block("q4_0", [4, -4]);
    assert.equal(t.hex, nibbles([0, 15], 8));
    assert.equal(t.d, 0xb800);
    assert.deepEqual(Array.from(t.dec.subarray(0, 2)), [4, -3.5]);
    // d = -8.0032 / 8 = -1.0004: 0.41 f16 ulps above 1, so nearest is -1.0 (0xbc00; rounding up
    // would give 0xbc01). The code of the max is still computed with the f32 d: 0.
    const r = block("q4_0", [8.0032]);
    assert.equal(r.d, 0xbc00);
    assert.equal(r.hex, nibbles([0], 8));
  });

  test("q8_0: d = amax / 127, code = roundf(x/d) (halves away from zero), int8 bytes", () => {
    // amax 127 -> d = 1: 127 -> 0x7f, 2.5 -> 3, -2.5 -> -3 (0xfd), 0.4 -> 0, -127 -> 0x81, 126.5 -> 127.
    const b = block("q8_0", [127, 2.5, -2.5, 0.4, -127, 126.5]);
    assert.equal(b.hex, `7f03fd00817f${"00".repeat(26)}`);
    assert.equal(b.d, 0x3c00);
    // amax = 127 * 1.0004 -> d = 1.0004 -> nearest f16 1.0 (0x3c00).
    assert.equal(block("q8_0", [127 * 1.0004]).d, 0x3c00);
  });

  test("q4_1: d = (max - min) / 15, m = min, code = min(15, trunc((x - min)/d + 0.5))", () => {
    // min -1, max 14 -> d = 1, m = -1 (0xbc00): -1 -> 0, 14 -> 15, 0.5 -> trunc(2.0) = 2,
    // 3.49 -> trunc(4.99) = 4, zeros -> 1.
    const b = block("q4_1", [-1, 14, 0.5, 3.49]);
    assert.equal(b.hex, nibbles([0, 15, 2, 4], 1));
    assert.equal(b.d, 0x3c00);
    assert.equal(b.m, 0xbc00);
    assert.deepEqual(Array.from(b.dec.subarray(0, 5)), [-1, 14, 1, 3, 0]);
  });

  test("q5_0: d = signed max / -16, code = min(31, trunc(x/d + 16.5)), qh (u32 LE) then qs", () => {
    // max -16 -> d = 1: -16 -> 0; 15 -> 31; 15.7 -> 32 clipped to 31; 0 -> 16; 0.5 -> 17; zeros -> 16.
    // Fifth bits: every element but element 0 -> qh = 0xfffffffe; low nibbles 0, 15, 15, 0, 1, 0...
    const b = block("q5_0", [-16, 15, 15.7, 0, 0.5]);
    assert.equal(b.hex, `feffffff${nibbles([0, 15, 15, 0, 1], 0)}`);
    assert.equal(b.d, 0x3c00);
  });

  test("q5_1: d = (max - min) / 31, code = trunc((x - min)/d + 0.5)", () => {
    // min 0, max 31 -> d = 1, m = 0: 0 -> 0, 31 -> 31, 16 -> 16, 15.5 -> 16, 0.2 -> 0.
    // Fifth bits of elements 1, 2, 3 -> qh = 0x0000000e; low nibbles 0, 15, 0, 0, 0...
    const b = block("q5_1", [0, 31, 16, 15.5, 0.2]);
    assert.equal(b.hex, `0e000000${nibbles([0, 15, 0, 0, 0], 0)}`);
    assert.equal(b.d, 0x3c00);
    assert.equal(b.m, 0x0000);
  });

  test("iq4_nl: indices into the 16-level table at d0 = max / -127, then one weighted least-squares d", () => {
    // Table -127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113 (indices 0..15).
    // [-127, 113, 0...]: max = -127 -> d0 = 1: -127 and 113 sit on their own levels (an exact
    // fit), so d = sum(wqx)/sum(wq^2) = 1 exactly; 0 is nearest to level 1 (index 8), not -10.
    const a = block("iq4_nl", [-127, 113]);
    assert.equal(a.hex, nibbles([0, 15], 8));
    assert.equal(a.d, 0x3c00);
    // [-127, 60, 0...] (weights x^2 = 16129, 3600; zeros weigh 0): d0 = 1, 60 lands on 53
    // (index 12; the midpoint to 69 is 61), so d = (16129*127*127 + 3600*53*60) /
    // (16129*127*127 + 3600*53*53) = 271592641 / 270257041 = 1.004942 = 1 + 5.06 f16 ulps -> 0x3c05;
    // the indices stay those chosen at d0: 0, 12, then 8.
    const b = block("iq4_nl", [-127, 60]);
    assert.equal(b.hex, nibbles([0, 12], 8));
    assert.equal(b.d, 0x3c05);
    const d = 1 + 5 / 1024;
    assert.deepEqual(Array.from(b.dec.subarray(0, 3)), [-127 * d, 53 * d, 1 * d].map(Math.fround));
  });

  test("an all-zero block: d = 0, zero codes decode to 0 (iq4_nl: index 8, level 1 * 0)", () => {
    for (const type of GGML_CODECS) {
      const b = block(type, []);
      // q4_0 and q5_0 divide the signed max 0 by -8 / -16: d = -0 (f16 0x8000), as in C.
      assert.equal(b.d, type === "q4_0" || type === "q5_0" ? 0x8000 : 0, type);
      assert.ok(
        b.dec.every((v) => v === 0),
        `${type}: ${Array.from(b.dec)}`,
      );
    }
  });
});

describe("specs, layout and bits per element", () => {
  test("each type is a codec and a preset; presets are both sides; mixes resolve as llama.cpp's -ctk/-ctv", () => {
    for (const type of GGML_CODECS) {
      const r = resolveCacheSpec(type);
      assert.equal(r.name, type);
      assert.equal(r.keys.type, type);
      assert.deepEqual(r.values, r.keys);
      const mix = resolveCacheSpec({ codec: { keys: "f16", values: type } });
      assert.equal(mix.name, `K:f16/V:${type}`);
      assert.equal(resolveCacheSpec({ codec: { keys: type, values: "f16" } }).keys.type, type);
    }
    assert.throws(
      () => resolveCacheSpec({ codec: { type: "q4_0", group: 64 } }),
      (e: unknown) => e instanceof ConfigError && e.path === "cache.codec.group",
    );
    assert.throws(
      () => resolveCacheSpec({ codec: { type: "q4_1", symmetric: true } }),
      (e: unknown) => e instanceof ConfigError && e.path === "cache.codec.symmetric",
    );
  });

  test("a head_dim that does not hold whole blocks of 32 is refused, naming the spec, head_dim and a fix", async () => {
    for (const headDim of [8, 48, 100])
      for (const spec of ["q4_0", { codec: { keys: "f16", values: "iq4_nl" } }] as CacheSpecInput[]) {
        const shape: KVShape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim, maxTokens: 4 };
        await assert.rejects(createCache(spec, shape, { executor: "ref" }), (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.match(e.message, new RegExp(`head_dim is ${headDim}`));
          assert.match(e.message, /cache "(q4_0|K:f16\/V:iq4_nl)" (keys|values)/);
          assert.match(e.message, /group/);
          return true;
        });
      }
  });

  for (const exec of executors)
    test(`memory on ${exec.name}: bits per element from the block structs, mixes averaged`, async () => {
      for (const headDim of [64, 128]) {
        const shape: KVShape = { nLayers: 1, nHeads: 2, nKvHeads: 1, headDim, maxTokens: 8 };
        for (const type of GGML_CODECS) {
          for (const [spec, bits] of [
            [type, GGML_BITS[type]],
            [{ codec: { keys: "f16", values: type } }, (16 + GGML_BITS[type]) / 2],
          ] as [CacheSpecInput, number][]) {
            const cache = await createCache(spec, shape, { executor: exec });
            try {
              const k = new Float32Array(3 * headDim).map((_, i) => Math.sin(i));
              await cache.append(0, k, k.map(Math.cos), Int32Array.from([0, 1, 2]));
              assert.equal(cache.memory().bitsPerElement, bits, `${JSON.stringify(spec)} d=${headDim}`);
            } finally {
              cache.dispose();
            }
          }
        }
      }
    });
});

const rowsArb = fc
  .record({
    blocks: fc.integer({ min: 1, max: 4 }),
    nRows: fc.integer({ min: 1, max: 3 }),
    exp: fc.integer({ min: -20, max: 12 }),
    offset: fc.oneof(fc.constant(0), fc.float({ min: -2, max: 2, noNaN: true })),
    seed: fc.integer(),
  })
  .map(({ blocks, nRows, exp, offset, seed }) => {
    const headDim = 32 * blocks;
    const rand = mulberry32(seed);
    const src = new Float32Array(nRows * headDim).map(() => (offset + rand() * 2 - 1) * 2 ** exp);
    return { headDim, nRows, src };
  });

/** Largest gap between adjacent levels of each type, in units of d (from the definitions). */
const LEVEL_GAP: Record<string, number> = { q4_0: 1, q4_1: 1, q5_0: 1, q5_1: 1, q8_0: 1, iq4_nl: 24 };
/** Largest |level| in units of d (q4_0: -8..7, q4_1: 0..15, q5_0: -16..15, q5_1: 0..31, q8_0: -128..127, iq4_nl: -127..113). */
/** Lowest and highest level in units of d (ggml-quants.c dequantize_row_*; kvalues_iq4nl). */
const GRID: Record<string, [number, number]> = {
  q4_0: [-8, 7],
  q4_1: [0, 15],
  q5_0: [-16, 15],
  q5_1: [0, 31],
  q8_0: [-128, 127],
  iq4_nl: [-127, 113],
};
const MAX_LEVEL: Record<string, number> = { q4_0: 8, q4_1: 15, q5_0: 16, q5_1: 31, q8_0: 128, iq4_nl: 127 };

function roundTrip(codec: Codec, src: Float32Array, nRows: number, headDim: number) {
  const rows = allocRows(codec.layout(headDim), nRows);
  const stats = codec.encode(src, nRows, headDim, rows, 0);
  const dec = new Float32Array(src.length);
  codec.decode(rows, 0, nRows, headDim, dec);
  return { rows, stats, dec };
}

describe("round trips", () => {
  for (const type of GGML_CODECS) {
    const codec = makeCodec({ type } as never);
    test(`${type}: within errorBound, and the bound within half the widest level gap (+ f16 rounding of d)`, () => {
      fc.assert(
        fc.property(rowsArb, ({ headDim, nRows, src }) => {
          const { rows, stats, dec } = roundTrip(codec, src, nRows, headDim);
          assert.deepEqual(stats, { nonFinite: 0, saturated: 0 });
          for (let i = 0; i < src.length; i++) {
            const row = Math.floor(i / headDim);
            const e = i % headDim;
            const bound = codec.errorBound(src[i]!, rows, row, e, headDim);
            assert.ok(
              Math.abs(dec[i]! - src[i]!) <= bound,
              `${type} element ${i}: ${src[i]} -> ${dec[i]} (bound ${bound})`,
            );
            // The bound itself is not vacuous: half the widest gap between levels, plus twice the
            // most f16 rounding of d (relative 2^-11, or 2^-25 absolute for subnormal d) moves the
            // farthest level, plus twice m's half ulp, plus f32 rounding.
            const b = Math.floor(e / 32);
            const d = Math.abs(f16ToF32(rows.scales[row * (headDim / 32) + b]!));
            const m = rows.zeros.length ? Math.abs(f16ToF32(rows.zeros[row * (headDim / 32) + b]!)) : 0;
            // Beyond the grid's ends (q4_0 / q5_0 clip the side opposite the max at 7d / 15d;
            // rounding d and m to f16 can move an end inside the block's range) the distance
            // to the nearest end counts too.
            const sd = f16ToF32(rows.scales[row * (headDim / 32) + b]!);
            const ms = rows.zeros.length ? f16ToF32(rows.zeros[row * (headDim / 32) + b]!) : 0;
            const [lo, hi] = [GRID[type]![0] * sd + ms, GRID[type]![1] * sd + ms].sort((p, q) => p - q);
            const x = src[i]!;
            // iq4_nl picks each index at d0 = max / -127 (the block's signed max), then refits d:
            // at most half the widest gap (12 d0) or the distance past the 113 end (14 d0), plus
            // how far the level moves from d0 to the stored d.
            if (type === "iq4_nl") {
              const blockVals = Array.from(src.subarray(row * headDim + b * 32, row * headDim + b * 32 + 32));
              const mx = blockVals.reduce((p, q) => (Math.abs(q) > Math.abs(p) ? q : p), 0);
              const d0 = Math.abs(mx / 127);
              const iqTight = 14 * d0 + 127 * Math.abs(Math.abs(sd) - d0) + 2 ** -20 * 127 * d0;
              assert.ok(bound <= iqTight, `iq4_nl: bound ${bound} > ${iqTight} (d ${sd}, d0 ${d0})`);
              continue;
            }
            const tight =
              Math.max(0, x - hi!, lo! - x) +
              (LEVEL_GAP[type]! / 2) * d +
              2 * MAX_LEVEL[type]! * (d * 2 ** -11 + 2 ** -25) +
              2 * (m * 2 ** -11 + 2 ** -25) +
              2 ** -20 * (MAX_LEVEL[type]! * d + m);
            assert.ok(bound <= tight, `${type}: bound ${bound} > ${tight} (d ${d}, m ${m})`);
          }
        }),
        { numRuns: 60 },
      );
    });

    test(`${type}: NaN and ±Inf counted, replaced (NaN -> 0, ±Inf -> block max/min), neighbours unharmed`, () => {
      const x = new Float32Array(64).map((_, i) => Math.sin(i) * 3);
      const clean = roundTrip(codec, x, 1, 64);
      const bad = x.slice();
      bad[40] = Number.NaN;
      const y = roundTrip(codec, bad, 1, 64);
      assert.equal(y.stats.nonFinite, 1);
      // The first block is untouched; the replaced element equals what 0 there would give.
      assert.deepEqual(y.dec.subarray(0, 32), clean.dec.subarray(0, 32));
      const zeroed = x.slice();
      zeroed[40] = 0;
      assert.deepEqual(y.dec, roundTrip(codec, zeroed, 1, 64).dec);
      const inf = x.slice();
      inf[3] = Number.POSITIVE_INFINITY;
      inf[5] = Number.NEGATIVE_INFINITY;
      const z = roundTrip(codec, inf, 1, 64);
      assert.equal(z.stats.nonFinite, 2);
      assert.ok(z.dec.every(Number.isFinite));
    });
  }
});

describe("executors", () => {
  for (const exec of executors) {
    test(`${exec.name}: encode/decode bit-identical to ref`, async () => {
      for (const type of GGML_CODECS) {
        const codec = makeCodec({ type } as never);
        const src = new Float32Array(3 * 64).map((_, i) => Math.sin(i * 1.3) * (1 + (i % 7)));
        const L = codec.layout(64);
        const want = allocRows(L, 3);
        const got: EncodedRows = allocRows(L, 3);
        codec.encode(src, 3, 64, want, 0);
        await exec.encodeRows(codec, src.slice(), 3, 64, got, 0);
        assert.deepEqual(got, want, `${exec.name} ${type}: codes`);
        const a = new Float32Array(src.length);
        const b = new Float32Array(src.length);
        codec.decode(want, 0, 3, 64, a);
        await exec.decodeRows(codec, want, 0, 3, 64, b);
        assert.deepEqual(b, a, `${exec.name} ${type}: decoded`);
      }
    });

    test(`${exec.name}: attend over ggml and mixed f16/ggml caches equals naive attention over the decoded rows`, async () => {
      const d = 64;
      const nKv = 2;
      const nHeads = 4;
      const n = 9;
      const shape: KVShape = { nLayers: 1, nHeads, nKvHeads: nKv, headDim: d, maxTokens: 16 };
      const rand = mulberry32(7);
      const k = new Float32Array(nKv * n * d).map(() => rand() * 4 - 2);
      const v = new Float32Array(nKv * n * d).map(() => rand() * 2 - 0.5);
      const q = new Float32Array(nHeads * d).map(() => rand() * 2 - 1);
      const positions = Int32Array.from({ length: n }, (_, i) => i);
      // Each mix with and without kvlab's Hadamard rotation of the ggml side(s) (seeded signs):
      // the expected rows are then R^T decode(encode(R x)).
      const seed = 11;
      for (const type of GGML_CODECS)
        for (const [kt, vt, rotate] of [
          [type, type, false],
          ["f16", type, false],
          [type, "f16", false],
          [type, type, true],
          ["f16", type, true],
          [type, "f16", true],
        ] as [string, string, boolean][]) {
          const side = (t: string) => (rotate && t !== "f16" ? { type: t, rotation: "hadamard" } : t);
          const cache = await createCache(
            { codec: { keys: side(kt), values: side(vt) } } as CacheSpecInput,
            shape,
            { executor: exec, seed },
          );
          const out = new Float32Array(q.length);
          try {
            await cache.append(0, k, v, positions);
            await cache.attend(0, q, Int32Array.from([n - 1]), out);
          } finally {
            cache.dispose();
          }
          const through = (x: Float32Array, t: string, s: "keys" | "values") => {
            const codec = makeCodec({ type: t } as never);
            if (!rotate || t === "f16") return roundTrip(codec, x, nKv * n, d).dec;
            const rot = sideRotation(s, d, seed);
            const y = x.slice();
            rot.apply(y, nKv * n);
            const z = roundTrip(codec, y, nKv * n, d).dec;
            rot.invert(z, nKv * n);
            return z;
          };
          const kd = through(k, kt, "keys");
          const vd = through(v, vt, "values");
          for (let h = 0; h < nHeads; h++) {
            const g = Math.floor(h / (nHeads / nKv));
            const s = Array.from({ length: n }, (_, t) => {
              let acc = 0;
              for (let i = 0; i < d; i++) acc += q[h * d + i]! * kd[(g * n + t) * d + i]!;
              return acc / Math.sqrt(d);
            });
            const mx = Math.max(...s);
            const w = s.map((x) => Math.exp(x - mx));
            const sum = w.reduce((a, b) => a + b, 0);
            for (let i = 0; i < d; i++) {
              let want = 0;
              for (let t = 0; t < n; t++) want += (w[t]! / sum) * vd[(g * n + t) * d + i]!;
              // Rotating q, k and the output adds f32 rounding of a few ulps per element.
              assert.ok(
                Math.abs(out[h * d + i]! - want) <= (rotate ? 1e-4 : 2e-5) * 2 + 1e-6,
                `${exec.name} K:${kt}/V:${vt}${rotate ? " rotated" : ""} head ${h} dim ${i}: ${out[h * d + i]} vs ${want}`,
              );
            }
          }
        }
    });
  }
});
