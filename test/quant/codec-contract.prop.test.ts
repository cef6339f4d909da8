/**
 * Codec contract suite: every codec configuration (float codecs; int8/int4/int2 at every group
 * size, symmetric and asymmetric) through every available executor, with fast-check.
 *
 * - Round trip: |decode(encode(x)) - x| <= codec.errorBound for finite in-range elements, and
 *   that bound is itself tight (integer: scale/2 plus f32 rounding; floats: half an ulp), with
 *   scales checked against the group's range so a too-large scale cannot make it vacuous.
 * - Odd head sizes and partial last groups; rows written at an offset leave other rows alone and
 *   do not depend on what the destination held before (row padding bits are zero).
 * - NaN/±Inf do not poison the other elements of their group, are counted in nonFinite, and
 *   decode as documented; zero-range groups decode exactly; huge magnitudes saturate (counted),
 *   never decode to NaN.
 * - Every executor other than ref produces bit-identical codes, stats and decoded values.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import type { Executor } from "../../src/kernels/executor.ts";
import { f16ToF32 } from "../../src/quant/half.ts";
import { allocRows, type EncodedRows, type EncodeStats } from "../../src/quant/types.ts";
import { mulberry32 } from "../../src/rng.ts";
import { CODE_BITS, type CodecCase, codecCases, expectedLayout, ggmlCases } from "../helpers/codec-cases.ts";
import {
  allocRowsOn,
  availableExecutors,
  disposeTestExecutors,
  f32On,
  freeRowsOn,
  refExecutor,
  runsFor,
} from "../helpers/executors.ts";
import { FLOAT_FACTS, halfUlp } from "../helpers/float-formats.ts";

after(disposeTestExecutors);
// Print the failing assertion inside fast-check's report (node:test shows only the message).
fc.configureGlobal({ includeErrorInReport: true });

const executors = await availableExecutors();
const ref = await refExecutor();
const cases = codecCases();
const F16_MAX = 65504;

/** Runs per property per (executor, codec): 40 codec cases x 4 properties stay within a few seconds. */
const NUM_RUNS = Number(process.env.KVLAB_PROP_RUNS ?? 40);

interface Result {
  enc: EncodedRows; // plain copies of the encoded rows [0, nRows)
  stats: EncodeStats;
  dec: Float32Array; // (nRows, headDim)
}

/**
 * Encode src (nRows, headDim) on exec into rows [dstRow, dstRow + nRows) of a destination that
 * holds `fill` bytes, decode them back, and return plain copies. Checks the rows outside the
 * written range kept their bytes.
 */
async function roundTrip(
  exec: Executor,
  cc: CodecCase,
  src: Float32Array,
  nRows: number,
  headDim: number,
  dstRow = 0,
  fill = 0,
): Promise<Result> {
  const L = cc.codec.layout(headDim);
  const cap = dstRow + nRows + 1;
  const dst = allocRowsOn(exec, L, cap);
  dst.payload.fill(fill);
  dst.scales.fill(fill * 0x101);
  dst.zeros.fill(fill * 0x101);
  const srcOn = f32On(exec, src);
  const decOn = exec.allocF32(nRows * headDim);
  try {
    const stats = await exec.encodeRows(cc.codec, srcOn, nRows, headDim, dst, dstRow);
    await exec.decodeRows(cc.codec, dst, dstRow, nRows, headDim, decOn);
    const untouched = (a: Uint8Array | Uint16Array, per: number, v: number) => {
      for (let i = 0; i < dstRow * per; i++) assert.equal(a[i], v, `row before dstRow changed at ${i}`);
      for (let i = (dstRow + nRows) * per; i < cap * per; i++)
        assert.equal(a[i], v, `row after the written rows changed at ${i}`);
    };
    untouched(dst.payload, L.payloadBytes, fill);
    untouched(dst.scales, L.scalesPerRow, fill * 0x101);
    untouched(dst.zeros, L.zerosPerRow, fill * 0x101);
    return {
      enc: {
        payload: dst.payload.slice(dstRow * L.payloadBytes, (dstRow + nRows) * L.payloadBytes),
        scales: dst.scales.slice(dstRow * L.scalesPerRow, (dstRow + nRows) * L.scalesPerRow),
        zeros: dst.zeros.slice(dstRow * L.zerosPerRow, (dstRow + nRows) * L.zerosPerRow),
      },
      stats: { nonFinite: stats.nonFinite, saturated: stats.saturated },
      dec: decOn.slice(),
    };
  } finally {
    freeRowsOn(exec, dst);
    exec.free(srcOn);
    exec.free(decOn);
  }
}

/**
 * The round trip on `exec`, checked against ref: identical codes, stats and decoded values
 * (NaN equals NaN), and the same bytes whatever the destination held before.
 */
async function checkedRoundTrip(
  exec: Executor,
  cc: CodecCase,
  src: Float32Array,
  nRows: number,
  headDim: number,
  dstRow: number,
): Promise<Result> {
  const clean = await roundTrip(ref, cc, src, nRows, headDim, 0, 0);
  const dirty = await roundTrip(exec, cc, src, nRows, headDim, dstRow, 0xff);
  const who = exec.name === "ref" ? "ref into a dirty destination" : `${exec.name} vs ref`;
  assert.deepEqual(
    withoutPadding(dirty.enc.payload, cc, nRows, headDim),
    withoutPadding(clean.enc.payload, cc, nRows, headDim),
    `${who}: payload bytes differ`,
  );
  assert.deepEqual(dirty.enc.scales, clean.enc.scales, `${who}: scales differ`);
  assert.deepEqual(dirty.enc.zeros, clean.enc.zeros, `${who}: zero-points differ`);
  assert.deepEqual(dirty.stats, clean.stats, `${who}: encode stats differ`);
  for (let i = 0; i < clean.dec.length; i++)
    assert.ok(
      Object.is(dirty.dec[i], clean.dec[i]),
      `${who}: decoded[${i}] ${dirty.dec[i]} vs ${clean.dec[i]}`,
    );
  const L = expectedLayout(cc.options, headDim);
  assert.equal(clean.enc.payload.length, nRows * L.payloadBytes, "payload bytes per row");
  assert.equal(clean.enc.scales.length, nRows * L.scales, "scales per row");
  assert.equal(clean.enc.zeros.length, nRows * L.zeros, "zero-points per row");
  return dirty;
}

/**
 * The payload with each row's padding bits (the unused high bits of the last byte when
 * headDim * bits is not a multiple of 8) cleared: their content is unspecified (encode keeps
 * what the destination held), so comparisons ignore them.
 */
function withoutPadding(payload: Uint8Array, cc: CodecCase, nRows: number, headDim: number): Uint8Array {
  const used = (headDim * CODE_BITS[cc.options.type]) % 8;
  if (used === 0) return payload;
  const out = payload.slice();
  const rowBytes = out.length / nRows;
  for (let r = 0; r < nRows; r++) out[(r + 1) * rowBytes - 1]! &= (1 << used) - 1;
  return out;
}

const INT_BITS = { int8: 8, int4: 4, int2: 2 } as const;

/** Group facts of an integer codec row from the format rules: its scale and zero-point. */
function groupOf(cc: CodecCase, r: Result, row: number, i: number, headDim: number) {
  const L = expectedLayout(cc.options, headDim);
  const g = Math.floor(i / L.groupSize);
  const s = f16ToF32(r.enc.scales[row * L.nGroups + g]!);
  const m = cc.options.symmetric ? 0 : f16ToF32(r.enc.zeros[row * L.nGroups + g]!);
  const bits = INT_BITS[cc.options.type as keyof typeof INT_BITS];
  const qmax = 2 ** (bits - 1) - 1;
  const levels = 2 ** bits - 1;
  const start = g * L.groupSize;
  const end = Math.min(start + L.groupSize, headDim);
  return { g, s, m, qmax, levels, start, end };
}

/** The tight bound: integer scale/2 plus f32 rounding of the arithmetic; floats half an ulp. */
function tightBound(cc: CodecCase, r: Result, x: number, row: number, i: number, headDim: number): number {
  if (!cc.integer) return cc.options.type === "f32" ? 0 : halfUlp(x, FLOAT_FACTS[cc.options.type as "f16"]);
  const { s, m, qmax, levels } = groupOf(cc, r, row, i, headDim);
  const mag = cc.options.symmetric ? qmax * s : Math.abs(m) + levels * s;
  return s / 2 + 2 ** -22 * mag;
}

/**
 * Check every finite element that `inRange` accepts meets codec.errorBound and the tight bound,
 * and that each integer group's scale (and zero-point) fits the group's finite range.
 */
function checkBounds(
  cc: CodecCase,
  r: Result,
  src: Float32Array,
  nRows: number,
  headDim: number,
  inRange: (x: number) => boolean,
): void {
  for (let row = 0; row < nRows; row++) {
    for (let i = 0; i < headDim; i++) {
      const x = src[row * headDim + i]!;
      if (!Number.isFinite(x) || !inRange(x)) continue;
      const got = r.dec[row * headDim + i]!;
      const err = Math.abs(got - x);
      const bound = cc.codec.errorBound(x, r.enc, row, i, headDim);
      const tight = tightBound(cc, r, x, row, i, headDim);
      const where = `row ${row} element ${i}: x=${x} decoded=${got}`;
      assert.ok(err <= bound, `${where}: error ${err} > codec.errorBound ${bound}`);
      assert.ok(bound <= tight * (1 + 1e-12), `${where}: codec.errorBound ${bound} is looser than ${tight}`);
    }
    if (!cc.integer) continue;
    const L = expectedLayout(cc.options, headDim);
    for (let start = 0; start < headDim; start += L.groupSize) {
      const { s, m, qmax, levels, end } = groupOf(cc, r, row, start, headDim);
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (let i = start; i < end; i++) {
        const x = src[row * headDim + i]!;
        if (Number.isFinite(x)) {
          lo = Math.min(lo, x);
          hi = Math.max(hi, x);
        }
      }
      if (lo > hi || !inRange(lo) || !inRange(hi)) continue;
      const where = `row ${row} group at ${start}: [${lo}, ${hi}] s=${s} m=${m}`;
      // f16 rounding of the scale (up) costs at most one f16 ulp: relative 2^-10, or 2^-24 absolute.
      if (cc.options.symmetric) {
        const amax = Math.max(-lo, hi);
        assert.ok(s <= (amax / qmax) * (1 + 2 ** -10) + 2 ** -24, `${where}: scale too large`);
      } else {
        assert.ok(
          m <= lo && lo - m <= Math.abs(lo) * 2 ** -10 + 2 ** -24,
          `${where}: zero-point not just below min`,
        );
        assert.ok(s <= ((hi - m) / levels) * (1 + 2 ** -9) + 2 ** -24, `${where}: scale too large`);
      }
    }
  }
}

/** Whether |x| is within what the codec represents without saturating (float codecs only). */
function floatInRange(cc: CodecCase, x: number): boolean {
  return cc.integer || Math.abs(x) <= FLOAT_FACTS[cc.options.type as "f16"].max;
}

// ---- generators -------------------------------------------------------------------------------

const headDimArb = fc.oneof(
  fc.constantFrom(1, 3, 7, 9, 17, 31, 33, 63, 65, 100, 127, 129),
  fc.integer({ min: 1, max: 160 }),
);

/**
 * Rows whose values span many binades: each row is offset + u * 2^e with u in [-1, 1] (f32,
 * subnormals included), so groups are off-centre (asymmetric codecs) and some are tiny (f16
 * subnormal scales). |x| < 2^15 keeps every integer group in f16 range; fp8 sees values beyond
 * 448, which must be counted as saturated and are left out of the bound.
 */
const rowsArb = fc
  .record({
    headDim: headDimArb,
    nRows: fc.integer({ min: 1, max: 3 }),
    dstRow: fc.integer({ min: 0, max: 2 }),
  })
  .chain(({ headDim, nRows, dstRow }) =>
    fc.record({
      headDim: fc.constant(headDim),
      nRows: fc.constant(nRows),
      dstRow: fc.constant(dstRow),
      scaleExp: fc.array(fc.integer({ min: -30, max: 13 }), { minLength: nRows, maxLength: nRows }),
      offset: fc.array(fc.oneof(fc.constant(0), fc.float({ min: -2, max: 2, noNaN: true })), {
        minLength: nRows,
        maxLength: nRows,
      }),
      u: fc.array(fc.float({ min: -1, max: 1, noNaN: true }), {
        minLength: nRows * headDim,
        maxLength: nRows * headDim,
      }),
    }),
  )
  .map(({ headDim, nRows, dstRow, scaleExp, offset, u }) => {
    const src = new Float32Array(nRows * headDim);
    for (let r = 0; r < nRows; r++)
      for (let i = 0; i < headDim; i++)
        src[r * headDim + i] = (offset[r]! + u[r * headDim + i]!) * 2 ** scaleExp[r]!;
    return { headDim, nRows, dstRow, src };
  });

const nonFiniteArb = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY);

// ---- suites -------------------------------------------------------------------------------------

for (const exec of executors) {
  describe(`codec contract on ${exec.name}`, () => {
    test("arrays not from the executor's alloc* give the same codes and values as ref", {
      skip: exec.name === "ref" ? "ref is the oracle" : false,
    }, async () => {
      await fc.assert(
        fc.asyncProperty(rowsArb, fc.constantFrom(...cases), async ({ headDim, nRows, src }, cc) => {
          const L = cc.codec.layout(headDim);
          const want = allocRows(L, nRows);
          const got = allocRows(L, nRows);
          const wantStats = cc.codec.encode(src, nRows, headDim, want, 0);
          const gotStats = await exec.encodeRows(cc.codec, src.slice(), nRows, headDim, got, 0);
          assert.deepEqual({ ...gotStats }, { ...wantStats }, `${cc.label}: stats`);
          assert.deepEqual(got, want, `${cc.label}: encoded rows`);
          const a = new Float32Array(nRows * headDim);
          const b = new Float32Array(nRows * headDim);
          cc.codec.decode(want, 0, nRows, headDim, a);
          await exec.decodeRows(cc.codec, want, 0, nRows, headDim, b);
          assert.deepEqual(b, a, `${cc.label}: decoded`);
        }),
        { numRuns: runsFor(exec, NUM_RUNS * 2) },
      );
    });

    test("ggml block types (head_dim multiples of 32): same codes, counts and values as ref, bit for bit", {
      skip: exec.name === "ref" ? "ref is the oracle" : false,
    }, async () => {
      const ggmlRowsArb = fc.record({
        headDim: fc.constantFrom(32, 64, 96, 160),
        nRows: fc.integer({ min: 1, max: 3 }),
        dstRow: fc.integer({ min: 0, max: 2 }),
        seed: fc.integer(),
        special: fc.boolean(),
      });
      const before = exec.fallbacks.get("encodeRows") ?? 0;
      await fc.assert(
        fc.asyncProperty(
          ggmlRowsArb,
          fc.constantFrom(...ggmlCases()),
          async ({ headDim, nRows, dstRow, seed, special }, cc) => {
            const r = mulberry32(seed);
            const scale = 2 ** Math.floor(r() * 80 - 40);
            const src = new Float32Array(nRows * headDim).map(() => (r() * 2 - 1) * scale);
            // NaN / ±Inf and values beyond f16 range: counted the same way
            if (special)
              for (const x of [Number.NaN, Infinity, -Infinity, 1e30]) src[Math.floor(r() * src.length)] = x;
            const L = cc.codec.layout(headDim);
            const want = allocRows(L, dstRow + nRows);
            const got = allocRowsOn(exec, L, dstRow + nRows);
            const wantStats = cc.codec.encode(src, nRows, headDim, want, dstRow);
            const gotStats = await exec.encodeRows(cc.codec, f32On(exec, src), nRows, headDim, got, dstRow);
            assert.deepEqual({ ...gotStats }, { ...wantStats }, `${cc.label}: stats`);
            assert.deepEqual([...got.payload], [...want.payload], `${cc.label}: payload`);
            assert.deepEqual([...got.scales], [...want.scales], `${cc.label}: d`);
            assert.deepEqual([...got.zeros], [...want.zeros], `${cc.label}: m`);
            const a = new Float32Array(nRows * headDim);
            const b = exec.allocF32(nRows * headDim);
            cc.codec.decode(want, dstRow, nRows, headDim, a);
            await exec.decodeRows(cc.codec, want, dstRow, nRows, headDim, b);
            assert.deepEqual(
              new Uint32Array(b.slice().buffer),
              new Uint32Array(a.buffer),
              `${cc.label}: decoded`,
            );
          },
        ),
        { numRuns: runsFor(exec, NUM_RUNS * 2) },
      );
      if (exec.name === "wasm")
        assert.equal(exec.fallbacks.get("encodeRows") ?? 0, before, "wasm ran ref's encode");
    });

    for (const cc of cases) {
      test(`${cc.label}: round trip within the bound, odd sizes, offsets`, async () => {
        await fc.assert(
          fc.asyncProperty(rowsArb, async ({ headDim, nRows, dstRow, src }) => {
            const r = await checkedRoundTrip(exec, cc, src, nRows, headDim, dstRow);
            checkBounds(cc, r, src, nRows, headDim, (x) => floatInRange(cc, x));
            assert.equal(r.stats.nonFinite, 0);
            const over = src.filter((x) => !floatInRange(cc, x)).length;
            assert.equal(r.stats.saturated, over, "saturated counts exactly the out-of-range elements");
          }),
          { numRuns: runsFor(exec, NUM_RUNS) },
        );
      });

      test(`${cc.label}: NaN/±Inf counted, not poisoning their group`, async () => {
        const arb = rowsArb.chain((c) =>
          fc.record({
            c: fc.constant(c),
            bad: fc.array(fc.tuple(fc.nat(c.src.length - 1), nonFiniteArb), { minLength: 1, maxLength: 6 }),
          }),
        );
        await fc.assert(
          fc.asyncProperty(arb, async ({ c: { headDim, nRows, dstRow, src }, bad }) => {
            const x = src.slice();
            for (const [at, v] of bad) x[at] = v;
            const nBad = x.filter((v) => !Number.isFinite(v)).length;
            const r = await checkedRoundTrip(exec, cc, x, nRows, headDim, dstRow);
            assert.equal(r.stats.nonFinite, nBad, "nonFinite counts every NaN/±Inf");
            checkBounds(cc, r, x, nRows, headDim, (v) => floatInRange(cc, v));
            for (let at = 0; at < x.length; at++) {
              const v = x[at]!;
              if (Number.isFinite(v)) continue;
              const got = r.dec[at]!;
              if (!cc.integer) {
                // IEEE formats keep NaN and ±Inf; E4M3 has no Inf and saturates it to ±448.
                if (Number.isNaN(v)) assert.ok(Number.isNaN(got), `NaN decoded as ${got}`);
                else if (cc.options.type === "fp8-e4m3") assert.equal(got, Math.sign(v) * 448);
                else assert.equal(got, v);
                continue;
              }
              // Integer codecs (integer.ts): +Inf is encoded as the group's finite max, -Inf as its
              // min, NaN as 0 with its code clamped to the group's grid [m, m + levels * s].
              const row = Math.floor(at / headDim);
              const i = at % headDim;
              const { start, end, s: sc, m, levels, qmax } = groupOf(cc, r, row, i, headDim);
              const finite = Array.from(x.subarray(row * headDim + start, row * headDim + end)).filter(
                Number.isFinite,
              );
              const lo = finite.length ? Math.min(...finite) : 0;
              const hi = finite.length ? Math.max(...finite) : 0;
              const gridLo = cc.options.symmetric ? -qmax * sc : m;
              const gridHi = cc.options.symmetric ? qmax * sc : m + levels * sc;
              const want = Number.isNaN(v) ? Math.min(gridHi, Math.max(gridLo, 0)) : v > 0 ? hi : lo;
              const bound = tightBound(cc, r, want, row, i, headDim);
              assert.ok(
                Math.abs(got - want) <= bound,
                `${v} at ${at} decoded ${got}, expected ${want} within ${bound}`,
              );
            }
          }),
          { numRuns: runsFor(exec, NUM_RUNS / 2) },
        );
      });

      test(`${cc.label}: zero-range groups decode exactly`, async () => {
        const f16Finite = fc.integer({ min: 0, max: 0xffff }).filter((h) => (h & 0x7c00) !== 0x7c00);
        const arb = rowsArb.chain((c) =>
          fc.record({ c: fc.constant(c), h: f16Finite, which: fc.nat(), zero: fc.boolean() }),
        );
        await fc.assert(
          fc.asyncProperty(arb, async ({ c: { headDim, nRows, dstRow, src }, h, which, zero }) => {
            const x = src.slice();
            const L = expectedLayout(cc.options, headDim);
            const size = cc.integer ? L.groupSize : headDim;
            const nGroups = Math.ceil(headDim / size);
            const row = which % nRows;
            const start = (Math.floor(which / nRows) % nGroups) * size;
            const end = Math.min(start + size, headDim);
            // A whole group equal to one f16 value (or zero): representable by every codec's grid
            // when asymmetric (zero-point = the value, scale 0); zero is exact for every codec.
            const value = zero ? 0 : f16ToF32(h);
            x.fill(value, row * headDim + start, row * headDim + end);
            const r = await checkedRoundTrip(exec, cc, x, nRows, headDim, dstRow);
            // Exact: zero everywhere; an f16 constant in an asymmetric integer group (zero-point =
            // the value, scale 0) and in f32/f16. Other codecs only promise their bound.
            const exact =
              zero ||
              (cc.integer && !cc.options.symmetric) ||
              cc.options.type === "f32" ||
              cc.options.type === "f16";
            if (exact)
              for (let i = start; i < end; i++) {
                const got = r.dec[row * headDim + i]!;
                assert.equal(got, value, `element ${i}: constant ${value} decoded as ${got}`);
              }
            checkBounds(cc, r, x, nRows, headDim, (v) => floatInRange(cc, v));
          }),
          { numRuns: runsFor(exec, NUM_RUNS / 2) },
        );
      });

      test(`${cc.label}: huge magnitudes saturate (counted), never NaN`, async () => {
        const huge = fc.oneof(
          fc.float({ min: 1e5, max: Math.fround(3.4e38), noNaN: true }),
          fc.float({ min: 6e4, max: 3e5, noNaN: true }),
        );
        const arb = rowsArb.chain((c) =>
          fc.record({
            c: fc.constant(c),
            big: fc.array(fc.tuple(fc.nat(c.src.length - 1), huge, fc.boolean()), {
              minLength: 1,
              maxLength: 8,
            }),
            inf: fc.option(fc.nat(c.src.length - 1), { nil: undefined }),
          }),
        );
        await fc.assert(
          fc.asyncProperty(arb, async ({ c: { headDim, nRows, dstRow, src }, big, inf }) => {
            const x = src.slice();
            for (const [at, v, neg] of big) x[at] = neg ? -v : v;
            // An Inf beside huge finite values is non-finite, not saturated (counted once).
            if (inf !== undefined) x[inf] = Number.POSITIVE_INFINITY;
            const r = await checkedRoundTrip(exec, cc, x, nRows, headDim, dstRow);
            assert.equal(r.stats.nonFinite, inf === undefined ? 0 : 1);
            for (let at = 0; at < x.length; at++) {
              const got = r.dec[at]!;
              if (at === inf && !cc.integer) continue; // float codecs keep +Inf (the NaN/±Inf property checks it)
              assert.ok(!Number.isNaN(got), `element ${at} (${x[at]}) decoded as NaN`);
              if (cc.integer) assert.ok(Number.isFinite(got), `element ${at} (${x[at]}) decoded as ${got}`);
            }
            if (!cc.integer) {
              const over = x.filter((v) => Number.isFinite(v) && !floatInRange(cc, v)).length;
              assert.equal(r.stats.saturated, over, "saturated counts exactly the out-of-range elements");
              checkBounds(cc, r, x, nRows, headDim, (v) => floatInRange(cc, v));
              return;
            }
            // Integer codecs: every element off by more than its bound must be counted, and only
            // elements outside their group's grid, in groups that hold a value beyond f16 range,
            // can be (an asymmetric grid may then miss its max by f32 rounding: counted too).
            let violators = 0;
            let outside = 0;
            for (let row = 0; row < nRows; row++) {
              const L = expectedLayout(cc.options, headDim);
              for (let start = 0; start < headDim; start += L.groupSize) {
                const { s: sc, m, levels, qmax, end } = groupOf(cc, r, row, start, headDim);
                const vals = Array.from(x.subarray(row * headDim + start, row * headDim + end));
                const hasHuge = vals.some((v) => Number.isFinite(v) && Math.abs(v) > F16_MAX);
                const gridLo = cc.options.symmetric ? -qmax * sc : m;
                const gridHi = cc.options.symmetric ? qmax * sc : m + levels * sc;
                for (let i = start; i < end; i++) {
                  const v = x[row * headDim + i]!;
                  if (!Number.isFinite(v)) continue;
                  if (hasHuge && (v < gridLo || v > gridHi)) outside++;
                  if (Math.abs(r.dec[row * headDim + i]! - v) > tightBound(cc, r, v, row, i, headDim))
                    violators++;
                }
              }
            }
            assert.ok(
              violators <= r.stats.saturated,
              `${violators} clipped elements, ${r.stats.saturated} counted`,
            );
            assert.ok(
              r.stats.saturated <= outside,
              `${r.stats.saturated} counted, only ${outside} outside their grid`,
            );
            if (cc.options.symmetric) {
              const qmax = 2 ** (INT_BITS[cc.options.type as keyof typeof INT_BITS] - 1) - 1;
              const clipped = x.filter((v) => Number.isFinite(v) && Math.abs(v) > qmax * F16_MAX).length;
              assert.equal(r.stats.saturated, clipped, "symmetric: saturated = elements beyond qmax * 65504");
            }
          }),
          { numRuns: runsFor(exec, NUM_RUNS / 2) },
        );
      });
    }
  });
}
