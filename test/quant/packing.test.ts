/**
 * Bit layout of the integer codecs, checked on hand-built examples (bytes written out by hand
 * from the documented layout, not computed by the code under test):
 *   int4: element 2j in the low nibble of byte j, 2j+1 in the high nibble;
 *   int2: element 4j+k in bits 2k..2k+1 of byte j;
 *   symmetric codes are offset-binary (u = q + 2^(b-1)); asymmetric codes are q in [0, 2^b - 1].
 * Inputs are chosen so the scale is exactly 1 and the zero-point 0 (or -qmax..qmax for
 * symmetric), making every code equal to the element value.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions } from "../../src/quant/types.ts";

function encodeOne(options: CodecOptions, values: number[]) {
  const codec = makeCodec(options);
  const rows = allocRows(codec.layout(values.length), 1);
  codec.encode(Float32Array.from(values), 1, values.length, rows, 0);
  return rows;
}

test("int4 asymmetric: element 2j in the low nibble, 2j+1 in the high nibble", () => {
  const x = [3, 12, 0, 15, 5, 9, 7, 1, 2, 4, 6, 8, 10, 11, 13, 14];
  const rows = encodeOne({ type: "int4", group: 16, symmetric: false }, x);
  assert.deepEqual(Array.from(rows.payload), [0xc3, 0xf0, 0x95, 0x17, 0x42, 0x86, 0xba, 0xed]);
  assert.deepEqual(Array.from(rows.scales), [0x3c00]); // f16 1.0
  assert.deepEqual(Array.from(rows.zeros), [0x0000]); // f16 0.0
});

test("int4 odd head size: the last byte holds one element in its low nibble", () => {
  const rows = encodeOne({ type: "int4", group: "head", symmetric: false }, [0, 15, 7]);
  assert.deepEqual(Array.from(rows.payload), [0xf0, 0x07]);
});

test("int2 asymmetric: element 4j+k in bits 2k..2k+1 of byte j", () => {
  const rows = encodeOne({ type: "int2", group: 8, symmetric: false }, [1, 3, 0, 2, 2, 0, 3, 1]);
  // byte 0: 1 | 3<<2 | 0<<4 | 2<<6 = 0b10_00_11_01; byte 1: 2 | 0<<2 | 3<<4 | 1<<6 = 0b01_11_00_10
  assert.deepEqual(Array.from(rows.payload), [0b10001101, 0b01110010]);
  assert.deepEqual(Array.from(rows.scales), [0x3c00]);
});

test("int8 symmetric: offset-binary codes u = q + 128", () => {
  const rows = encodeOne({ type: "int8", group: 8, symmetric: true }, [-127, 0, 127, 64, -1, 1, -64, 5]);
  assert.deepEqual(Array.from(rows.payload), [1, 128, 255, 192, 127, 129, 64, 133]);
  assert.deepEqual(Array.from(rows.scales), [0x3c00]);
  assert.equal(rows.zeros.length, 0);
});

test("int4 and int2 symmetric: offset-binary codes packed in the same nibble/crumb order", () => {
  // int4: qmax 7, offset 8: [-7, 7, 0, 3] -> u [1, 15, 8, 11] -> bytes 0xF1, 0xB8
  assert.deepEqual(
    Array.from(encodeOne({ type: "int4", group: 8, symmetric: true }, [-7, 7, 0, 3, 0, 0, 0, 0]).payload),
    [0xf1, 0xb8, 0x88, 0x88],
  );
  // int2: qmax 1, offset 2: [-1, 1, 0, 1] -> u [1, 3, 2, 3] -> 1 | 3<<2 | 2<<4 | 3<<6 = 0xED
  assert.deepEqual(
    Array.from(encodeOne({ type: "int2", group: 8, symmetric: true }, [-1, 1, 0, 1, 1, 1, 1, 1]).payload),
    [0xed, 0xff],
  );
});

test("groups along head_dim: one scale per group, the partial last group has its own scale", () => {
  // headDim 10, group 8: group 0 spans [0, 8) with max 8 -> s = 8/127; group 1 is [8, 10) with max 2.
  const x = [8, 0, 0, 0, 0, 0, 0, 0, 2, -2];
  const rows = encodeOne({ type: "int8", group: 8, symmetric: true }, x);
  assert.equal(rows.scales.length, 2);
  // 2/127 = 0.0157480... lies in [2^-6, 2^-5) (f16 exponent field 9, ulp 2^-16); rounded UP:
  // 0x2408 = 0.0157470703125 is below it, 0x2409 = 0.0157623291015625 is the scale.
  assert.equal(rows.scales[1], 0x2409);
  assert.deepEqual(Array.from(rows.payload.subarray(8)), [128 + 127, 128 - 127]);
});

test("decode reads hand-built bytes: int4 asymmetric with scale 0.5 and zero-point -1", () => {
  const codec = makeCodec({ type: "int4", group: 8, symmetric: false });
  const rows = allocRows(codec.layout(4), 1);
  rows.payload.set([0x21, 0xf0]); // codes [1, 2, 0, 15]
  rows.scales[0] = 0x3800; // 0.5
  rows.zeros[0] = 0xbc00; // -1
  const out = new Float32Array(4);
  codec.decode(rows, 0, 1, 4, out);
  assert.deepEqual(Array.from(out), [-0.5, 0, -1, 6.5]);
});

test("decode reads hand-built bytes: int2 symmetric with scale 0.25", () => {
  const codec = makeCodec({ type: "int2", group: 8, symmetric: true });
  const rows = allocRows(codec.layout(5), 1);
  rows.payload.set([0b11100100, 0b00000011]); // codes [0, 1, 2, 3, 3] -> q = u - 2
  rows.scales[0] = 0x3400; // 0.25
  const out = new Float32Array(5);
  codec.decode(rows, 0, 1, 5, out);
  assert.deepEqual(Array.from(out), [-0.5, -0.25, 0, 0.25, 0.25]);
});
