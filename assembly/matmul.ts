// out (n, dOut) = x (n, dIn) @ w^T (+ bias), w: (dOut, dIn) row-major (PyTorch Linear layout).
// Register-blocked 4 tokens x 2 weight rows (8 f32x4 accumulators), so each weight load feeds
// 4 tokens and each token load feeds 2 rows; output rows are tiled so a tile of w stays in L2
// while every token block passes over it. f32 accumulation in 4 lanes, scalar tail over dIn.
// Tokens left over after the 4-token blocks (decode: n = 1) take a matvec loop whose lane sums
// are ordered differently (4 partial accumulators), so their results can differ in the last bits
// from the same row computed in a 4-token block.
// [o0, o1) selects the output rows this call computes (threads split dOut).
// Weights are f32 or kept 16-bit (issue 15 lever 3: f16 / bf16 as in the model file, half the
// bytes), widened to f32 in registers as they are loaded. Widening is exact and the arithmetic
// and its order are the f32 kernel's, so a 16-bit matrix gives bit for bit the result of the
// same matrix widened on load. The weight type is the generic W: f32, u16 = IEEE f16 bits,
// i16 = bf16 bits (a marker only: bf16 is not a signed integer), i8 = ggml Q8_0 blocks (34
// bytes: f16 scale d, 32 int8 q; weight d * q, exact in f32; dIn a multiple of 32).
// Decode (fewer than 4 tokens) over 16-bit and Q8_0 weights takes loops of its own (matvecF16,
// matvecBf16, matvecQ8): matmulT's one-token loop, same sums in the same order, with cheaper
// widening (bench/matvec.ts, results/bench/matvec/). f16 subnormal weights are f32 subnormals
// in the widened-by-bits form (w * 2^-112), and a multiply with a subnormal operand takes a
// slow microcode path on this CPU: 1% of them more than halve the f16 matvec's speed, the synth
// model's 0.18% make it ~1.25x slower (no exact fix found that is cheaper than the assists it
// would save; results/bench/matvec/README.md).
import { hsum, madd } from "./simd";

const OUT_TILE = 32;

// f16 widening constants, loaded from memory (V8 rebuilds a non-trivial v128.const from
// immediates at every use, a load is one instruction; as half.ts HK).
const WK: usize = memory.data<u32>(
  [
    0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, // 0: sign | exponent and mantissa after << 13
    0x77800000, 0x77800000, 0x77800000, 0x77800000, // 16: 2^112
    0x8fff8fff, 0x8fff8fff, 0x8fff8fff, 0x8fff8fff, // 32: i16 sign | exponent-mantissa >> 3
  ],
  16,
);

/** Weights [i, i + 4) of the row at w as f32x4. f16 must be finite (the loader checks). */
// @ts-ignore: decorator
@inline
function wload<W>(w: usize, i: i32, mask: v128, scale: v128): v128 {
  if (isFloat<W>()) return v128.load(w + (<usize>i << 2));
  if (sizeof<W>() == 1) {
    // Q8_0: 4 codes of one block (i is a multiple of 4) times the block's scale
    const b = w + <usize>(i >> 5) * 34;
    const q = i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(b + 2 + <usize>(i & 31))));
    return f32x4.mul(f32x4.convert_i32x4_s(q), f32x4.splat(f16Scalar(<u32>load<u16>(b))));
  }
  if (isSigned<W>()) return i32x4.shl(v128.load16x4_u(w + (<usize>i << 1)), 16); // bf16
  // f16: sign-extended, << 13 puts the sign at bit 31 (and copies at 30..28, masked off) and
  // exponent/mantissa at 27..13; times 2^112 rebiases normals and subnormals exactly. mask and
  // scale (WK) are loaded once per call, so the loop's loads are the data's alone.
  const h = i32x4.shl(v128.load16x4_s(w + (<usize>i << 1)), 13);
  return f32x4.mul(v128.and(h, mask), scale);
}

/** A finite f16 (bits) as f32, exactly. */
// @ts-ignore: decorator
@inline
function f16Scalar(h: u32): f32 {
  return reinterpret<f32>(((h & 0x8000) << 16) | reinterpret<u32>(reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(<u32>0x77800000)));
}

/** Weight i of the row at w as f32. */
// @ts-ignore: decorator
@inline
function wload1<W>(w: usize, i: i32): f32 {
  if (isFloat<W>()) return load<f32>(w + (<usize>i << 2));
  if (sizeof<W>() == 1) {
    const b = w + <usize>(i >> 5) * 34;
    return f16Scalar(<u32>load<u16>(b)) * <f32>load<i8>(b + 2 + <usize>(i & 31));
  }
  const h = <u32>load<u16>(w + (<usize>i << 1));
  if (isSigned<W>()) return reinterpret<f32>(h << 16);
  return f16Scalar(h);
}

// @ts-ignore: decorator
@inline
function tailDot<W>(x: usize, w: usize, i0: i32, dIn: i32): f32 {
  let t: f32 = 0;
  for (let i = i0; i < dIn; i++) t += load<f32>(x + (<usize>i << 2)) * wload1<W>(w, i);
  return t;
}

// @ts-ignore: decorator
@inline
function biasAt(bias: usize, o: i32): f32 {
  return bias ? load<f32>(bias + (<usize>o << 2)) : 0;
}

/** f32 weights. */
export function matmul(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32): void {
  matmulT<f32>(out, x, w, bias, n, dIn, dOut, o0, o1, 0);
}

/**
 * f16 weights (u16 bit patterns, finite). scratch: 0, or matmulScratchBytes(dIn, n) bytes of
 * this thread's own: a tile of widened rows for calls of several tokens (see widenedTiles), a
 * row of scaled x for fewer (see matvecF16).
 */
export function matmulF16(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32, scratch: usize): void {
  if (scratch && n >= 4) widenedTiles<u16>(out, x, w, bias, n, dIn, dOut, o0, o1, scratch);
  else if (scratch) matvecF16(out, x, w, bias, n, dIn, dOut, o0, o1, scratch);
  else matmulT<u16>(out, x, w, bias, n, dIn, dOut, o0, o1, 0);
}

/** bf16 weights (u16 bit patterns); scratch as matmulF16. */
export function matmulBf16(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32, scratch: usize): void {
  if (scratch && n >= 4) widenedTiles<i16>(out, x, w, bias, n, dIn, dOut, o0, o1, scratch);
  else if (n < 4) matvecBf16(out, x, w, bias, n, dIn, dOut, o0, o1);
  else matmulT<i16>(out, x, w, bias, n, dIn, dOut, o0, o1, 0);
}

/** Q8_0 weights (ggml blocks, dIn % 32 == 0); scratch as matmulF16. */
export function matmulQ8_0(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32, scratch: usize): void {
  if (scratch && n >= 4) widenedTiles<i8>(out, x, w, bias, n, dIn, dOut, o0, o1, scratch);
  else if (n < 4) matvecQ8(out, x, w, bias, n, dIn, dOut, o0, o1);
  else matmulT<i8>(out, x, w, bias, n, dIn, dOut, o0, o1, 0);
}

/** Bytes of one row of dIn weights of type W. */
// @ts-ignore: decorator
@inline
function rowBytes<W>(dIn: i32): usize {
  if (sizeof<W>() == 1) return <usize>(dIn >> 5) * 34;
  return <usize>dIn * sizeof<W>();
}

/**
 * Scratch bytes matmulF16/Bf16/Q8_0 use for a call of n tokens: one tile of widened rows for
 * several tokens (n >= 4), one row of scaled x for fewer (f16 only; the others take none).
 */
export function matmulScratchBytes(dIn: i32, n: i32): i32 {
  return n >= 4 ? OUT_TILE * dIn * 4 : dIn * 4;
}

/**
 * Fewer than 4 tokens (decode) over f16 weights, with the widening's 2^112 rebias moved from
 * every weight into x: xs = x * 2^112 (scratch) and w' = the f16 bits moved into f32 position,
 * which reads as w * 2^-112 exactly (f16 normals become f32 normals 2^-126..2^-97, subnormals
 * f32 subnormals). Both scalings are exact, so xs * w' and x * w are the same real number and
 * round to the same f32 (underflow, signed zeros and FMA's single rounding included): the sums
 * are bit for bit matmulT<u16>'s, one multiply per 4 weights fewer. A token with some |x| >=
 * 2^16 (its scaled x could overflow), Inf or NaN takes matmulT<u16> instead. As attend-fused.ts
 * does for f16 keys (scaleQ).
 */
/**
 * Fewer than 4 tokens over bf16 weights: matmulT's one-token loop with 8 weights per load, each
 * moved into the high half of an f32 lane by interleaving with zero (one shuffle per 4 weights
 * where a zero-extending load of 4 and a shift take two; measured 0.78x of their time).
 */
function matvecBf16(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32): void {
  const rowB = <usize>dIn << 2;
  const rowW = <usize>dIn << 1;
  const z = f32x4.splat(0);
  const d4 = dIn & ~3;
  const d16 = dIn & ~15;
  for (let t = 0; t < n; t++) {
    const x0 = x + <usize>t * rowB;
    const ot = out + ((<usize>t * <usize>dOut) << 2);
    for (let o = o0; o < o1; o++) {
      const w0 = w + <usize>o * rowW;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let i = 0;
      for (; i < d16; i += 16) {
        const k = <usize>i << 2;
        const p = w0 + (<usize>i << 1);
        const h0 = v128.load(p);
        const h1 = v128.load(p, 16);
        a0 = madd(v128.load(x0 + k), zipLo(z, h0), a0);
        a1 = madd(v128.load(x0 + k, 16), zipHi(z, h0), a1);
        a2 = madd(v128.load(x0 + k, 32), zipLo(z, h1), a2);
        a3 = madd(v128.load(x0 + k, 48), zipHi(z, h1), a3);
      }
      a0 = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
      for (; i < d4; i += 4)
        a0 = madd(v128.load(x0 + (<usize>i << 2)), i32x4.shl(v128.load16x4_u(w0 + (<usize>i << 1)), 16), a0);
      store<f32>(ot + (<usize>o << 2), hsum(a0) + tailDot<i16>(x0, w0, d4, dIn) + biasAt(bias, o));
    }
  }
}

/**
 * Fewer than 4 tokens over Q8_0 weights: matmulT's one-token loop (same accumulators, same
 * order) a block of 32 at a time, so the block's f16 scale is widened once per 32 weights
 * instead of once per 4 and the codes come 8 per load (measured 0.45x of its time).
 */
function matvecQ8(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32): void {
  const rowB = <usize>dIn << 2;
  const rowW = rowBytes<i8>(dIn);
  const nb = dIn >> 5;
  for (let t = 0; t < n; t++) {
    const x0 = x + <usize>t * rowB;
    const ot = out + ((<usize>t * <usize>dOut) << 2);
    for (let o = o0; o < o1; o++) {
      const w0 = w + <usize>o * rowW;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const blk = w0 + <usize>b * 34;
        const d = f32x4.splat(f16Scalar(<u32>load<u16>(blk)));
        const k = x0 + (<usize>b << 7);
        const q0 = v128.load8x8_s(blk + 2);
        const q1 = v128.load8x8_s(blk + 10);
        const q2 = v128.load8x8_s(blk + 18);
        const q3 = v128.load8x8_s(blk + 26);
        a0 = madd(v128.load(k), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q0)), d), a0);
        a1 = madd(v128.load(k, 16), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q0)), d), a1);
        a2 = madd(v128.load(k, 32), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q1)), d), a2);
        a3 = madd(v128.load(k, 48), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q1)), d), a3);
        a0 = madd(v128.load(k, 64), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q2)), d), a0);
        a1 = madd(v128.load(k, 80), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q2)), d), a1);
        a2 = madd(v128.load(k, 96), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q3)), d), a2);
        a3 = madd(v128.load(k, 112), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q3)), d), a3);
      }
      a0 = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
      store<f32>(ot + (<usize>o << 2), hsum(a0) + tailDot<i8>(x0, w0, dIn, dIn) + biasAt(bias, o));
    }
  }
}

function matvecF16(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32, scratch: usize): void {
  const rowB = <usize>dIn << 2;
  const rowW = <usize>dIn << 1;
  const fm = v128.load(WK);
  const m16 = v128.load(WK, 32);
  const d4 = dIn & ~3;
  const d16 = dIn & ~15;
  for (let t = 0; t < n; t++) {
    const x0 = x + <usize>t * rowB;
    const ot = out + ((<usize>t * <usize>dOut) << 2);
    if (!scaleX(x0, d4, scratch)) {
      matmulT<u16>(ot, x0, w, bias, 1, dIn, dOut, o0, o1, 0);
      continue;
    }
    // The loop of matmulT's one-token case, over xs and w' (same blocks, same order).
    for (let o = o0; o < o1; o++) {
      const w0 = w + <usize>o * rowW;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let i = 0;
      for (; i < d16; i += 16) {
        const k = <usize>i << 2;
        const p = w0 + (<usize>i << 1);
        // 8 weights per load, split in i16 lanes into the high halves (sign, exponent and the
        // mantissa's top 7 bits: (h >> 3) & 0x8fff) and low halves (its last 3 bits: h << 13)
        // of the f32 lanes, then interleaved: 2.5 ops per 4 weights where sign-extending loads
        // of 4 need 3 (measured 0.91x of their time).
        const h0 = v128.load(p);
        const h1 = v128.load(p, 16);
        const u0 = v128.and(i16x8.shr_s(h0, 3), m16);
        const l0 = i16x8.shl(h0, 13);
        const u1 = v128.and(i16x8.shr_s(h1, 3), m16);
        const l1 = i16x8.shl(h1, 13);
        a0 = madd(v128.load(scratch + k), zipLo(l0, u0), a0);
        a1 = madd(v128.load(scratch + k, 16), zipHi(l0, u0), a1);
        a2 = madd(v128.load(scratch + k, 32), zipLo(l1, u1), a2);
        a3 = madd(v128.load(scratch + k, 48), zipHi(l1, u1), a3);
      }
      a0 = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
      for (; i < d4; i += 4)
        a0 = madd(v128.load(scratch + (<usize>i << 2)), hBits(v128.load16x4_s(w0 + (<usize>i << 1)), fm), a0);
      store<f32>(ot + (<usize>o << 2), hsum(a0) + tailDot<u16>(x0, w0, d4, dIn) + biasAt(bias, o));
    }
  }
}

/** i16 lanes 0..3 of lo and hi interleaved: i32 lane j = lo[j] | hi[j] << 16 (punpcklwd). */
// @ts-ignore: decorator
@inline
function zipLo(lo: v128, hi: v128): v128 {
  return i8x16.shuffle(lo, hi, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}

/** i16 lanes 4..7 of lo and hi interleaved (punpckhwd). */
// @ts-ignore: decorator
@inline
function zipHi(lo: v128, hi: v128): v128 {
  return i8x16.shuffle(lo, hi, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

/** Sign-extended f16 lanes -> f32 lanes holding w * 2^-112: sign to bit 31, the rest to 27..13. */
// @ts-ignore: decorator
@inline
function hBits(h: v128, mask: v128): v128 {
  return v128.and(i32x4.shl(h, 13), mask);
}

/** dst [0, d4) = x * 2^112 (exact); false when some |x| >= 2^16, Inf or NaN (could overflow). */
function scaleX(x: usize, d4: i32, dst: usize): bool {
  const s = v128.load(WK, 16);
  const lim = f32x4.splat(65536);
  let ok = i32x4.splat(-1);
  for (let i = 0; i < d4; i += 4) {
    const k = <usize>i << 2;
    const v = v128.load(x + k);
    ok = v128.and(ok, f32x4.lt(f32x4.abs(v), lim));
    v128.store(dst + k, f32x4.mul(v, s));
  }
  return i32x4.all_true(ok);
}

/**
 * Several tokens over 16-bit weights: each tile of OUT_TILE rows is widened once into scratch
 * and the f32 kernel runs over it, so the widening is paid once per tile instead of once per
 * 4-token block (where, with 8 accumulators live, the extra registers it needs also spill).
 * The f32 kernel sees the same values in the same order: bit for bit the f32 result.
 */
function widenedTiles<W>(out: usize, x: usize, w: usize, bias: usize, n: i32, dIn: i32, dOut: i32, o0: i32, o1: i32, scratch: usize): void {
  const rowW = rowBytes<W>(dIn);
  const fm = v128.load(WK);
  const fs = v128.load(WK, 16);
  for (let ob = o0; ob < o1; ob += OUT_TILE) {
    const oe = min(ob + OUT_TILE, o1);
    const cnt = (oe - ob) * dIn;
    const src = w + <usize>ob * rowW;
    let i = 0;
    for (; i + 4 <= cnt; i += 4) v128.store(scratch + (<usize>i << 2), wload<W>(src, i, fm, fs));
    for (; i < cnt; i++) store<f32>(scratch + (<usize>i << 2), wload1<W>(src, i));
    matmulT<f32>(out, x, scratch, bias, n, dIn, dOut, ob, oe, ob);
  }
}

function matmulT<W>(
  out: usize,
  x: usize,
  w: usize,
  bias: usize,
  n: i32,
  dIn: i32,
  dOut: i32,
  o0: i32,
  o1: i32,
  /** The row w points at (w holds rows [wRow0, o1)). */
  wRow0: i32,
): void {
  const rowB = <usize>dIn << 2; // a row of x (f32)
  const rowW = rowBytes<W>(dIn); // a row of w
  const fm = v128.load(WK); // f16 widening constants (unused for f32 and bf16)
  const fs = v128.load(WK, 16);
  const d4 = dIn & ~3;
  for (let ob = o0; ob < o1; ob += OUT_TILE) {
    const oe = min(ob + OUT_TILE, o1);
    let t = 0;
    for (; t + 4 <= n; t += 4) {
      const x0 = x + <usize>t * rowB;
      const x1 = x0 + rowB;
      const x2 = x1 + rowB;
      const x3 = x2 + rowB;
      let o = ob;
      for (; o + 2 <= oe; o += 2) {
        const w0 = w + <usize>(o - wRow0) * rowW;
        const w1 = w0 + rowW;
        let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
        let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
        for (let i = 0; i < d4; i += 4) {
          const k = <usize>i << 2;
          const vw0 = wload<W>(w0, i, fm, fs);
          const vw1 = wload<W>(w1, i, fm, fs);
          const v0 = v128.load(x0 + k);
          const v1 = v128.load(x1 + k);
          const v2 = v128.load(x2 + k);
          const v3 = v128.load(x3 + k);
          a00 = madd(v0, vw0, a00);
          a01 = madd(v0, vw1, a01);
          a10 = madd(v1, vw0, a10);
          a11 = madd(v1, vw1, a11);
          a20 = madd(v2, vw0, a20);
          a21 = madd(v2, vw1, a21);
          a30 = madd(v3, vw0, a30);
          a31 = madd(v3, vw1, a31);
        }
        const b0 = biasAt(bias, o);
        const b1 = biasAt(bias, o + 1);
        const ot = out + ((<usize>t * <usize>dOut + <usize>o) << 2);
        const od = <usize>dOut << 2;
        store<f32>(ot, hsum(a00) + tailDot<W>(x0, w0, d4, dIn) + b0);
        store<f32>(ot + 4, hsum(a01) + tailDot<W>(x0, w1, d4, dIn) + b1);
        store<f32>(ot + od, hsum(a10) + tailDot<W>(x1, w0, d4, dIn) + b0);
        store<f32>(ot + od + 4, hsum(a11) + tailDot<W>(x1, w1, d4, dIn) + b1);
        store<f32>(ot + 2 * od, hsum(a20) + tailDot<W>(x2, w0, d4, dIn) + b0);
        store<f32>(ot + 2 * od + 4, hsum(a21) + tailDot<W>(x2, w1, d4, dIn) + b1);
        store<f32>(ot + 3 * od, hsum(a30) + tailDot<W>(x3, w0, d4, dIn) + b0);
        store<f32>(ot + 3 * od + 4, hsum(a31) + tailDot<W>(x3, w1, d4, dIn) + b1);
      }
      if (o < oe) {
        const w0 = w + <usize>(o - wRow0) * rowW;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let i = 0; i < d4; i += 4) {
          const k = <usize>i << 2;
          const vw0 = wload<W>(w0, i, fm, fs);
          a0 = madd(v128.load(x0 + k), vw0, a0);
          a1 = madd(v128.load(x1 + k), vw0, a1);
          a2 = madd(v128.load(x2 + k), vw0, a2);
          a3 = madd(v128.load(x3 + k), vw0, a3);
        }
        const b0 = biasAt(bias, o);
        const ot = out + ((<usize>t * <usize>dOut + <usize>o) << 2);
        const od = <usize>dOut << 2;
        store<f32>(ot, hsum(a0) + tailDot<W>(x0, w0, d4, dIn) + b0);
        store<f32>(ot + od, hsum(a1) + tailDot<W>(x1, w0, d4, dIn) + b0);
        store<f32>(ot + 2 * od, hsum(a2) + tailDot<W>(x2, w0, d4, dIn) + b0);
        store<f32>(ot + 3 * od, hsum(a3) + tailDot<W>(x3, w0, d4, dIn) + b0);
      }
    }
    for (; t < n; t++) {
      const x0 = x + <usize>t * rowB;
      // One token (decode's matvec): 4 accumulators over consecutive 16-float blocks of the
      // row, so four independent add chains keep the loads streaming (one chain is bound by add
      // latency at ~22 GB/s even from cache; this reaches ~26 GB/s from DRAM, ~50 from cache).
      // One weight row at a time: a single sequential stream. Four rows side by side (4 streams
      // 2304 B apart) measured 2x slower from DRAM here, though 2x faster from cache.
      const d16 = dIn & ~15;
      for (let o = ob; o < oe; o++) {
        const w0 = w + <usize>(o - wRow0) * rowW;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let i = 0;
        for (; i < d16; i += 16) {
          const k = <usize>i << 2;
          a0 = madd(v128.load(x0 + k), wload<W>(w0, i, fm, fs), a0);
          a1 = madd(v128.load(x0 + k, 16), wload<W>(w0, i + 4, fm, fs), a1);
          a2 = madd(v128.load(x0 + k, 32), wload<W>(w0, i + 8, fm, fs), a2);
          a3 = madd(v128.load(x0 + k, 48), wload<W>(w0, i + 12, fm, fs), a3);
        }
        a0 = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
        for (; i < d4; i += 4) {
          const k = <usize>i << 2;
          a0 = madd(v128.load(x0 + k), wload<W>(w0, i, fm, fs), a0);
        }
        store<f32>(out + ((<usize>t * <usize>dOut + <usize>o) << 2), hsum(a0) + tailDot<W>(x0, w0, d4, dIn) + biasAt(bias, o));
      }
    }
  }
}
