// ggml's block types q4_0, q4_1, q5_0, q5_1, q8_0 and iq4_nl (llama.cpp's KV cache types):
// encode and decode of rows, and the SIMD block unpacking the attention (attend-ggml.ts) shares.
// Bit-exact port of the TypeScript reference src/quant/ggml-block.ts, ggml-legacy.ts and
// ggml-iq4nl.ts, which reproduce ggml's quantize_row_*_ref / dequantize_row_* (ggml-quants.c)
// bit for bit: blocks of 32 elements, codes computed in f32 with the f32 d, d (and m) stored
// rounded to nearest in f16 and saturated at ±65504; non-finite inputs replaced (NaN -> 0,
// ±Inf -> the block's finite max / min) and counted; elements a saturated grid cannot reach
// counted as saturated.
//
// Storage (one row = headDim / 32 blocks): payload (nRows, nB * payloadBytes) with each block's
// bytes as ggml's struct holds them after d/m (q4: qs, element j low nibble of byte j, j + 16
// high; q5: qh (u32 LE, bit j = element j's fifth bit) then qs; q8_0: 32 int8), scales
// (nRows, nB) f16 d, zeros (nRows, nB) f16 m (q4_1, q5_1 only).
import { f16ToF32, f32ToF16 } from "./half";

/** Type index in the kernel descriptor (src/kernels/wasm.ts WASM_CODECS `ggml`). */
export const GGML_Q4_0: i32 = 0;
export const GGML_Q4_1: i32 = 1;
export const GGML_Q5_0: i32 = 2;
export const GGML_Q5_1: i32 = 3;
export const GGML_Q8_0: i32 = 4;
export const GGML_IQ4_NL: i32 = 5;

/** Payload bytes of one block (after d and m). */
// @ts-ignore: decorator
@inline
export function ggmlPayloadBytes(t: i32): i32 {
  return t == GGML_Q8_0 ? 32 : t == GGML_Q5_0 || t == GGML_Q5_1 ? 20 : 16;
}

/** Whether blocks store a minimum m (q4_1, q5_1). */
// @ts-ignore: decorator
@inline
export function ggmlHasMin(t: i32): bool {
  return t == GGML_Q4_1 || t == GGML_Q5_1;
}

// ---- SIMD unpacking: a block's 32 levels (decoded x = level * d + m) as two i8x16 ----

// ggml's kvalues_iq4nl (ggml-common.h), the iq4_nl levels indexed by code.
// @ts-ignore: decorator
@inline
function iq4Table(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

/** 0x10 in byte lane k where bit k (k < 16) of h is set: q5's fifth bits of 16 elements. */
// @ts-ignore: decorator
@inline
function fifthBits(h: u32): v128 {
  const b = i8x16.swizzle(i32x4.splat(h), i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const m = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return v128.and(i8x16.eq(v128.and(b, m), m), i8x16.splat(0x10));
}

// The codes of q4_0/q4_1 (0..15) and q5_0/q5_1 (0..31) as stored; level = code - offset. The
// relaxed build's i8 x i7 dot takes these codes as its unsigned operand (attend-ggml.ts scoresG).

/** Whether the block's levels are its 0..31 codes less an offset (q4_0, q4_1, q5_0, q5_1). */
// @ts-ignore: decorator
@inline
export function ggmlCodesNarrow(t: i32): bool {
  return t == GGML_Q4_0 || t == GGML_Q4_1 || t == GGML_Q5_0 || t == GGML_Q5_1;
}

/** o with level = code - o for the narrow types: q4_0 8, q5_0 16, q4_1 and q5_1 0 (their m shifts them). */
// @ts-ignore: decorator
@inline
export function ggmlCodeOffset(t: i32): i32 {
  return t == GGML_Q4_0 ? 8 : t == GGML_Q5_0 ? 16 : 0;
}

/** Codes of elements 0..15 of a narrow-type block whose payload starts at p (0..15 or 0..31 as u8). */
// @ts-ignore: decorator
@inline
export function codesLo(t: i32, p: usize): v128 {
  if (t == GGML_Q5_0 || t == GGML_Q5_1) return v128.or(v128.and(v128.load(p, 4), i8x16.splat(0x0f)), fifthBits(load<u32>(p)));
  return v128.and(v128.load(p), i8x16.splat(0x0f));
}

/** Codes of elements 16..31. */
// @ts-ignore: decorator
@inline
export function codesHi(t: i32, p: usize): v128 {
  if (t == GGML_Q5_0 || t == GGML_Q5_1) return v128.or(i8x16.shr_u(v128.load(p, 4), 4), fifthBits(load<u32>(p) >>> 16));
  return i8x16.shr_u(v128.load(p), 4);
}

/** Signed levels of elements 0..15 of the block whose payload starts at p (t constant after inlining). */
// @ts-ignore: decorator
@inline
export function levelsLo(t: i32, p: usize): v128 {
  if (t == GGML_Q8_0) return v128.load(p);
  if (t == GGML_IQ4_NL) return i8x16.swizzle(iq4Table(), v128.and(v128.load(p), i8x16.splat(0x0f)));
  const c = codesLo(t, p);
  return ggmlCodeOffset(t) != 0 ? i8x16.sub(c, i8x16.splat(<i8>ggmlCodeOffset(t))) : c;
}

/** Signed levels of elements 16..31. */
// @ts-ignore: decorator
@inline
export function levelsHi(t: i32, p: usize): v128 {
  if (t == GGML_Q8_0) return v128.load(p, 16);
  if (t == GGML_IQ4_NL) return i8x16.swizzle(iq4Table(), i8x16.shr_u(v128.load(p), 4));
  const c = codesHi(t, p);
  return ggmlCodeOffset(t) != 0 ? i8x16.sub(c, i8x16.splat(<i8>ggmlCodeOffset(t))) : c;
}

/** Lanes 4k..4k+3 of 16 signed i8 levels as f32x4 (k constant after inlining). */
// @ts-ignore: decorator
@inline
export function widen(x: v128, k: i32): v128 {
  const h = k < 2 ? i16x8.extend_low_i8x16_s(x) : i16x8.extend_high_i8x16_s(x);
  return f32x4.convert_i32x4_s((k & 1) == 0 ? i32x4.extend_low_i16x8_s(h) : i32x4.extend_high_i16x8_s(h));
}

// ---- encode (scalar per block: bit-exact f32 arithmetic; runs on the calling thread only) ----

const BLOCK = memory.data(128, 16); // (32) f32: the block with non-finite values replaced
const CODES = memory.data(32, 16); // (32) u8: codes before packing
let blockD: f32 = 0;
let blockM: f32 = 0;

/**
 * JavaScript's store of a number into a Uint8Array (ToUint8), which the reference's code arrays
 * do: NaN and ±Inf give 0, finite values their integer part modulo 256 (f32 values of magnitude
 * >= 2^31 are multiples of 256).
 */
// @ts-ignore: decorator
@inline
function toU8(v: f32): u32 {
  return Mathf.abs(v) < 2147483648.0 ? <u32>(<i32>v) & 0xff : 0;
}

/** Copy the block at src into BLOCK with non-finite values replaced; returns how many were. */
function sanitize(src: usize): i32 {
  let lo: f32 = Infinity;
  let hi: f32 = -Infinity;
  let bad = 0;
  for (let j = 0; j < 32; j++) {
    const x = load<f32>(src + (<usize>j << 2));
    if (x - x == 0) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    } else bad++;
  }
  if (bad == 0) {
    memory.copy(BLOCK, src, 128);
    return 0;
  }
  if (lo > hi) {
    lo = 0;
    hi = 0;
  }
  for (let j = 0; j < 32; j++) {
    const x = load<f32>(src + (<usize>j << 2));
    store<f32>(BLOCK + (<usize>j << 2), x != x ? 0 : x == Infinity ? hi : x == -Infinity ? lo : x);
  }
  return bad;
}

/** The signed element of largest |x| (the first on ties). */
function signedMax(): f32 {
  let amax: f32 = 0;
  let max: f32 = 0;
  for (let j = 0; j < 32; j++) {
    const x = load<f32>(BLOCK + (<usize>j << 2));
    const a = Mathf.abs(x);
    if (amax < a) {
      amax = a;
      max = x;
    }
  }
  return max;
}

/** q4_0 / q5_0: d = max / -half, code = min(2 half - 1, trunc(x / d + half + 0.5)). */
function quantSym(half: i32): void {
  const d = signedMax() / <f32>-half;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  const top = <f32>(half * 2 - 1);
  const add = <f32>half + 0.5;
  for (let j = 0; j < 32; j++) {
    const v = load<f32>(BLOCK + (<usize>j << 2)) * id + add;
    store<u8>(CODES + j, <u8>toU8(Mathf.min(top, Mathf.trunc(v))));
  }
  blockD = d;
  blockM = 0;
}

/** q4_1 / q5_1: d = (max - min) / levels, code = trunc((x - min) / d + 0.5) (q4_1 clamped to 15). */
function quantMin(levels: i32, clamp: bool): void {
  let min: f32 = Infinity;
  let max: f32 = -Infinity;
  for (let j = 0; j < 32; j++) {
    const x = load<f32>(BLOCK + (<usize>j << 2));
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const d = (max - min) / <f32>levels;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  for (let j = 0; j < 32; j++) {
    const c = Mathf.trunc((load<f32>(BLOCK + (<usize>j << 2)) - min) * id + <f32>0.5);
    store<u8>(CODES + j, <u8>toU8(clamp ? Mathf.min(<f32>levels, c) : c));
  }
  blockD = d;
  blockM = min;
}

/** C's roundf (halves away from zero), exact in f32. */
// @ts-ignore: decorator
@inline
function roundAway(v: f32): f32 {
  const a = Mathf.abs(v);
  let r = Mathf.floor(a);
  if (a - r >= 0.5) r += 1;
  return v < 0 ? -r : r;
}

function quantQ8(p: usize): void {
  let amax: f32 = 0;
  for (let j = 0; j < 32; j++) amax = Mathf.max(amax, Mathf.abs(load<f32>(BLOCK + (<usize>j << 2))));
  const d = amax / <f32>127;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  for (let j = 0; j < 32; j++) {
    const v = roundAway(load<f32>(BLOCK + (<usize>j << 2)) * id);
    // JavaScript's `& 0xff` of the rounded value (ToInt32: NaN, ±Inf -> 0)
    store<u8>(p + j, <u8>toU8(v));
  }
  blockD = d;
  blockM = 0;
}

/** Index of the iq4_nl level nearest to x (ggml's best_index_int8 over 16 levels). */
function nearestLevel(x: f32): i32 {
  if (x <= -127) return 0;
  if (x >= 113) return 15;
  let lo = 0;
  let hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < <f32>levelOf(mid)) hi = mid;
    else lo = mid;
  }
  return x - <f32>levelOf(hi - 1) < <f32>levelOf(hi) - x ? hi - 1 : hi;
}

const IQ4_LEVELS: usize = memory.data<i8>([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

/** kvalues_iq4nl[k] (the same table as iq4Table). */
// @ts-ignore: decorator
@inline
function levelOf(k: i32): i32 {
  return <i32>load<i8>(IQ4_LEVELS + <usize>k);
}

/** iq4_nl (ntry = -1, no importance weights): indices at d0 = max / -127, then d refitted by least squares. */
function quantIq4nl(): void {
  let amax: f32 = 0;
  let max: f32 = 0;
  for (let j = 0; j < 32; j++) {
    const x = load<f32>(BLOCK + (<usize>j << 2));
    const a = Mathf.abs(x);
    if (a > amax) {
      amax = a;
      max = x;
    }
  }
  if (amax < <f32>1e-15) {
    memory.fill(CODES, 8, 32);
    blockD = 0;
    blockM = 0;
    return;
  }
  const id = <f32>1 / (max / <f32>-127);
  let sumqx: f32 = 0;
  let sumq2: f32 = 0;
  for (let j = 0; j < 32; j++) {
    const x = load<f32>(BLOCK + (<usize>j << 2));
    const l = nearestLevel(id * x);
    store<u8>(CODES + j, <u8>l);
    const q = <f32>levelOf(l);
    const wq = x * x * q;
    sumqx += wq * x;
    sumq2 += wq * q;
  }
  blockD = sumqx / sumq2;
  blockM = 0;
}

/**
 * f32 -> f16 bits (round to nearest), saturating at ±65504; a NaN d (iq4_nl's Inf / Inf) to
 * ±65504 by its sign bit, which the hardware sets alike for the reference's f64 arithmetic.
 */
// @ts-ignore: decorator
@inline
function toF16Sat(x: f32): u32 {
  const bits = f32ToF16(x);
  return (bits & 0x7c00) == 0x7c00 ? (bits & 0x8000) | 0x7bff : bits;
}

/** Lowest and highest level of type t (the reference's minLevel / topLevel, 0 included). */
// @ts-ignore: decorator
@inline
function lowLevel(t: i32): f32 {
  return t == GGML_Q4_0 ? -8 : t == GGML_Q5_0 ? -16 : t == GGML_Q8_0 ? -128 : t == GGML_IQ4_NL ? -127 : 0;
}

// @ts-ignore: decorator
@inline
function topLevel(t: i32): f32 {
  return t == GGML_Q4_0 ? 7 : t == GGML_Q4_1 ? 15 : t == GGML_Q5_0 ? 15 : t == GGML_Q5_1 ? 31 : t == GGML_Q8_0 ? 127 : 113;
}

/**
 * Encode nRows rows (nRows, headDim) f32 at src (headDim a multiple of 32) as type t.
 * stats: {nonFinite, saturated} i32 pair, overwritten.
 */
export function encodeGgml(
  t: i32,
  src: usize,
  nRows: i32,
  headDim: i32,
  payload: usize,
  scales: usize,
  zeros: usize,
  stats: usize,
): void {
  const nB = headDim >> 5;
  const pb = <usize>ggmlPayloadBytes(t);
  const hasMin = ggmlHasMin(t);
  let nonFinite = 0;
  let saturated = 0;
  for (let blk = 0; blk < nRows * nB; blk++) {
    const s = src + (<usize>blk << 7);
    const p = payload + <usize>blk * pb;
    nonFinite += sanitize(s);
    if (t == GGML_Q4_0) quantSym(8);
    else if (t == GGML_Q5_0) quantSym(16);
    else if (t == GGML_Q4_1) quantMin(15, true);
    else if (t == GGML_Q5_1) quantMin(31, false);
    else if (t == GGML_Q8_0) quantQ8(p);
    else quantIq4nl();
    if (t == GGML_Q5_0 || t == GGML_Q5_1) {
      let qh: u32 = 0;
      for (let j = 0; j < 32; j++) qh |= ((<u32>load<u8>(CODES + j) >> 4) & 1) << <u32>j;
      store<u32>(p, qh);
      for (let j = 0; j < 16; j++)
        store<u8>(p + 4 + j, (load<u8>(CODES + j) & 15) | ((load<u8>(CODES + j + 16) & 15) << 4));
    } else if (t != GGML_Q8_0)
      for (let j = 0; j < 16; j++)
        store<u8>(p + j, (load<u8>(CODES + j) & 15) | ((load<u8>(CODES + j + 16) & 15) << 4));
    const dh = toF16Sat(blockD);
    const dSat = dh != f32ToF16(blockD);
    store<u16>(scales + (<usize>blk << 1), <u16>dh);
    let mh: u32 = 0;
    let mSat = false;
    if (hasMin) {
      mh = toF16Sat(blockM);
      mSat = mh != f32ToF16(blockM);
      store<u16>(zeros + (<usize>blk << 1), <u16>mh);
    }
    if (dSat || mSat) {
      // elements the saturated grid cannot reach (beyond its extreme levels)
      const ds = f16ToF32(dh);
      const ms: f32 = hasMin ? f16ToF32(mh) : 0;
      const a = lowLevel(t) * ds + ms;
      const z = topLevel(t) * ds + ms;
      const lo = Mathf.min(a, z);
      const hi = Mathf.max(a, z);
      for (let j = 0; j < 32; j++) {
        const x = load<f32>(s + (<usize>j << 2));
        if (x - x == 0 && (x < lo || x > hi)) saturated++;
      }
    }
  }
  store<i32>(stats, nonFinite);
  store<i32>(stats, saturated, 4);
}

/** Decode nRows rows of type t into dst (nRows, headDim) f32: x = level * d (+ m), as the reference. */
export function decodeGgml(
  t: i32,
  payload: usize,
  scales: usize,
  zeros: usize,
  nRows: i32,
  headDim: i32,
  dst: usize,
): void {
  switch (t) {
    case GGML_Q4_0: decodeT(GGML_Q4_0, payload, scales, zeros, nRows * (headDim >> 5), dst); break;
    case GGML_Q4_1: decodeT(GGML_Q4_1, payload, scales, zeros, nRows * (headDim >> 5), dst); break;
    case GGML_Q5_0: decodeT(GGML_Q5_0, payload, scales, zeros, nRows * (headDim >> 5), dst); break;
    case GGML_Q5_1: decodeT(GGML_Q5_1, payload, scales, zeros, nRows * (headDim >> 5), dst); break;
    case GGML_Q8_0: decodeT(GGML_Q8_0, payload, scales, zeros, nRows * (headDim >> 5), dst); break;
    default: decodeT(GGML_IQ4_NL, payload, scales, zeros, nRows * (headDim >> 5), dst);
  }
}

// @ts-ignore: decorator
@inline
function decodeT(t: i32, payload: usize, scales: usize, zeros: usize, nBlocks: i32, dst: usize): void {
  const pb = <usize>ggmlPayloadBytes(t);
  for (let blk = 0; blk < nBlocks; blk++) {
    const p = payload + <usize>blk * pb;
    const vd = f32x4.splat(f16ToF32(<u32>load<u16>(scales + (<usize>blk << 1))));
    const vm = f32x4.splat(ggmlHasMin(t) ? f16ToF32(<u32>load<u16>(zeros + (<usize>blk << 1))) : 0);
    const lo = levelsLo(t, p);
    const hi = levelsHi(t, p);
    const o = dst + (<usize>blk << 7);
    // level * d is exact in f32 (|level| <= 128, d an f16); + m rounds once, as the reference
    if (ggmlHasMin(t)) {
      v128.store(o, f32x4.add(f32x4.mul(widen(lo, 0), vd), vm));
      v128.store(o, f32x4.add(f32x4.mul(widen(lo, 1), vd), vm), 16);
      v128.store(o, f32x4.add(f32x4.mul(widen(lo, 2), vd), vm), 32);
      v128.store(o, f32x4.add(f32x4.mul(widen(lo, 3), vd), vm), 48);
      v128.store(o, f32x4.add(f32x4.mul(widen(hi, 0), vd), vm), 64);
      v128.store(o, f32x4.add(f32x4.mul(widen(hi, 1), vd), vm), 80);
      v128.store(o, f32x4.add(f32x4.mul(widen(hi, 2), vd), vm), 96);
      v128.store(o, f32x4.add(f32x4.mul(widen(hi, 3), vd), vm), 112);
    } else {
      v128.store(o, f32x4.mul(widen(lo, 0), vd));
      v128.store(o, f32x4.mul(widen(lo, 1), vd), 16);
      v128.store(o, f32x4.mul(widen(lo, 2), vd), 32);
      v128.store(o, f32x4.mul(widen(lo, 3), vd), 48);
      v128.store(o, f32x4.mul(widen(hi, 0), vd), 64);
      v128.store(o, f32x4.mul(widen(hi, 1), vd), 80);
      v128.store(o, f32x4.mul(widen(hi, 2), vd), 96);
      v128.store(o, f32x4.mul(widen(hi, 3), vd), 112);
    }
  }
}
