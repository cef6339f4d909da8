import assert from "node:assert/strict";
import { test } from "node:test";
import { f16ToF32, f32ToF16, f32ToF16Down, f32ToF16Up, roundHalfEven } from "../../src/quant/half.ts";

test("f16 known values: normals, subnormals, overflow, NaN", () => {
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-2), 0xc000);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00); // halfway to 2^16 rounds to even -> Inf
  assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(f32ToF16(2 ** -25), 0x0000); // tie -> even (zero)
  assert.equal(f32ToF16(1.5 * 2 ** -25), 0x0001);
  assert.equal(f32ToF16(Number.POSITIVE_INFINITY), 0x7c00);
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(Number.NaN))));
  assert.equal(f16ToF32(0x3555), 0.333251953125);
});

test("f16 round trip of every finite f16 value is exact", () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    const x = f16ToF32(h);
    const back = f32ToF16(x);
    if (x === 0) assert.equal(back & 0x7fff, 0);
    else assert.equal(back, h, `h=${h.toString(16)}`);
  }
});

test("directed f16 rounding brackets the value", () => {
  for (const x of [0.1, -0.1, 1e-7, 3.3, 1000.3, -7.77]) {
    assert.ok(f16ToF32(f32ToF16Up(x)) >= x);
    assert.ok(f16ToF32(f32ToF16Down(x)) <= x);
  }
});

test("roundHalfEven matches banker's rounding", () => {
  assert.deepEqual(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(roundHalfEven),
    [0, 2, 2, -0, -2, -2, 2, -3],
  );
});
