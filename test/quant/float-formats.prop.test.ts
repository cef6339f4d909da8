/**
 * The small float conversions (src/quant/half.ts) against brute-force oracles built from the
 * format definitions: every code's value is computed from its bit fields here, and the expected
 * encoding of x is the nearest code found by scanning all of them (ties to the even code).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  f32ToF16Down,
  f32ToF16Up,
  f32ToFp8E4M3,
  fp8E4M3ToF32,
  roundHalfEven,
} from "../../src/quant/half.ts";

fc.configureGlobal({ includeErrorInReport: true });

interface Grid {
  name: string;
  mantBits: number;
  /** Value of a non-negative code, from its exponent and mantissa fields. */
  value(code: number): number;
  /** Codes 0..last are the non-negative grid; `last` may be a virtual point (IEEE Inf) for rounding. */
  last: number;
  signBit: number;
}

/**
 * For IEEE formats `lastCode` is the Inf code: its bit fields read as 2^(emax+1), where the next
 * binade would start, so values at or beyond the midpoint to it round to Inf, as IEEE specifies.
 */
function grid(name: string, expBits: number, mantBits: number, lastCode: number): Grid {
  const bias = 2 ** (expBits - 1) - 1;
  const value = (code: number) => {
    const e = code >> mantBits;
    const m = code & ((1 << mantBits) - 1);
    if (e === 0) return m * 2 ** (1 - bias - mantBits); // subnormal
    return (2 ** mantBits + m) * 2 ** (e - bias - mantBits);
  };
  return { name, mantBits, value, last: lastCode, signBit: 1 << (expBits + mantBits) };
}

const F16 = grid("f16", 5, 10, 0x7c00);
const BF16 = grid("bf16", 8, 7, 0x7f80);
// E4M3 saturates: the nearest among the finite codes 0..0x7e (0x7f is NaN; no Inf).
const FP8 = grid("fp8-e4m3", 4, 3, 0x7e);

/** Nearest code to x by scanning every code (ties to the even code); sign applied afterwards. */
function bruteNearest(g: Grid, x: number): number {
  const ax = Math.abs(x);
  const sign = x < 0 || Object.is(x, -0) ? g.signBit : 0;
  // Beyond the top point every error is huge and equal in f64 (absorption): the top is nearest.
  if (ax >= g.value(g.last)) return sign | g.last;
  let best = 0;
  let bestErr = Number.POSITIVE_INFINITY;
  for (let c = 0; c <= g.last; c++) {
    const err = Math.abs(g.value(c) - ax);
    if (err < bestErr || (err === bestErr && (c & 1) === 0 && (best & 1) === 1)) {
      best = c;
      bestErr = err;
    }
  }
  return sign | best;
}

/** Exactly halfway between two neighbouring codes (an f32 for these formats): the tie cases. */
function midpointArb(g: Grid) {
  return fc
    .tuple(fc.integer({ min: 0, max: g.last - 1 }), fc.boolean())
    .map(([c, neg]) => (neg ? -1 : 1) * ((g.value(c) + g.value(c + 1)) / 2));
}

function inputs(g: Grid, maxMag: number) {
  return fc.oneof(
    fc.float({ noNaN: true, noDefaultInfinity: true }),
    fc.float({ min: Math.fround(-maxMag), max: Math.fround(maxMag), noNaN: true }),
    fc.float({ min: Math.fround(-(2 ** -10)), max: Math.fround(2 ** -10), noNaN: true }),
    midpointArb(g),
  );
}

test("f16 code values from the bit fields equal f16ToF32 for every code", () => {
  for (let h = 0; h < 0x10000; h++) {
    const mag = h & 0x7fff;
    const got = f16ToF32(h);
    if (mag > 0x7c00) assert.ok(Number.isNaN(got), `0x${h.toString(16)}`);
    else if (mag === 0x7c00) assert.equal(got, h & 0x8000 ? -Infinity : Infinity);
    else assert.ok(Object.is(got, (h & 0x8000 ? -1 : 1) * F16.value(mag)), `0x${h.toString(16)}: ${got}`);
  }
});

test("f32ToF16 equals the brute-force nearest f16 (ties to even, overflow to Inf)", () => {
  fc.assert(
    fc.property(inputs(F16, 70000), (x) => {
      assert.equal(f32ToF16(x), bruteNearest(F16, x), `x=${x}`);
    }),
    { numRuns: 300 },
  );
});

test("f32ToF16Up/Down give the nearest f16 at or above / at or below x", () => {
  fc.assert(
    fc.property(fc.float({ min: -65504, max: 65504, noNaN: true }), (x) => {
      const up = f16ToF32(f32ToF16Up(x));
      const down = f16ToF32(f32ToF16Down(x));
      assert.ok(up >= x && down <= x, `x=${x}: down ${down}, up ${up}`);
      // Nothing on the f16 grid lies strictly between x and the result.
      const n = bruteNearest(F16, x);
      const near = (n & F16.signBit ? -1 : 1) * F16.value(n & 0x7fff);
      if (near >= x) assert.equal(up, near, `x=${x}`);
      if (near <= x) assert.equal(down, near, `x=${x}`);
    }),
    { numRuns: 300 },
  );
});

test("bf16 code values and f32ToBf16 equal the brute-force nearest (ties to even)", () => {
  for (let h = 0; h < 0x7f80; h += 7)
    assert.ok(Object.is(bf16ToF32(h), BF16.value(h)), `0x${h.toString(16)}`);
  fc.assert(
    fc.property(inputs(BF16, 3.3e38), (x) => {
      assert.equal(f32ToBf16(x), bruteNearest(BF16, x), `x=${x}`);
    }),
    { numRuns: 150 },
  );
});

test("fp8-e4m3 code values and f32ToFp8E4M3 equal the brute-force nearest, saturating at 448", () => {
  for (let v = 0; v < 0x7f; v++) assert.ok(Object.is(fp8E4M3ToF32(v), FP8.value(v)), `0x${v.toString(16)}`);
  assert.ok(Number.isNaN(fp8E4M3ToF32(0x7f)) && Number.isNaN(fp8E4M3ToF32(0xff)));
  fc.assert(
    fc.property(inputs(FP8, 600), (x) => {
      assert.equal(f32ToFp8E4M3(x), bruteNearest(FP8, x), `x=${x}`);
    }),
    { numRuns: 2000 },
  );
});

test("roundHalfEven: nearest integer, exact halves to the even neighbour", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.float({ min: -1e6, max: 1e6, noNaN: true }),
        fc.integer({ min: -1000, max: 1000 }).map((k) => k + 0.5),
      ),
      (y) => {
        const r = roundHalfEven(y);
        assert.ok(Number.isInteger(r), `${y} -> ${r}`);
        assert.ok(Math.abs(r - y) <= 0.5, `${y} -> ${r}`);
        if (Math.abs(r - y) === 0.5) assert.equal(Math.abs(r) % 2, 0, `${y} -> ${r} is not even`);
      },
    ),
  );
});
