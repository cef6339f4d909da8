/**
 * matmul over 16-bit weights (f16, bf16; src/kernels/weights.ts, assembly/matmul.ts) on ref and
 * wasm. Widening is exact, so on each executor the result must equal, bit for bit, the f32
 * matmul over the same matrix widened by the specification (src/quant/half.ts f16ToF32; bf16 =
 * the bits << 16); wasm and ref then agree within the f32 matmul's own tolerance.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import { createRefExecutor, refMatmul } from "../../src/kernels/ref.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { BF16Array, F16Array, type Matrix } from "../../src/kernels/weights.ts";
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
      /weights of type Uint16Array: expected Float32Array, F16Array or BF16Array/,
    );
});
