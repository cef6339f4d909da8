// Integer codecs (int8, int4, int2): groups along head_dim with an f16 scale (and f16 zero-point
// when asymmetric). Bit-exact port of src/quant/integer.ts: f32 arithmetic, round half to even
// (f32.nearest), scale rounded UP and asymmetric minimum rounded DOWN to f16, non-finite elements
// left out of min/max and clamped to the group's finite range. Packing is little-endian within
// a byte: int4 element 2j in the low nibble of byte j; int2 element 4j+k in bits 2k..2k+1.
import { F16_MAX, f16ToF32, f32ToF16Down, f32ToF16Up } from "./half";

// ---- unpacking codes to u8 lanes (shared with attention) ----

/** 16 codes of elements [i, i+16) of a row at p, one per u8 lane. i is a multiple of 8. */
// @ts-ignore: decorator
@inline
export function unpack16(bits: i32, p: usize, i: usize): v128 {
  if (bits == 8) return v128.load(p + i);
  if (bits == 4) return spreadNibbles(v128.load64_zero(p + (i >> 1)));
  return spreadCrumbs(v128.load32_zero(p + (i >> 2)));
}

/** 8 codes of elements [i, i+8) in u8 lanes 0..7 (lanes 8..15 are junk). i is a multiple of 8. */
// @ts-ignore: decorator
@inline
export function unpack8(bits: i32, p: usize, i: usize): v128 {
  if (bits == 8) return v128.load64_zero(p + i);
  if (bits == 4) return spreadNibbles(v128.load32_zero(p + (i >> 1)));
  return spreadCrumbs(v128.load16_lane(p + (i >> 2), i32x4.splat(0), 0));
}

// @ts-ignore: decorator
@inline
function spreadNibbles(v: v128): v128 {
  const lo = v128.and(v, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(v, 4);
  return i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}

// @ts-ignore: decorator
@inline
function spreadCrumbs(v: v128): v128 {
  const m = i8x16.splat(3);
  const c0 = v128.and(v, m);
  const c1 = v128.and(i8x16.shr_u(v, 2), m);
  const c2 = v128.and(i8x16.shr_u(v, 4), m);
  const c3 = i8x16.shr_u(v, 6);
  const a = i8x16.shuffle(c0, c1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const b = i8x16.shuffle(c2, c3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  return i8x16.shuffle(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}

/** Code of element i (scalar path for group tails). */
// @ts-ignore: decorator
@inline
export function getCode(bits: i32, p: usize, i: usize): u32 {
  if (bits == 8) return <u32>load<u8>(p + i);
  const bit = i * <usize>bits;
  return (<u32>load<u8>(p + (bit >> 3)) >> <u32>(bit & 7)) & ((<u32>1 << bits) - 1);
}

// @ts-ignore: decorator
@inline
function putCode(bits: i32, p: usize, i: usize, u: u32): void {
  if (bits == 8) {
    store<u8>(p + i, <u8>u);
    return;
  }
  const bit = i * <usize>bits;
  const byte = p + (bit >> 3);
  const shift = <u32>(bit & 7);
  const mask = ((<u32>1 << bits) - 1) << shift;
  store<u8>(byte, <u8>((<u32>load<u8>(byte) & ~mask) | (u << shift)));
}

// ---- packing codes from u8 lanes ----

// @ts-ignore: decorator
@inline
function pack16(bits: i32, p: usize, i: usize, c: v128): void {
  if (bits == 8) v128.store(p + i, c);
  else if (bits == 4) {
    const ev = i8x16.shuffle(c, c, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    const od = i8x16.shuffle(c, c, 1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
    v128.store64_lane(p + (i >> 1), v128.or(ev, i8x16.shl(od, 4)), 0);
  } else v128.store32_lane(p + (i >> 2), packCrumbs(c), 0);
}

// @ts-ignore: decorator
@inline
function pack8(bits: i32, p: usize, i: usize, c: v128): void {
  if (bits == 8) v128.store64_lane(p + i, c, 0);
  else if (bits == 4) {
    const ev = i8x16.shuffle(c, c, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    const od = i8x16.shuffle(c, c, 1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
    v128.store32_lane(p + (i >> 1), v128.or(ev, i8x16.shl(od, 4)), 0);
  } else v128.store16_lane(p + (i >> 2), packCrumbs(c), 0);
}

// @ts-ignore: decorator
@inline
function packCrumbs(c: v128): v128 {
  const c0 = i8x16.shuffle(c, c, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12);
  const c1 = i8x16.shuffle(c, c, 1, 5, 9, 13, 1, 5, 9, 13, 1, 5, 9, 13, 1, 5, 9, 13);
  const c2 = i8x16.shuffle(c, c, 2, 6, 10, 14, 2, 6, 10, 14, 2, 6, 10, 14, 2, 6, 10, 14);
  const c3 = i8x16.shuffle(c, c, 3, 7, 11, 15, 3, 7, 11, 15, 3, 7, 11, 15, 3, 7, 11, 15);
  return v128.or(v128.or(c0, i8x16.shl(c1, 2)), v128.or(i8x16.shl(c2, 4), i8x16.shl(c3, 6)));
}

// ---- quantization of 4 elements ----

/**
 * Codes of 4 elements at p as i32x4: non-finite replaced (NaN -> 0, +Inf -> hi, -Inf -> lo),
 * then sym: clamp(nearest(x * inv), -qmax, qmax) + offset; asym: clamp(nearest((x - m) * inv), 0, levels).
 */
// @ts-ignore: decorator
@inline
function quant4(sym: bool, p: usize, lo: f32, hi: f32, m: f32, inv: f32, qlo: f32, qhi: f32, off: f32): v128 {
  let x = v128.load(p);
  x = v128.bitselect(f32x4.splat(0), x, f32x4.ne(x, x));
  x = v128.bitselect(f32x4.splat(hi), x, f32x4.eq(x, f32x4.splat(Infinity)));
  x = v128.bitselect(f32x4.splat(lo), x, f32x4.eq(x, f32x4.splat(-Infinity)));
  if (!sym) x = f32x4.sub(x, f32x4.splat(m));
  let q = f32x4.nearest(f32x4.mul(x, f32x4.splat(inv)));
  q = f32x4.min(f32x4.max(q, f32x4.splat(qlo)), f32x4.splat(qhi));
  return i32x4.trunc_sat_f32x4_s(f32x4.add(q, f32x4.splat(off)));
}

// @ts-ignore: decorator
@inline
function quant1(sym: bool, x: f32, lo: f32, hi: f32, m: f32, inv: f32, qlo: f32, qhi: f32, off: f32): u32 {
  if (isNaN<f32>(x)) x = 0;
  else if (x == Infinity) x = hi;
  else if (x == -Infinity) x = lo;
  if (!sym) x = x - m;
  const q = Mathf.min(Mathf.max(nearest<f32>(x * inv), qlo), qhi);
  return <u32>(<i32>(q + off));
}

// @ts-ignore: decorator
@inline
function narrow16(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

/**
 * Encode one group's elements [start, end) of a row at src into the row's payload at p.
 * Returns the number of non-finite elements; adds saturated elements to the counter at stats+4.
 */
// @ts-ignore: decorator
@inline
function encodeGroup(
  bits: i32,
  sym: bool,
  src: usize,
  start: i32,
  end: i32,
  p: usize,
  scaleAt: usize,
  zeroAt: usize,
  stats: usize,
): i32 {
  // Finite min/max (SIMD body + scalar tail); non-finite elements are left out and counted.
  let vlo = f32x4.splat(Infinity);
  let vhi = f32x4.splat(-Infinity);
  let nonFinite = 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const x = v128.load(src + (<usize>i << 2));
    const fin = f32x4.lt(f32x4.abs(x), f32x4.splat(Infinity));
    nonFinite += 4 - <i32>popcnt<u32>(<u32>i32x4.bitmask(fin));
    vlo = f32x4.min(vlo, v128.bitselect(x, f32x4.splat(Infinity), fin));
    vhi = f32x4.max(vhi, v128.bitselect(x, f32x4.splat(-Infinity), fin));
  }
  let lo = Mathf.min(
    Mathf.min(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)),
    Mathf.min(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)),
  );
  let hi = Mathf.max(
    Mathf.max(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)),
    Mathf.max(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)),
  );
  for (; i < end; i++) {
    const x = load<f32>(src + (<usize>i << 2));
    if (isFinite<f32>(x)) {
      lo = Mathf.min(lo, x);
      hi = Mathf.max(hi, x);
    } else nonFinite++;
  }
  // The reference keeps the FIRST of equal extremes (strict compares); only zeros differ in bits
  // (+0 vs -0), and their sign reaches the f16 zero-point and scale. Take the first zero's sign.
  if (lo == 0 || hi == 0) {
    for (let j = start; j < end; j++) {
      const x = load<f32>(src + (<usize>j << 2));
      if (x == 0) {
        if (lo == 0) lo = x;
        if (hi == 0) hi = x;
        break;
      }
    }
  }
  if (lo > hi) lo = hi = 0; // every element non-finite
  const qmax = <f32>((1 << (bits - 1)) - 1);
  const levels = <f32>((1 << bits) - 1);
  let s: f32;
  let m: f32 = 0;
  if (sym) {
    const amax = Mathf.max(Mathf.abs(lo), Mathf.abs(hi));
    let sBits = f32ToF16Up(amax / qmax);
    if (sBits == 0 && amax > 0) sBits = 1; // f32-subnormal range: smallest f16 subnormal covers it
    store<u16>(scaleAt, <u16>sBits);
    s = f16ToF32(sBits);
    if (amax > qmax * F16_MAX) {
      const limit = qmax * s;
      let n = 0;
      for (let j = start; j < end; j++) {
        const x = load<f32>(src + (<usize>j << 2));
        if (isFinite<f32>(x) && Mathf.abs(x) > limit) n++; // ±Inf count only as non-finite
      }
      store<i32>(stats, load<i32>(stats, 4) + n, 4);
    }
  } else {
    const mBits = f32ToF16Down(lo);
    m = f16ToF32(mBits);
    let sBits = f32ToF16Up((hi - m) / levels);
    if (sBits == 0 && hi > m) sBits = 1;
    store<u16>(scaleAt, <u16>sBits);
    store<u16>(zeroAt, <u16>mBits);
    s = f16ToF32(sBits);
    if (lo < -F16_MAX || hi - m > levels * F16_MAX) {
      const top = m + levels * s;
      let n = 0;
      for (let j = start; j < end; j++) {
        const x = load<f32>(src + (<usize>j << 2));
        if (isFinite<f32>(x) && (x < m || x > top)) n++;
      }
      store<i32>(stats, load<i32>(stats, 4) + n, 4);
    }
  }
  const inv: f32 = s > 0 ? <f32>1 / s : 0;
  const qlo: f32 = sym ? -qmax : 0;
  const qhi: f32 = sym ? qmax : levels;
  const off: f32 = sym ? <f32>(1 << (bits - 1)) : 0;
  i = start;
  for (; i + 16 <= end; i += 16) {
    const x = src + (<usize>i << 2);
    const a = quant4(sym, x, lo, hi, m, inv, qlo, qhi, off);
    const b = quant4(sym, x + 16, lo, hi, m, inv, qlo, qhi, off);
    const c = quant4(sym, x + 32, lo, hi, m, inv, qlo, qhi, off);
    const d = quant4(sym, x + 48, lo, hi, m, inv, qlo, qhi, off);
    pack16(bits, p, <usize>i, narrow16(a, b, c, d));
  }
  if (i + 8 <= end) {
    const x = src + (<usize>i << 2);
    const a = quant4(sym, x, lo, hi, m, inv, qlo, qhi, off);
    const b = quant4(sym, x + 16, lo, hi, m, inv, qlo, qhi, off);
    pack8(bits, p, <usize>i, narrow16(a, b, a, b));
    i += 8;
  }
  for (; i < end; i++) {
    const x = load<f32>(src + (<usize>i << 2));
    putCode(bits, p, <usize>i, quant1(sym, x, lo, hi, m, inv, qlo, qhi, off));
  }
  return nonFinite;
}

// @ts-ignore: decorator
@inline
function encodeLoop(
  bits: i32,
  sym: bool,
  groupSize: i32,
  src: usize,
  nRows: i32,
  headDim: i32,
  payload: usize,
  scales: usize,
  zeros: usize,
  stats: usize,
): void {
  const nGroups = (headDim + groupSize - 1) / groupSize;
  const rowBytes = <usize>((headDim * bits + 7) >> 3);
  let nonFinite = 0;
  for (let r = 0; r < nRows; r++) {
    const p = payload + <usize>r * rowBytes;
    const x = src + ((<usize>r * <usize>headDim) << 2);
    for (let g = 0; g < nGroups; g++) {
      const start = g * groupSize;
      const end = min(start + groupSize, headDim);
      const gi = <usize>(r * nGroups + g) << 1;
      nonFinite += encodeGroup(bits, sym, x, start, end, p, scales + gi, zeros + gi, stats);
    }
  }
  store<i32>(stats, load<i32>(stats) + nonFinite);
}

/**
 * Encode nRows rows (nRows, headDim) f32 at src. payload/scales/zeros point at the first
 * destination row. stats: {nonFinite, saturated} i32 pair, zeroed here.
 */
export function encodeInt(
  bits: i32,
  sym: bool,
  groupSize: i32,
  src: usize,
  nRows: i32,
  headDim: i32,
  payload: usize,
  scales: usize,
  zeros: usize,
  stats: usize,
): void {
  store<i32>(stats, 0);
  store<i32>(stats, 0, 4);
  // One specialised copy per (bits, sym) so the packing and arithmetic branches fold away.
  if (bits == 8) {
    if (sym) encodeLoop(8, true, groupSize, src, nRows, headDim, payload, scales, zeros, stats);
    else encodeLoop(8, false, groupSize, src, nRows, headDim, payload, scales, zeros, stats);
  } else if (bits == 4) {
    if (sym) encodeLoop(4, true, groupSize, src, nRows, headDim, payload, scales, zeros, stats);
    else encodeLoop(4, false, groupSize, src, nRows, headDim, payload, scales, zeros, stats);
  } else {
    if (sym) encodeLoop(2, true, groupSize, src, nRows, headDim, payload, scales, zeros, stats);
    else encodeLoop(2, false, groupSize, src, nRows, headDim, payload, scales, zeros, stats);
  }
}

/** u8 lanes -> 4 f32x4 (lanes 0-3, 4-7, 8-11, 12-15) of the codes, minus `off`. */
// @ts-ignore: decorator
@inline
export function codesLo(c: v128, off: i32): v128 {
  const w = i16x8.extend_low_i8x16_u(c);
  return f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_low_i16x8_u(w), i32x4.splat(off)));
}
// @ts-ignore: decorator
@inline
export function codesLoHi(c: v128, off: i32): v128 {
  const w = i16x8.extend_low_i8x16_u(c);
  return f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_high_i16x8_u(w), i32x4.splat(off)));
}
// @ts-ignore: decorator
@inline
export function codesHiLo(c: v128, off: i32): v128 {
  const w = i16x8.extend_high_i8x16_u(c);
  return f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_low_i16x8_u(w), i32x4.splat(off)));
}
// @ts-ignore: decorator
@inline
export function codesHi(c: v128, off: i32): v128 {
  const w = i16x8.extend_high_i8x16_u(c);
  return f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_high_i16x8_u(w), i32x4.splat(off)));
}

// @ts-ignore: decorator
@inline
function dq(sym: bool, c: v128, s: v128, m: v128): v128 {
  return sym ? f32x4.mul(c, s) : f32x4.add(f32x4.mul(c, s), m);
}

// @ts-ignore: decorator
@inline
export function decodeIntLoop(
  bits: i32,
  sym: bool,
  groupSize: i32,
  payload: usize,
  scales: usize,
  zeros: usize,
  nRows: i32,
  headDim: i32,
  dst: usize,
): void {
  const nGroups = (headDim + groupSize - 1) / groupSize;
  const rowBytes = <usize>((headDim * bits + 7) >> 3);
  const off = sym ? 1 << (bits - 1) : 0;
  for (let r = 0; r < nRows; r++) {
    const p = payload + <usize>r * rowBytes;
    const out = dst + ((<usize>r * <usize>headDim) << 2);
    for (let g = 0; g < nGroups; g++) {
      const gi = <usize>(r * nGroups + g) << 1;
      const s = f16ToF32(<u32>load<u16>(scales + gi));
      const m: f32 = sym ? 0 : f16ToF32(<u32>load<u16>(zeros + gi));
      const vs = f32x4.splat(s);
      const vm = f32x4.splat(m);
      const end = min((g + 1) * groupSize, headDim);
      let i = g * groupSize;
      for (; i + 16 <= end; i += 16) {
        const c = unpack16(bits, p, <usize>i);
        const o = out + (<usize>i << 2);
        v128.store(o, dq(sym, codesLo(c, off), vs, vm));
        v128.store(o, dq(sym, codesLoHi(c, off), vs, vm), 16);
        v128.store(o, dq(sym, codesHiLo(c, off), vs, vm), 32);
        v128.store(o, dq(sym, codesHi(c, off), vs, vm), 48);
      }
      if (i + 8 <= end) {
        const c = unpack8(bits, p, <usize>i);
        const o = out + (<usize>i << 2);
        v128.store(o, dq(sym, codesLo(c, off), vs, vm));
        v128.store(o, dq(sym, codesLoHi(c, off), vs, vm), 16);
        i += 8;
      }
      for (; i < end; i++) {
        const u = <i32>getCode(bits, p, <usize>i);
        store<f32>(out + (<usize>i << 2), sym ? <f32>(u - off) * s : <f32>u * s + m);
      }
    }
  }
}

/** Decode nRows rows starting at the given row pointers into dst (nRows, headDim). Bit-exact. */
export function decodeInt(
  bits: i32,
  sym: bool,
  groupSize: i32,
  payload: usize,
  scales: usize,
  zeros: usize,
  nRows: i32,
  headDim: i32,
  dst: usize,
): void {
  if (bits == 8) {
    if (sym) decodeIntLoop(8, true, groupSize, payload, scales, zeros, nRows, headDim, dst);
    else decodeIntLoop(8, false, groupSize, payload, scales, zeros, nRows, headDim, dst);
  } else if (bits == 4) {
    if (sym) decodeIntLoop(4, true, groupSize, payload, scales, zeros, nRows, headDim, dst);
    else decodeIntLoop(4, false, groupSize, payload, scales, zeros, nRows, headDim, dst);
  } else {
    if (sym) decodeIntLoop(2, true, groupSize, payload, scales, zeros, nRows, headDim, dst);
    else decodeIntLoop(2, false, groupSize, payload, scales, zeros, nRows, headDim, dst);
  }
}
