/**
 * wasm encode/decode equals the TypeScript reference codecs bit for bit: codes, f16 scales and
 * zero-points, padding bits, decoded values and non-finite/saturation counts, on random shapes
 * (odd head sizes, every group size) and on hostile groups (NaN, ±Inf, ±0, huge, subnormal).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { f16ToF32, f32Bits, f32FromBits } from "../../src/quant/half.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions, type EncodedRows } from "../../src/quant/types.ts";
import { rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

let exec: WasmExecutor;
before(async () => {
  if (!wasmSkip) exec = await wasmExecutor();
});
after(() => exec?.dispose());

const SPECS: CodecOptions[] = [{ type: "f32" }, { type: "f16" }, { type: "bf16" }, { type: "fp8-e4m3" }];
for (const type of ["int8", "int4", "int2"] as const)
  for (const group of [8, 16, 32, 64, 128, "head"] as const)
    for (const symmetric of [true, false]) SPECS.push({ type, group, symmetric });

const SPECIALS = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  1e38,
  -3e38,
  70000,
  -65504,
  65520,
  2 ** -24,
  -(2 ** -25),
  1e-40,
  448,
  -464,
  3.3895313892515355e38,
];

/** Random rows with per-row magnitudes from 1e-6 to 1e5 and, with some probability, specials. */
function makeRows(seed: number, nRows: number, headDim: number, specialRate: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(nRows * headDim);
  for (let row = 0; row < nRows; row++) {
    const scale = 10 ** (r() * 11 - 6);
    const constant = r() < 0.1 ? (r() - 0.5) * scale : undefined;
    for (let i = 0; i < headDim; i++) {
      const k = row * headDim + i;
      if (r() < specialRate) x[k] = SPECIALS[Math.floor(r() * SPECIALS.length)]!;
      else if (constant !== undefined) x[k] = constant;
      else if (r() < 0.05) x[k] = r() < 0.5 ? 0 : -0;
      else x[k] = (r() - 0.5) * 2 * scale;
    }
  }
  return x;
}

function sameRows(a: EncodedRows, b: EncodedRows): string | undefined {
  for (const part of ["payload", "scales", "zeros"] as const) {
    const x = a[part];
    const y = b[part];
    if (x.length !== y.length) return `${part} length ${x.length} vs ${y.length}`;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return `${part}[${i}]: ref ${x[i]} wasm ${y[i]}`;
  }
  return undefined;
}

/** Fill with a byte pattern so padding bits and untouched rows must be preserved identically. */
function prefilled(
  layout: ReturnType<ReturnType<typeof makeCodec>["layout"]>,
  n: number,
  alloc?: WasmExecutor,
) {
  const rows = alloc
    ? {
        payload: alloc.allocU8(layout.payloadBytes * n),
        scales: alloc.allocU16(layout.scalesPerRow * n),
        zeros: alloc.allocU16(layout.zerosPerRow * n),
      }
    : allocRows(layout, n);
  rows.payload.fill(0xa5);
  rows.scales.fill(0x1234);
  rows.zeros.fill(0x4321);
  return rows;
}

function freeRows(e: WasmExecutor, rows: EncodedRows): void {
  e.free(rows.payload);
  e.free(rows.scales);
  e.free(rows.zeros);
}

function checkOne(
  spec: CodecOptions,
  headDim: number,
  nRows: number,
  seed: number,
  specialRate: number,
  inArena: boolean,
) {
  const codec = makeCodec(spec);
  const L = codec.layout(headDim);
  const src = makeRows(seed, nRows, headDim, specialRate);
  const dstRow = seed % 3;
  const ref = prefilled(L, nRows + 3);
  const refStats = codec.encode(src, nRows, headDim, ref, dstRow);
  const wasm = prefilled(L, nRows + 3, inArena ? exec : undefined);
  let wsrc = src;
  if (inArena) {
    wsrc = exec.allocF32(src.length);
    wsrc.set(src);
  }
  const wasmStats = exec.encodeRows(codec, wsrc, nRows, headDim, wasm, dstRow);
  const where = `${JSON.stringify(spec)} headDim=${headDim} nRows=${nRows} seed=${seed} arena=${inArena}`;
  assert.deepEqual(wasmStats, refStats, `stats ${where}`);
  const diff = sameRows(ref, wasm);
  assert.equal(diff, undefined, `codes differ: ${diff} (${where})`);
  // Decode (from the reference's encoding) must be bit-identical too.
  const refOut = new Float32Array(nRows * headDim);
  codec.decode(ref, dstRow, nRows, headDim, refOut);
  const wasmOut = inArena ? exec.allocF32(nRows * headDim) : new Float32Array(nRows * headDim);
  exec.decodeRows(codec, inArena ? wasm : ref, dstRow, nRows, headDim, wasmOut);
  for (let i = 0; i < refOut.length; i++) {
    const a = refOut[i]!;
    const b = wasmOut[i]!;
    if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))))
      assert.fail(`decode differs at ${i}: ref ${a} wasm ${b} (${where})`);
  }
  if (inArena) {
    freeRows(exec, wasm);
    exec.free(wsrc);
    exec.free(wasmOut);
  }
}

test("codecs: wasm codes and decodes equal the reference bit for bit (random shapes)", {
  skip: wasmSkip,
}, () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...SPECS),
      fc.integer({ min: 1, max: 160 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.constantFrom(0, 0.02, 0.3),
      fc.boolean(),
      (spec, headDim, nRows, seed, rate, inArena) => {
        checkOne(spec, headDim, nRows, seed, rate, inArena);
      },
    ),
    { numRuns: 400 },
  );
});

test("codecs: every spec on common head sizes, with and without non-finite input", { skip: wasmSkip }, () => {
  let seed = 1;
  for (const spec of SPECS)
    for (const headDim of [64, 128, 80, 33, 7])
      for (const rate of [0, 0.1]) checkOne(spec, headDim, 3, seed++, rate, seed % 2 === 0);
});

test("codecs: hostile groups (all non-finite, zero-sign, constant, saturating)", { skip: wasmSkip }, () => {
  const headDim = 32;
  const groups: number[][] = [
    Array(32).fill(Number.NaN),
    Array(32).fill(Number.POSITIVE_INFINITY),
    [-0, ...Array(31).fill(0)],
    [0, -0, ...Array(30).fill(0)],
    [-0, 1, 2, 3, ...Array(28).fill(-0)],
    [0, -1, -2, ...Array(29).fill(0)],
    Array(32).fill(-0),
    Array(32).fill(0.1),
    Array(32).fill(-70000),
    [1e38, -1e38, Number.NaN, Number.NEGATIVE_INFINITY, ...Array(28).fill(5)],
    [3e38, 1, 2, Number.POSITIVE_INFINITY, ...Array(28).fill(-2)],
  ];
  for (const spec of SPECS) {
    const codec = makeCodec(spec);
    const L = codec.layout(headDim);
    const src = new Float32Array(groups.flat());
    const ref = prefilled(L, groups.length);
    const wasm = prefilled(L, groups.length);
    const rs = codec.encode(src, groups.length, headDim, ref, 0);
    const ws = exec.encodeRows(codec, src, groups.length, headDim, wasm, 0);
    assert.deepEqual(ws, rs, JSON.stringify(spec));
    assert.equal(sameRows(ref, wasm), undefined, JSON.stringify(spec));
  }
});

test("codecs: arrays outside the wasm memory are copied and counted", { skip: wasmSkip }, () => {
  const before = exec.copies.in;
  checkOne({ type: "int4" }, 64, 2, 7, 0, false);
  assert.ok(exec.copies.in > before);
  const mid = exec.copies.in;
  checkOne({ type: "int4" }, 64, 2, 7, 0, true);
  // In-arena arrays pass by pointer: only the reference-encoded rows decoded above are foreign.
  assert.equal(exec.copies.in, mid);
});

test("float codecs: random f32 bit patterns (ties, subnormals, overflow) encode like the reference", {
  skip: wasmSkip,
}, () => {
  const r = rng(99);
  const n = 1 << 16;
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    // Uniform bit patterns, and patterns with the low 13 (f16), 16 (bf16) or 20 (fp8) bits at a tie.
    let b = Math.floor(r() * 2 ** 32) >>> 0;
    if (i % 4 === 1) b = ((b & ~0x1fff) | 0x1000) >>> 0;
    if (i % 4 === 2) b = ((b & ~0xffff) | 0x8000) >>> 0;
    if (i % 4 === 3) b = ((b & ~0xfffff) | 0x80000) >>> 0; // fp8-e4m3 tie
    // Every 16th: an exponent near fp8's range (2^-12 .. 2^10), where its rounding happens.
    if (i % 16 === 5) b = ((b & 0x807fffff) | ((115 + Math.floor(r() * 22)) << 23)) >>> 0;
    // JS reads of a signalling NaN set its quiet bit (the reference sees the value through a JS
    // number): keep NaN payloads, quiet.
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) b = (b | 0x400000) >>> 0;
    bits[i] = b;
  }
  const src = new Float32Array(bits.buffer);
  for (const type of ["f16", "bf16", "fp8-e4m3", "f32"] as const) {
    const codec = makeCodec(type);
    const L = codec.layout(n);
    const ref = allocRows(L, 1);
    const wasm = allocRows(L, 1);
    const rs = codec.encode(src, 1, n, ref, 0);
    const ws = exec.encodeRows(codec, src, 1, n, wasm, 0);
    assert.deepEqual(ws, rs, type);
    const diff = sameRows(ref, wasm);
    assert.equal(diff, undefined, `${type}: ${diff}`);
  }
});

/**
 * Rows on exact half-steps of an f16 scale, so x * inv lands on .5 ties: round-half-even must
 * match. Each group spans exactly the code range (sym: ±qmax * step; asym: lo .. lo + levels * step)
 * so the scale is the step itself; a few groups get a NaN, a zero extreme or a huge value, so
 * four-group batches of the fast path mix with groups the exact path encodes.
 */
function tieRows(
  bits: 8 | 4 | 2,
  symmetric: boolean,
  group: number,
  nRows: number,
  headDim: number,
  seed: number,
) {
  const r = rng(seed);
  const x = new Float32Array(nRows * headDim);
  const qmax = (1 << (bits - 1)) - 1;
  const levels = (1 << bits) - 1;
  for (let g = 0; g < x.length / group; g++) {
    const step = 2 ** (Math.floor(r() * 20) - 12);
    const span = symmetric ? 2 * qmax : levels;
    // Asymmetric groups whose min or max is zero, with +0 and -0 both present: the reference
    // takes the sign of the first zero, which reaches the f16 zero-point and scale.
    const z = r();
    const lo = symmetric
      ? -qmax * step
      : z < 0.15
        ? 0
        : z < 0.3
          ? -span * step
          : Math.floor((r() - 0.5) * 64) * step;
    for (let i = 0; i < group; i++) x[g * group + i] = lo + (Math.floor(r() * (2 * span + 1)) * step) / 2;
    x[g * group + Math.floor(r() * group)] = lo;
    x[g * group + Math.floor(r() * group)] = lo + span * step;
    if (z < 0.3) {
      x[g * group + Math.floor(r() * group)] = -0;
      x[g * group + Math.floor(r() * group)] = 0;
    }
    const odd = r();
    if (odd < 0.05) x[g * group + Math.floor(r() * group)] = Number.NaN;
    else if (odd < 0.1) x[g * group + Math.floor(r() * group)] = r() < 0.5 ? 0 : -0;
    else if (odd < 0.12) x[g * group + Math.floor(r() * group)] = 1e9;
  }
  return x;
}

test("int codecs: round-half-even ties and mixed fast/exact groups over many rows", {
  skip: wasmSkip,
}, () => {
  let seed = 1000;
  for (const type of ["int8", "int4", "int2"] as const)
    for (const group of [16, 32, 64, 128] as const)
      for (const symmetric of [true, false]) {
        const spec = { type, group, symmetric };
        const codec = makeCodec(spec);
        const headDim = 128;
        const nRows = 37;
        const L = codec.layout(headDim);
        const src = tieRows(codec.payloadBits as 8 | 4 | 2, symmetric, group, nRows, headDim, seed++);
        const ref = prefilled(L, nRows);
        const wasm = prefilled(L, nRows);
        const rs = codec.encode(src, nRows, headDim, ref, 0);
        const ws = exec.encodeRows(codec, src, nRows, headDim, wasm, 0);
        assert.deepEqual(ws, rs, JSON.stringify(spec));
        const diff = sameRows(ref, wasm);
        assert.equal(diff, undefined, `${JSON.stringify(spec)}: ${diff}`);
      }
});

test("f16: normal-range blocks with ties, and every f16 code decoded", { skip: wasmSkip }, () => {
  const r = rng(7);
  const codec = makeCodec("f16");
  const n = 1 << 14;
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    // f32 exponents 113..142 (f16 normal range), low 13 bits often exactly at the tie.
    const e = 113 + Math.floor(r() * 30);
    let m = Math.floor(r() * 2 ** 23);
    if (i % 2 === 0) m = (m & ~0x1fff) | 0x1000;
    bits[i] = ((r() < 0.5 ? 0x80000000 : 0) | (e << 23) | m) >>> 0;
  }
  // A few blocks of 32 get one value outside the fast range (65504 < |x| < 65536, Inf, tiny).
  for (const [at, v] of [
    [100, 65519],
    [200, -65520],
    [300, 0x7f800000],
    [400, 1e-6],
    [500, 0],
  ] as const)
    bits[at] = v > 0x1000000 ? v : new Uint32Array(new Float32Array([v]).buffer)[0]!;
  const src = new Float32Array(bits.buffer);
  const L = codec.layout(n);
  const ref = allocRows(L, 1);
  const wasm = allocRows(L, 1);
  assert.deepEqual(exec.encodeRows(codec, src, 1, n, wasm, 0), codec.encode(src, 1, n, ref, 0));
  assert.equal(sameRows(ref, wasm), undefined);
  // Decode: all 65536 codes in order (blocks with Inf/NaN codes), then only finite codes.
  const all = new Uint16Array(65536).map((_, i) => i);
  const finite = all.filter((h) => (h & 0x7c00) !== 0x7c00);
  for (const codes of [all, finite]) {
    const rows = {
      payload: new Uint8Array(codes.buffer),
      scales: new Uint16Array(0),
      zeros: new Uint16Array(0),
    };
    const a = new Float32Array(codes.length);
    const b = new Float32Array(codes.length);
    codec.decode(rows, 0, 1, codes.length, a);
    exec.decodeRows(codec, rows, 0, 1, codes.length, b);
    for (let i = 0; i < a.length; i++)
      if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i]))))
        assert.fail(`f16 code ${codes[i]}: ref ${a[i]} wasm ${b[i]}`);
  }
});

test("int codecs: scales and zero-points one f32 ulp away from an f16 (directed f16 rounding)", {
  skip: wasmSkip,
}, () => {
  const r = rng(2024);
  const headDim = 128;
  const nRows = 16;
  const group = 32;
  const specs: CodecOptions[] = [{ type: "int2", group, symmetric: true }];
  for (const type of ["int8", "int4", "int2"] as const) specs.push({ type, group, symmetric: false });
  for (const spec of specs) {
    const codec = makeCodec(spec);
    const src = new Float32Array(nRows * headDim);
    for (let g = 0; g < src.length / group; g++) {
      // An f16 normal value, then the f32 just above or below it: sym int2 has qmax = 1, so
      // amax / qmax is that f32 exactly; asym puts it as the group minimum (the zero-point).
      const h = 0x0400 + Math.floor(r() * 0x6800) + (r() < 0.5 ? 0x8000 : 0);
      const edge = f32FromBits(f32Bits(f16ToF32(h)) + (r() < 0.5 ? 1 : -1));
      for (let i = 0; i < group; i++)
        src[g * group + i] = spec.symmetric ? edge * (r() * 1.8 - 0.9) : edge + Math.abs(edge) * r();
      src[g * group + Math.floor(r() * group)] = edge;
    }
    const L = codec.layout(headDim);
    const ref = prefilled(L, nRows);
    const wasm = prefilled(L, nRows);
    assert.deepEqual(
      exec.encodeRows(codec, src, nRows, headDim, wasm, 0),
      codec.encode(src, nRows, headDim, ref, 0),
    );
    const diff = sameRows(ref, wasm);
    assert.equal(diff, undefined, `${JSON.stringify(spec)}: ${diff}`);
  }
});

test("fp8-e4m3: every code decoded, in and out of blocks holding a NaN code", { skip: wasmSkip }, () => {
  const codec = makeCodec("fp8-e4m3");
  const all = new Uint8Array(256).map((_, i) => i);
  // 64 codes per row: finite codes only, then all codes in a shuffled order.
  const finite = all.filter((v) => (v & 0x7f) !== 0x7f);
  const r = rng(5);
  const shuffled = all.slice().sort(() => r() - 0.5);
  for (const codes of [finite, all, shuffled]) {
    const rows = { payload: codes, scales: new Uint16Array(0), zeros: new Uint16Array(0) };
    const a = new Float32Array(codes.length);
    const b = new Float32Array(codes.length);
    codec.decode(rows, 0, 1, codes.length, a);
    exec.decodeRows(codec, rows, 0, 1, codes.length, b);
    for (let i = 0; i < a.length; i++)
      if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i]))))
        assert.fail(`fp8 code ${codes[i]}: ref ${a[i]} wasm ${b[i]}`);
  }
});

test("int codecs: any codes with any f16 scale/zero-point bits decode as the reference does", {
  skip: wasmSkip,
}, () => {
  // The SIMD decode scales codes that sit at bit offsets by s * 2^-k: exact only while that stays
  // a normal f32 and the product is the same real number, so hit it with every kind of f16 scale
  // (subnormal, largest, Inf, NaN, negative) and random codes, not just encoder output.
  const r = rng(2024);
  const pick = (): number => {
    const k = r();
    if (k < 0.1) return 1 + Math.floor(r() * 0x3ff); // subnormal
    if (k < 0.15) return [0x7bff, 0x7c00, 0xfc00, 0x7e00, 0, 0x8000, 0x0001][Math.floor(r() * 7)]!;
    return Math.floor(r() * 0x10000);
  };
  for (const type of ["int8", "int4", "int2"] as const)
    for (const group of [16, 32, 64, 128, 8, "head"] as const)
      for (const symmetric of [true, false]) {
        const codec = makeCodec({ type, group, symmetric });
        const headDim = group === 8 ? 72 : 128;
        const nRows = 13;
        const L = codec.layout(headDim);
        const rows = allocRows(L, nRows);
        for (let i = 0; i < rows.payload.length; i++) rows.payload[i] = Math.floor(r() * 256);
        for (let i = 0; i < rows.scales.length; i++) rows.scales[i] = pick();
        for (let i = 0; i < rows.zeros.length; i++) rows.zeros[i] = pick();
        const a = new Float32Array(nRows * headDim);
        const b = new Float32Array(nRows * headDim);
        codec.decode(rows, 0, nRows, headDim, a);
        exec.decodeRows(codec, rows, 0, nRows, headDim, b);
        for (let i = 0; i < a.length; i++)
          if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i]))))
            assert.fail(`${type} g${group} sym=${symmetric}: element ${i}: ref ${a[i]} wasm ${b[i]}`);
      }
});
