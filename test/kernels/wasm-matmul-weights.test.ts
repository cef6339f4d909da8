/**
 * matmul over 16-bit weights (f16, bf16) and ggml Q8_0 blocks (src/kernels/weights.ts,
 * assembly/matmul.ts) on ref and wasm. Widening is exact, so on each executor the result must
 * equal, bit for bit, the f32 matmul over the same matrix widened by the specification
 * (src/quant/half.ts f16ToF32; bf16 = the bits << 16; Q8_0 = f16 scale x int8 code, ggml's
 * dequantize_row_q8_0); wasm and ref then agree within the f32 matmul's own tolerance.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import { createRefExecutor, refMatmul } from "../../src/kernels/ref.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { BF16Array, F16Array, type Matrix, Q8_0Array } from "../../src/kernels/weights.ts";
import { f16ToF32 } from "../../src/quant/half.ts";
import { firstMismatch, randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

const U = 2 ** -24;
/** As wasm-model-ops.test.ts: f32 sums in 4 lanes against ref's f64 sums. */
const matmulTol = (dIn: number, absSum: number) => (dIn / 4 + 8) * 2 * U * absSum + 1e-30;

let exec: WasmExecutor;
let exec2: WasmExecutor;
before(async () => {
  if (!wasmSkip) {
    exec = await wasmExecutor(1);
    exec2 = await wasmExecutor(2);
  }
});
after(() => {
  exec?.dispose();
  exec2?.dispose();
});

/** Random finite 16-bit weights: mostly ~N(0, 0.1), some subnormals, zeros and -0 (f16). */
function randomBits(type: "f16" | "bf16", r: () => number, n: number): Uint16Array {
  const out = new Uint16Array(n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    const p = r();
    if (type === "f16" && p < 0.05)
      out[i] = Math.floor(r() * 0x400) | (r() < 0.5 ? 0x8000 : 0); // subnormal / +-0
    else if (type === "f16") {
      let h: number;
      do h = Math.floor(r() * 0x10000);
      while ((h & 0x7c00) === 0x7c00 || (h & 0x7c00) > 0x4800); // finite, |w| < 2^3
      out[i] = h;
    } else {
      f[0] = (r() + r() + r() - 1.5) * 0.3;
      out[i] = u[0]! >>> 16; // truncation: a valid finite bf16
    }
  }
  return out;
}

/** The specification's widening (half.ts), independent of weights.ts. */
function widenSpec(type: "f16" | "bf16", bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++)
    if (type === "f16") out[i] = f16ToF32(bits[i]!);
    else u[i] = bits[i]! << 16;
  return out;
}

function make(type: "f16" | "bf16", bits: Uint16Array, into?: WasmExecutor): Matrix {
  const C = type === "f16" ? F16Array : BF16Array;
  if (!into) return new C(bits);
  const a = into.allocU16(bits.length);
  a.set(bits);
  return new C(a.buffer as ArrayBuffer, a.byteOffset, a.length);
}

function check(type: "f16" | "bf16", n: number, dIn: number, dOut: number, seed: number, arena: boolean) {
  const r = rng(seed);
  const x = randn(r, n * dIn);
  const bits = randomBits(type, r, dOut * dIn);
  const bias = r() < 0.5 ? randn(r, dOut) : undefined;
  const wide = widenSpec(type, bits);
  const what = `${type} n=${n} dIn=${dIn} dOut=${dOut} seed=${seed}`;
  // ref: bit for bit its own f32 path over the widened matrix
  const refHalf = new Float32Array(n * dOut);
  const refWide = new Float32Array(n * dOut);
  createRefExecutor().matmul(refHalf, x, make(type, bits), n, dIn, dOut, bias);
  refMatmul(refWide, x, wide, n, dIn, dOut, bias);
  assert.deepEqual(refHalf, refWide, `ref ${what}`);
  for (const e of [exec, exec2]) {
    const w16 = make(type, bits, arena ? e : undefined);
    const outHalf = new Float32Array(n * dOut);
    const outWide = new Float32Array(n * dOut);
    e.matmul(outHalf, x, w16, n, dIn, dOut, bias);
    e.matmul(outWide, x, wide, n, dIn, dOut, bias);
    assert.deepEqual(outHalf, outWide, `wasm (${e.threads} threads) ${what}: 16-bit != widened f32`);
    const bad = firstMismatch(refWide, outHalf, (k) => {
      const t = Math.floor(k / dOut);
      const o = k % dOut;
      let s = Math.abs(bias?.[o] ?? 0);
      for (let i = 0; i < dIn; i++) s += Math.abs(x[t * dIn + i]! * wide[o * dIn + i]!);
      return matmulTol(dIn, s);
    });
    assert.equal(bad, -1, `wasm vs ref ${what}: [${bad}] ref ${refWide[bad]} wasm ${outHalf[bad]}`);
    if (arena) e.free(w16);
  }
}

for (const type of ["f16", "bf16"] as const) {
  test(`matmul over ${type} weights: random shapes equal the widened f32 matmul exactly, and ref`, {
    skip: wasmSkip,
  }, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.boolean(),
        (n, dIn, dOut, seed, arena) => check(type, n, dIn, dOut, seed, arena),
      ),
      { numRuns: 60 },
    );
  });

  test(`matmul over ${type} weights: model-sized shapes (thread pool, decode matvec)`, {
    skip: wasmSkip,
  }, () => {
    check(type, 1, 576, 1536, 1, true);
    check(type, 7, 576, 200, 2, true);
    check(type, 1, 1536, 576, 3, false);
  });
}

test("matmul: a weight array of another type is refused naming the type", { skip: wasmSkip }, () => {
  const out = new Float32Array(2);
  const x = new Float32Array(4);
  const w = new Uint16Array(8) as unknown as Matrix;
  for (const e of [createRefExecutor(), exec])
    assert.throws(
      () => e.matmul(out, x, w, 1, 4, 2),
      /weights of type Uint16Array: expected Float32Array, F16Array, BF16Array or Q8_0Array/,
    );
});

/** Random Q8_0 rows: per block a finite f16 scale (|d| in [2^-14, 2^-4], some subnormal) and int8 codes. */
function randomQ8(r: () => number, nBlocks: number): Uint8Array {
  const out = new Uint8Array(nBlocks * 34);
  for (let b = 0; b < nBlocks; b++) {
    const d = r() < 0.1 ? Math.floor(r() * 0x400) : 0x0400 + Math.floor(r() * (0x2c00 - 0x0400));
    const h = d | (r() < 0.5 ? 0x8000 : 0);
    out[b * 34] = h & 0xff;
    out[b * 34 + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[b * 34 + 2 + j] = Math.floor(r() * 256); // int8 -128..127
  }
  return out;
}

function widenQ8Spec(bytes: Uint8Array): Float32Array {
  const n = (bytes.length / 34) * 32;
  const out = new Float32Array(n);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i < n; i++) {
    const b = Math.floor(i / 32) * 34;
    out[i] = f16ToF32(bytes[b]! | (bytes[b + 1]! << 8)) * q[b + 2 + (i % 32)]!;
  }
  return out;
}

function checkQ8(n: number, dIn: number, dOut: number, seed: number, arena: boolean) {
  const r = rng(seed);
  const x = randn(r, n * dIn);
  const bytes = randomQ8(r, (dOut * dIn) / 32);
  const bias = r() < 0.5 ? randn(r, dOut) : undefined;
  const wide = widenQ8Spec(bytes);
  const what = `q8_0 n=${n} dIn=${dIn} dOut=${dOut} seed=${seed}`;
  const refQ = new Float32Array(n * dOut);
  const refWide = new Float32Array(n * dOut);
  createRefExecutor().matmul(refQ, x, new Q8_0Array(bytes), n, dIn, dOut, bias);
  refMatmul(refWide, x, wide, n, dIn, dOut, bias);
  assert.deepEqual(refQ, refWide, `ref ${what}`);
  for (const e of [exec, exec2]) {
    let w: Q8_0Array;
    if (arena) {
      const a = e.allocU8(bytes.length);
      a.set(bytes);
      w = new Q8_0Array(a.buffer as ArrayBuffer, a.byteOffset, a.length);
    } else w = new Q8_0Array(bytes);
    const outQ = new Float32Array(n * dOut);
    const outWide = new Float32Array(n * dOut);
    e.matmul(outQ, x, w, n, dIn, dOut, bias);
    e.matmul(outWide, x, wide, n, dIn, dOut, bias);
    assert.deepEqual(outQ, outWide, `wasm (${e.threads} threads) ${what}: Q8_0 != dequantized f32`);
    const bad = firstMismatch(refWide, outQ, (k) => {
      const t = Math.floor(k / dOut);
      const o = k % dOut;
      let s = Math.abs(bias?.[o] ?? 0);
      for (let i = 0; i < dIn; i++) s += Math.abs(x[t * dIn + i]! * wide[o * dIn + i]!);
      return matmulTol(dIn, s);
    });
    assert.equal(bad, -1, `wasm vs ref ${what}: [${bad}] ref ${refWide[bad]} wasm ${outQ[bad]}`);
    if (arena) e.free(w);
  }
}

test("matmul over Q8_0 weights: equals the f32 matmul over the dequantized matrix exactly, and ref", {
  skip: wasmSkip,
}, () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.boolean(),
      (n, blocks, dOut, seed, arena) => checkQ8(n, 32 * blocks, dOut, seed, arena),
    ),
    { numRuns: 40 },
  );
  checkQ8(1, 576, 1536, 1, true); // thread pool, decode matvec
  checkQ8(7, 576, 200, 2, true); // thread pool, widened tiles
});

test("matmul over Q8_0 weights: dIn not a multiple of 32 is refused", { skip: wasmSkip }, () => {
  const w = new Q8_0Array(34 * 2);
  for (const e of [createRefExecutor(), exec])
    assert.throws(
      () => e.matmul(new Float32Array(2), new Float32Array(48), w, 1, 48, 2),
      /Q8_0 weights need dIn divisible by 32, got 48/,
    );
});

/** a and b hold the same f32 bit patterns (-0 is not +0), any NaN matching any NaN. */
function sameBits(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) continue;
    if (ua[i] !== ub[i]) return i;
  }
  return -1;
}

/**
 * Rows of x for the f16 decode matvec, which multiplies x * 2^112 by the weights' bits read as
 * w * 2^-112 (assembly/matmul.ts matvecF16) and falls back to the plain loop for a row with some
 * |x| >= 2^16, Inf or NaN. kind picks what the row holds.
 */
function edgeRow(kind: number, r: () => number, dIn: number): Float32Array {
  const x = randn(r, dIn);
  const at = () => Math.floor(r() * dIn);
  switch (kind) {
    case 0: // plain
      break;
    case 1: // exactly 2^16 somewhere: fallback (its scaled value would be Inf)
      x[at()] = r() < 0.5 ? 65536 : -65536;
      break;
    case 2: // the largest f32 below 2^16: scaled, x * 2^112 just under the largest finite f32
      x[at()] = -65535.99609375;
      x[at()] = 65535.99609375;
      break;
    case 3: // huge, Inf, NaN: fallback
      x[at()] = [1e30, -3e38, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN][
        Math.floor(r() * 5)
      ]!;
      break;
    case 4: // f32 subnormals, tiny normals and signed zeros: products underflow to subnormal or 0
      for (let i = 0; i < dIn; i++) {
        const p = r();
        const s = r() < 0.5 ? -1 : 1;
        x[i] =
          p < 0.3
            ? s * r() * 1.1754942e-38
            : p < 0.5
              ? s * 2 ** -149 * Math.floor(1 + r() * 8)
              : p < 0.8
                ? s * r() * 1e-30
                : s * 0;
      }
      break;
    default: // all -0
      x.fill(-0);
  }
  return x;
}

/** f16 weights: kind 0 random (some subnormal), 1 all subnormal, 2 all signed zeros, 3 large. */
function edgeBits(kind: number, r: () => number, n: number): Uint16Array {
  if (kind === 0) return randomBits("f16", r, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const s = r() < 0.5 ? 0x8000 : 0;
    if (kind === 1) out[i] = s | (1 + Math.floor(r() * 0x3ff));
    else if (kind === 2) out[i] = s;
    else out[i] = s | (0x7800 + Math.floor(r() * 0x3ff)); // |w| in [2^15, 65504]: x'w' near overflow
  }
  return out;
}

test("matmul over f16 weights, 1 to 3 tokens: x scaled by 2^112 or the fallback give the widened f32 matmul bit for bit", {
  skip: wasmSkip,
}, () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.constantFrom(1, 3, 4, 5, 15, 16, 17, 20, 37, 64, 100),
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 3, maxLength: 3 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (n, dIn, dOut, rowKinds, wKind, seed) => {
        const r = rng(seed);
        const x = new Float32Array(n * dIn);
        for (let t = 0; t < n; t++) x.set(edgeRow(rowKinds[t]!, r, dIn), t * dIn);
        const bits = edgeBits(wKind, r, dOut * dIn);
        const bias = r() < 0.3 ? randn(r, dOut) : undefined;
        const wide = widenSpec("f16", bits);
        for (const e of [exec, exec2]) {
          const w16 = make("f16", bits, e);
          const outHalf = new Float32Array(n * dOut);
          const outWide = new Float32Array(n * dOut);
          e.matmul(outHalf, x, w16, n, dIn, dOut, bias);
          e.matmul(outWide, x, wide, n, dIn, dOut, bias);
          e.free(w16);
          const bad = sameBits(outHalf, outWide);
          assert.equal(
            bad,
            -1,
            `n=${n} dIn=${dIn} dOut=${dOut} rows ${rowKinds} w ${wKind} seed=${seed}: [${bad}] f16 ${outHalf[bad]} widened ${outWide[bad]}`,
          );
        }
      },
    ),
    { numRuns: 150 },
  );
});

test("matmul over f16 weights, decode on the thread pool: a token with |x| >= 2^16 takes the fallback on every thread", {
  skip: wasmSkip,
}, () => {
  const r = rng(7);
  const dIn = 580; // not a multiple of 16
  const dOut = 600;
  const x = new Float32Array(2 * dIn);
  x.set(edgeRow(0, r, dIn));
  x.set(edgeRow(1, r, dIn), dIn);
  const bits = randomBits("f16", r, dOut * dIn);
  const wide = widenSpec("f16", bits);
  for (const e of [exec, exec2]) {
    const w16 = make("f16", bits, e);
    const outHalf = new Float32Array(2 * dOut);
    const outWide = new Float32Array(2 * dOut);
    e.matmul(outHalf, x, w16, 2, dIn, dOut);
    e.matmul(outWide, x, wide, 2, dIn, dOut);
    e.free(w16);
    assert.equal(sameBits(outHalf, outWide), -1, `${e.threads} threads`);
    assert.ok(outHalf.every(Number.isFinite), "the 2^16 token's outputs are finite");
  }
});
