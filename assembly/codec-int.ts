// Integer codecs (int8, int4, int2): groups along head_dim with an f16 scale (and f16 zero-point
// when asymmetric). Bit-exact port of src/quant/integer.ts: f32 arithmetic, round half to even
// (f32.nearest), scale rounded UP and asymmetric minimum rounded DOWN to f16, non-finite elements
// left out of min/max and clamped to the group's finite range. Packing is little-endian within
// a byte: int4 element 2j in the low nibble of byte j; int2 element 4j+k in bits 2k..2k+1.
import { F16_MAX, f16ToF32, f16x4FiniteToF32, f32ToF16Down, f32ToF16Up, f32x4ToF16 } from "./half";

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

/** Store code u (bits wide) as element i of the packed row at p, leaving its neighbours. */
// @ts-ignore: decorator
@inline
export function putCode(bits: i32, p: usize, i: usize, u: u32): void {
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

// ---- fast path: four whole groups at a time ----
//
// Used when groups tile the rows exactly (groupSize divides headDim, groupSize % 16 == 0), so
// group k of the call starts at element k * groupSize and at payload byte k * groupSize * bits / 8.
// A batch of 4 groups takes this path when none of its elements is NaN/±Inf, nothing saturates
// and (asymmetric only) no group's min or max is a zero, whose sign the reference takes from the
// first zero in the group; any other batch goes through encodeGroup group by group.
// Bit-exactness: scales and zero-points use the same f32 divisions and f16 rounding as the
// reference, four groups in the lanes of one f32x4 (f32x4ToF16 is f32ToF16 lane-wise), and the
// codes are round-half-even of the same f32 products, taken by adding 1.5 * 2^23 (+ offset):
// exact for |x * inv| < 2^22, which holds when nothing saturates (|x * inv| <= qmax or levels,
// plus a few ulps). Min/max use pmin/pmax: NaN is excluded by the finiteness check, and ±0 only
// matters for the asymmetric zero-point, whose batches are sent to the exact path.

/** 1.5 * 2^23: f32 additions of it round to an integer held in the low mantissa bits. */
const MAGIC: f32 = 12582912.0;
const MAGIC_BITS: i32 = 0x4b400000;

// Splatted constants, loaded from memory (V8 rebuilds a v128.const from immediates at every
// use; a load is one instruction and loads hoisted before a loop stay in registers).
const IK: usize = memory.data<u32>(
  [
    0x4b400000, 0x4b400000, 0x4b400000, 0x4b400000, // 0: MAGIC_BITS
    0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // 16: +Inf
    0xff800000, 0xff800000, 0xff800000, 0xff800000, // 32: -Inf
    0x00ff00ff, 0x00ff00ff, 0x00ff00ff, 0x00ff00ff, // 48: 0xff in u16 lanes
    0xff, 0xff, 0xff, 0xff, // 64: 0xff in u32 lanes
    0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, // 80: int4 code max in u8 lanes
    0x03030303, 0x03030303, 0x03030303, 0x03030303, // 96: int2 code max
    0x7bff, 0x7bff, 0x7bff, 0x7bff, // 112: f16 65504
    0x477fe000, 0x477fe000, 0x477fe000, 0x477fe000, // 128: 65504f
    1, 1, 1, 1, // 144
    0x8000, 0x8000, 0x8000, 0x8000, // 160: f16 sign
    0xc77fe000, 0xc77fe000, 0xc77fe000, 0xc77fe000, // 176: -65504f
    0x80808080, 0x80808080, 0x80808080, 0x80808080, // 192: int8 code offset in u8 lanes
    0x08080808, 0x08080808, 0x08080808, 0x08080808, // 208: int4 code offset
    0x02020202, 0x02020202, 0x02020202, 0x02020202, // 224: int2 code offset
    0x1fff - (112 << 23), 0x1fff - (112 << 23), 0x1fff - (112 << 23), 0x1fff - (112 << 23), // 240: rebias, ceiling
    0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, // 256: |x| mask
    0x38800000, 0x38800000, 0x38800000, 0x38800000, // 272: 2^-14
    -(112 << 23), -(112 << 23), -(112 << 23), -(112 << 23), // 288: rebias, floor
    0x00080008, 0x00080008, 0x00080008, 0x00080008, // 304: int4 code offset in u16 lanes
  ],
  16,
);

// f32 constants by (sym, bits): divisor (qmax or levels), its saturation limit (x 65504), and
// the magic adder with the code offset folded in (sym: 2^(bits-1)); then 1.0.
const IKF: usize = memory.data<f32>(
  [
    127, 127, 127, 127, 7, 7, 7, 7, 1, 1, 1, 1, // 0: qmax for 8, 4, 2 bits
    255, 255, 255, 255, 15, 15, 15, 15, 3, 3, 3, 3, // 48: levels
    8319008, 8319008, 8319008, 8319008, 458528, 458528, 458528, 458528, 65504, 65504, 65504, 65504, // 96
    16703520, 16703520, 16703520, 16703520, 982560, 982560, 982560, 982560, 196512, 196512, 196512, 196512, // 144
    12583040, 12583040, 12583040, 12583040, 12582920, 12582920, 12582920, 12582920, 12582914, 12582914, 12582914, 12582914, // 192: MAGIC + offset
    12582912, 12582912, 12582912, 12582912, 12582912, 12582912, 12582912, 12582912, 12582912, 12582912, 12582912, 12582912, // 240: MAGIC
    1, 1, 1, 1, // 288
  ],
  16,
);

// In-place decode constants (see decodeGroupInPlace): per-lane code masks, the scale factors
// that undo each lane's bit position (powers of two, so exact), and the symmetric offset at
// each lane's bit position.
const DK: usize = memory.data<u32>(
  [
    0xf, 0xf0, 0xf00, 0xf000, // 0: int4 masks
    0x3f800000, 0x3d800000, 0x3b800000, 0x39800000, // 16: 1, 2^-4, 2^-8, 2^-12
    8, 8 << 4, 8 << 8, 8 << 12, // 32: int4 offset
    3, 3 << 2, 3 << 4, 3 << 6, // 48: int2 masks, low byte
    3 << 8, 3 << 10, 3 << 12, 3 << 14, // 64: int2 masks, high byte
    0x3f800000, 0x3e800000, 0x3d800000, 0x3c800000, // 80: 1, 2^-2, 2^-4, 2^-6
    0x3b800000, 0x3a800000, 0x39800000, 0x38800000, // 96: 2^-8 .. 2^-14
    2, 2 << 2, 2 << 4, 2 << 6, // 112: int2 offset, low byte
    2 << 8, 2 << 10, 2 << 12, 2 << 14, // 128: int2 offset, high byte
    0x7fff, 0x7fff, 0x7fff, 0x7fff, // 144: f16 exponent and mantissa
    0x7c00, 0x7c00, 0x7c00, 0x7c00, // 160: f16 Inf
    0x77800000, 0x77800000, 0x77800000, 0x77800000, // 176: 2^112
  ],
  16,
);

// @ts-ignore: decorator
@inline
function dk(at: i32): v128 {
  return v128.load(DK + <usize>at);
}

/** half.ts's f16x4ToF32 (same arithmetic) with its constants passed in, hoisted by the caller. */
// @ts-ignore: decorator
@inline
function f16x4ToF32K(h: v128, kSign: v128, kEm: v128, k112: v128, kInfH: v128, kInf: v128): v128 {
  const sign = i32x4.shl(v128.and(h, kSign), 16);
  const em = i32x4.shl(v128.and(h, kEm), 13);
  const scaled = f32x4.mul(em, k112);
  const infnan = i32x4.eq(v128.and(h, kInfH), kInfH);
  return v128.or(sign, v128.bitselect(v128.or(em, kInf), scaled, infnan));
}

/** IK entry at byte offset `at`. */
// @ts-ignore: decorator
@inline
function ik(at: i32): v128 {
  return v128.load(IK + <usize>at);
}

// Per-instance globals (not in the shared memory), set by groupLo.
let gHi: v128 = v128.splat<i32>(0);
let gSum: v128 = v128.splat<i32>(0);

/** Lane-wise min of one group of n (multiple of 16) f32 at x; lane-wise max in gHi, sum in gSum. */
// @ts-ignore: decorator
@inline
function groupLo(x: usize, n: i32): v128 {
  let lo = ik(16);
  let hi = ik(32);
  let sum = i32x4.splat(0);
  for (let i = 0; i < n; i += 16) {
    const p = x + (<usize>i << 2);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const c = v128.load(p, 32);
    const d = v128.load(p, 48);
    lo = f32x4.pmin(lo, f32x4.pmin(f32x4.pmin(a, b), f32x4.pmin(c, d)));
    hi = f32x4.pmax(hi, f32x4.pmax(f32x4.pmax(a, b), f32x4.pmax(c, d)));
    // Any NaN or ±Inf makes the sum non-finite (so can a huge finite sum: that batch just takes
    // the exact path).
    sum = f32x4.add(sum, f32x4.add(f32x4.add(a, b), f32x4.add(c, d)));
  }
  gHi = hi;
  gSum = sum;
  return lo;
}

/**
 * Lane-wise max of |x| bits over one group of n (multiple of 16) f32 at x (symmetric codecs
 * need only max |x|). As integers, |x| bits order like |x|, and NaN/Inf lie above every
 * finite value, so the same max also tells whether the group holds a non-finite element.
 */
// @ts-ignore: decorator
@inline
function groupAbsMax(x: usize, n: i32, kAbs: v128): v128 {
  let m = i32x4.splat(0);
  for (let i = 0; i < n; i += 16) {
    const p = x + (<usize>i << 2);
    const a = v128.and(v128.load(p), kAbs);
    const b = v128.and(v128.load(p, 16), kAbs);
    const c = v128.and(v128.load(p, 32), kAbs);
    const d = v128.and(v128.load(p, 48), kAbs);
    m = i32x4.max_s(m, i32x4.max_s(i32x4.max_s(a, b), i32x4.max_s(c, d)));
  }
  return m;
}

/** [max a, max b, max c, max d] over the i32 lanes of each. */
// @ts-ignore: decorator
@inline
function hmax4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.max_s(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.max_s(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.max_s(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** [min a, min b, min c, min d] over the lanes of each (pmin: no NaN here). */
// @ts-ignore: decorator
@inline
function hmin4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.pmin(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = f32x4.pmin(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.pmin(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

// @ts-ignore: decorator
@inline
function hmax4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.pmax(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = f32x4.pmax(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.pmax(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** Whether some lane of x (f32 bits) has |x| outside f16's normal range [2^-14, 65504]. */
// @ts-ignore: decorator
@inline
function outsideF16Normal(ax: v128): bool {
  return v128.any_true(v128.or(i32x4.lt_s(ax, ik(272)), i32x4.gt_s(ax, ik(128))));
}

/** f16 rounded UP from finite x >= 0 (f32ToF16Up lane-wise for such x), as u32 lanes. */
// @ts-ignore: decorator
@inline
function f16UpX4(x: v128): v128 {
  // In f16's normal range rounding up is a ceiling on the 13 dropped bits of the rebiased
  // pattern (positive f32 bit patterns are ordered like their values; a carry moves to the
  // next binade, as it should).
  if (!outsideF16Normal(x)) return i32x4.shr_u(i32x4.add(x, ik(240)), 13);
  const h = f32x4ToF16(x);
  // +1 where the nearest f16 is below x (h + 1 is the next f16 up for x >= 0), then saturate
  // (x >= 65504 also covers h = Inf, whose decode below would be wrong).
  const up = i32x4.sub(h, f32x4.lt(f16x4FiniteToF32(h), x));
  return v128.bitselect(ik(112), up, f32x4.ge(x, ik(128)));
}

/** f16 rounded DOWN from finite x with x >= -65504 (f32ToF16Down lane-wise for such x). */
// @ts-ignore: decorator
@inline
function f16DownX4(x: v128): v128 {
  const ax = v128.and(x, ik(256));
  if (!outsideF16Normal(ax)) {
    // Floor of |x| on the dropped bits for x > 0, ceiling for x < 0 (a larger magnitude).
    const neg = i32x4.lt_s(x, i32x4.splat(0));
    const mag = i32x4.shr_u(i32x4.add(ax, v128.bitselect(ik(240), ik(288), neg)), 13);
    return v128.or(mag, v128.and(neg, ik(160)));
  }
  const h = f32x4ToF16(x);
  // Where the nearest f16 is above x: the next f16 down is h - 1 for positive h, h + 1 for
  // negative h (h is never +0 there: x < +0 rounds to -0).
  const step = v128.or(i32x4.eq(v128.and(h, ik(160)), i32x4.splat(0)), ik(144));
  const down = i32x4.add(h, v128.and(f32x4.gt(f16x4FiniteToF32(h), x), step));
  return v128.bitselect(ik(112), down, f32x4.ge(x, ik(128)));
}

/** 16 codes (u8 lanes) of the 16 f32 at x: nearest-even of (x - m) * inv (sym: x * inv) plus magic's offset. */
// @ts-ignore: decorator
@inline
function codes16(sym: bool, x: usize, vinv: v128, vm: v128, vmagic: v128, k: v128): v128 {
  let a = v128.load(x);
  let b = v128.load(x, 16);
  let c = v128.load(x, 32);
  let d = v128.load(x, 48);
  if (!sym) {
    a = f32x4.sub(a, vm);
    b = f32x4.sub(b, vm);
    c = f32x4.sub(c, vm);
    d = f32x4.sub(d, vm);
  }
  a = i32x4.sub(f32x4.add(f32x4.mul(a, vinv), vmagic), k);
  b = i32x4.sub(f32x4.add(f32x4.mul(b, vinv), vmagic), k);
  c = i32x4.sub(f32x4.add(f32x4.mul(c, vinv), vmagic), k);
  d = i32x4.sub(f32x4.add(f32x4.mul(d, vinv), vmagic), k);
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

/** Pack 16 codes (u8 lanes, each < 2^bits) of elements [i, i+16) into the payload at p. */
// @ts-ignore: decorator
@inline
function put16(bits: i32, p: usize, i: usize, c: v128, k16: v128, k32: v128): void {
  if (bits == 8) v128.store(p + i, c);
  else if (bits == 4) {
    // u16 lane j holds codes 2j (low byte) and 2j+1 (high byte): fold the high one into bits 4..7.
    const w = v128.and(v128.or(c, i16x8.shr_u(c, 4)), k16);
    v128.store64_lane(p + (i >> 1), i8x16.narrow_i16x8_u(w, w), 0);
  } else {
    // u32 lane j holds codes 4j..4j+3 in its bytes: fold them into the low byte's bit pairs.
    let w = v128.or(c, i32x4.shr_u(c, 6));
    w = v128.and(v128.or(w, i32x4.shr_u(w, 12)), k32);
    const h = i16x8.narrow_i32x4_u(w, w);
    v128.store32_lane(p + (i >> 2), i8x16.narrow_i16x8_u(h, h), 0);
  }
}

/** Quantize one group of n (multiple of 16) elements at x into its payload at p. */
// @ts-ignore: decorator
@inline
function quantGroupFast(bits: i32, sym: bool, x: usize, n: i32, p: usize, vinv: v128, vm: v128, vmagic: v128): void {
  for (let i = 0; i < n; i += 16) {
    let c = codes16(sym, x + (<usize>i << 2), vinv, vm, vmagic, ik(0));
    if (bits < 8) c = i8x16.min_u(c, ik(bits == 4 ? 80 : 96)); // no-op by the bound above; keeps neighbours safe
    put16(bits, p, <usize>i, c, ik(48), ik(64));
  }
}

/** Quantize the 4 groups from x / p with lane j of inv and m for group j. */
// @ts-ignore: decorator
@inline
function quantBatchFast(bits: i32, sym: bool, x: usize, gs: i32, p: usize, inv: v128, m: v128, vmagic: v128): void {
  const xs = <usize>gs << 2;
  const ps = <usize>((gs * bits) >> 3);
  quantGroupFast(bits, sym, x, gs, p, i32x4.shuffle(inv, inv, 0, 0, 0, 0), i32x4.shuffle(m, m, 0, 0, 0, 0), vmagic);
  quantGroupFast(bits, sym, x + xs, gs, p + ps, i32x4.shuffle(inv, inv, 1, 1, 1, 1), i32x4.shuffle(m, m, 1, 1, 1, 1), vmagic);
  quantGroupFast(bits, sym, x + 2 * xs, gs, p + 2 * ps, i32x4.shuffle(inv, inv, 2, 2, 2, 2), i32x4.shuffle(m, m, 2, 2, 2, 2), vmagic);
  quantGroupFast(bits, sym, x + 3 * xs, gs, p + 3 * ps, i32x4.shuffle(inv, inv, 3, 3, 3, 3), i32x4.shuffle(m, m, 3, 3, 3, 3), vmagic);
}

/**
 * Encode nG whole groups of groupSize elements (groupSize % 16 == 0), laid end to end at src,
 * payload, scales and zeros. Returns the non-finite count; adds saturations at stats+4.
 */
function encodeFlat<T>(groupSize: i32, src: usize, nG: i32, payload: usize, scales: usize, zeros: usize, stats: usize): i32 {
  // T fixes (bits, sym) at compile time so each instance folds its branches: i8/u8 = 8 bits
  // sym/asym, i16/u16 = 4 bits, i32/u32 = 2 bits.
  const bits = 8 / sizeof<T>();
  const sym = isSigned<T>();
  const qmax = <f32>((1 << (bits - 1)) - 1);
  const levels = <f32>((1 << bits) - 1);
  const gBytes = <usize>((groupSize * bits) >> 3);
  const gStride = <usize>groupSize << 2;
  // Per-(sym, bits) f32 constants, loaded once (see IKF).
  const at = (sym ? 0 : 48) + (bits == 8 ? 0 : bits == 4 ? 16 : 32);
  const vDiv = v128.load(IKF + <usize>at);
  const vLimit = v128.load(IKF + <usize>at, 96);
  const vmagic = v128.load(IKF + <usize>(sym ? 192 + (at % 48) : 240));
  const vOne = v128.load(IKF, 288);
  let nonFinite = 0;
  let pending = false;
  let pg = 0;
  let pInv = i32x4.splat(0);
  let pM = i32x4.splat(0);
  let g = 0;
  for (; g + 4 <= nG; g += 4) {
    const x0 = src + <usize>g * gStride;
    let inv: v128;
    let m = f32x4.splat(0);
    let sBits: v128;
    let mBits = i32x4.splat(0);
    if (sym) {
      const kAbs = ik(256);
      const amax = hmax4i(
        groupAbsMax(x0, groupSize, kAbs),
        groupAbsMax(x0 + gStride, groupSize, kAbs),
        groupAbsMax(x0 + 2 * gStride, groupSize, kAbs),
        groupAbsMax(x0 + 3 * gStride, groupSize, kAbs),
      );
      // Fast only without NaN/Inf (|x| bits >= Inf's) and without saturation.
      if (v128.any_true(v128.or(i32x4.ge_s(amax, ik(16)), f32x4.gt(amax, vLimit)))) {
        for (let j = 0; j < 4; j++) {
          const k = <usize>(g + j);
          nonFinite += encodeGroup(bits, sym, src + k * gStride, 0, groupSize, payload + k * gBytes, scales + (k << 1), zeros + (k << 1), stats);
        }
        continue;
      }
      sBits = f16UpX4(f32x4.div(amax, vDiv));
      // A nonzero range never gets s = 0 (f32-subnormal inputs): the smallest f16 subnormal.
      sBits = i32x4.max_u(sBits, v128.and(i32x4.gt_s(amax, i32x4.splat(0)), ik(144)));
    } else {
    const l0 = groupLo(x0, groupSize);
    const h0 = gHi;
    let sum = gSum;
    const l1 = groupLo(x0 + gStride, groupSize);
    const h1 = gHi;
    sum = f32x4.add(sum, gSum);
    const l2 = groupLo(x0 + 2 * gStride, groupSize);
    const h2 = gHi;
    sum = f32x4.add(sum, gSum);
    const l3 = groupLo(x0 + 3 * gStride, groupSize);
    const h3 = gHi;
    sum = f32x4.add(sum, gSum);
    const lo = hmin4(l0, l1, l2, l3);
    const hi = hmax4(h0, h1, h2, h3);
    let ok = i32x4.all_true(f32x4.lt(f32x4.abs(sum), ik(16)));
      const zero = f32x4.splat(0);
      ok = ok && !v128.any_true(v128.or(f32x4.eq(lo, zero), f32x4.eq(hi, zero)));
      ok = ok && !v128.any_true(f32x4.lt(lo, ik(176)));
      mBits = f16DownX4(lo);
      m = f16x4FiniteToF32(mBits);
      const range = f32x4.sub(hi, m);
      ok = ok && !v128.any_true(f32x4.gt(range, vLimit));
      sBits = f16UpX4(f32x4.div(range, vDiv));
      sBits = i32x4.max_u(sBits, v128.and(f32x4.gt(hi, m), ik(144)));
      if (!ok) {
        for (let j = 0; j < 4; j++) {
          const k = <usize>(g + j);
          nonFinite += encodeGroup(bits, sym, src + k * gStride, 0, groupSize, payload + k * gBytes, scales + (k << 1), zeros + (k << 1), stats);
        }
        continue;
      }
    }
    const s = f16x4FiniteToF32(sBits);
    inv = v128.and(f32x4.div(vOne, s), f32x4.gt(s, i32x4.splat(0)));
    v128.store64_lane(scales + (<usize>g << 1), i16x8.narrow_i32x4_u(sBits, sBits), 0);
    if (!sym) v128.store64_lane(zeros + (<usize>g << 1), i16x8.narrow_i32x4_u(mBits, mBits), 0);
    // Software pipelining: quantize the previous fast batch now, so this batch's serial chain
    // (reductions, f16 rounding, division) overlaps with independent work.
    if (pending) quantBatchFast(bits, sym, src + <usize>pg * gStride, groupSize, payload + <usize>pg * gBytes, pInv, pM, vmagic);
    pending = true;
    pg = g;
    pInv = inv;
    pM = m;
  }
  if (pending) quantBatchFast(bits, sym, src + <usize>pg * gStride, groupSize, payload + <usize>pg * gBytes, pInv, pM, vmagic);
  for (; g < nG; g++) {
    const k = <usize>g;
    nonFinite += encodeGroup(bits, sym, src + k * gStride, 0, groupSize, payload + k * gBytes, scales + (k << 1), zeros + (k << 1), stats);
  }
  return nonFinite;
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
  if (groupSize % 16 == 0 && headDim % groupSize == 0) {
    const nG = nRows * (headDim / groupSize);
    let nf = 0;
    if (bits == 8) nf = sym ? encodeFlat<i8>(groupSize, src, nG, payload, scales, zeros, stats) : encodeFlat<u8>(groupSize, src, nG, payload, scales, zeros, stats);
    else if (bits == 4) nf = sym ? encodeFlat<i16>(groupSize, src, nG, payload, scales, zeros, stats) : encodeFlat<u16>(groupSize, src, nG, payload, scales, zeros, stats);
    else nf = sym ? encodeFlat<i32>(groupSize, src, nG, payload, scales, zeros, stats) : encodeFlat<u32>(groupSize, src, nG, payload, scales, zeros, stats);
    store<i32>(stats, nf);
    return;
  }
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

/**
 * Decode nG whole groups laid end to end (groupSize % 16 == 0, groups tile the rows). int4 and
 * int2 go through decodeGroupInPlace. int8: the symmetric offset is taken off in u8 lanes
 * (u - 128 wraps to the signed code), then sign-extended: the same integers, converted and
 * scaled in f32 exactly as the reference.
 */
function decodeFlat<T>(groupSize: i32, payload: usize, scales: usize, zeros: usize, nG: i32, dst: usize): void {
  // The registry's default group size gets its own copy, with strides and group loops folded.
  if (groupSize == 32) decodeFlatBody<T>(32, payload, scales, zeros, nG, dst);
  else decodeFlatBody<T>(groupSize, payload, scales, zeros, nG, dst);
}

// @ts-ignore: decorator
@inline
function decodeFlatBody<T>(groupSize: i32, payload: usize, scales: usize, zeros: usize, nG: i32, dst: usize): void {
  // T fixes (bits, sym) as in encodeFlat.
  const bits = 8 / sizeof<T>();
  const sym = isSigned<T>();
  const gBytes = <usize>((groupSize * bits) >> 3);
  const vOff = ik(192);
  // In-place constants (int4: lanes A; int2: A for the low byte of a u16, B for the high byte).
  const mA = dk(bits == 4 ? 0 : 48);
  const mB = dk(64);
  const fA = dk(bits == 4 ? 16 : 80);
  const fB = dk(96);
  const oA = dk(bits == 4 ? 32 : 112);
  const oB = dk(128);
  const kSign = ik(160);
  const kEm = dk(144);
  const k112 = dk(176);
  const kInfH = dk(160);
  const kInf = ik(16);
  let g = 0;
  // Four groups at a time: their scales (and zero-points) widened to f32 in one f32x4.
  for (; g + 4 <= nG; g += 4) {
    const vs4 = f16x4ToF32K(i32x4.extend_low_i16x8_u(v128.load64_zero(scales + (<usize>g << 1))), kSign, kEm, k112, kInfH, kInf);
    const vm4 = sym ? i32x4.splat(0) : f16x4ToF32K(i32x4.extend_low_i16x8_u(v128.load64_zero(zeros + (<usize>g << 1))), kSign, kEm, k112, kInfH, kInf);
    const p = payload + <usize>g * gBytes;
    const out = dst + ((<usize>g * <usize>groupSize) << 2);
    const oStride = <usize>groupSize << 2;
    if (bits == 8) {
      decodeGroupFast(sym, groupSize, p, out, i32x4.shuffle(vs4, vs4, 0, 0, 0, 0), i32x4.shuffle(vm4, vm4, 0, 0, 0, 0), vOff);
      decodeGroupFast(sym, groupSize, p + gBytes, out + oStride, i32x4.shuffle(vs4, vs4, 1, 1, 1, 1), i32x4.shuffle(vm4, vm4, 1, 1, 1, 1), vOff);
      decodeGroupFast(sym, groupSize, p + 2 * gBytes, out + 2 * oStride, i32x4.shuffle(vs4, vs4, 2, 2, 2, 2), i32x4.shuffle(vm4, vm4, 2, 2, 2, 2), vOff);
      decodeGroupFast(sym, groupSize, p + 3 * gBytes, out + 3 * oStride, i32x4.shuffle(vs4, vs4, 3, 3, 3, 3), i32x4.shuffle(vm4, vm4, 3, 3, 3, 3), vOff);
    } else {
      decodeGroupInPlace(bits, sym, groupSize, p, out, i32x4.shuffle(vs4, vs4, 0, 0, 0, 0), i32x4.shuffle(vm4, vm4, 0, 0, 0, 0), mA, mB, fA, fB, oA, oB);
      decodeGroupInPlace(bits, sym, groupSize, p + gBytes, out + oStride, i32x4.shuffle(vs4, vs4, 1, 1, 1, 1), i32x4.shuffle(vm4, vm4, 1, 1, 1, 1), mA, mB, fA, fB, oA, oB);
      decodeGroupInPlace(bits, sym, groupSize, p + 2 * gBytes, out + 2 * oStride, i32x4.shuffle(vs4, vs4, 2, 2, 2, 2), i32x4.shuffle(vm4, vm4, 2, 2, 2, 2), mA, mB, fA, fB, oA, oB);
      decodeGroupInPlace(bits, sym, groupSize, p + 3 * gBytes, out + 3 * oStride, i32x4.shuffle(vs4, vs4, 3, 3, 3, 3), i32x4.shuffle(vm4, vm4, 3, 3, 3, 3), mA, mB, fA, fB, oA, oB);
    }
  }
  for (; g < nG; g++) {
    const s = f16ToF32(<u32>load<u16>(scales + (<usize>g << 1)));
    const m: f32 = sym ? 0 : f16ToF32(<u32>load<u16>(zeros + (<usize>g << 1)));
    const p = payload + <usize>g * gBytes;
    const out = dst + ((<usize>g * <usize>groupSize) << 2);
    if (bits == 8) decodeGroupFast(sym, groupSize, p, out, f32x4.splat(s), f32x4.splat(m), vOff);
    else decodeGroupInPlace(bits, sym, groupSize, p, out, f32x4.splat(s), f32x4.splat(m), mA, mB, fA, fB, oA, oB);
  }
}

/**
 * int4/int2: one group of n (multiple of 16) codes at p to f32 at out, without moving codes
 * between lanes. A 32-bit word is splatted to the 4 lanes and each lane masks out its own code
 * where it lies (lane k of an int4 quad: bits 4k..4k+3, i.e. code * 16^k), converted as is, and
 * multiplied by s * 16^-k. Both factors are exact powers of two apart from code and s, so each
 * product is the same real number code * s as the reference's, rounded once to the same f32
 * (s * 2^-k stays normal: s >= 2^-24, k <= 14; code * 2^k < 2^16). The symmetric offset is taken
 * off in i32 at the same bit position (exact). Then the reference's own add of the zero-point.
 * Loads stay inside the group's bytes (int4 reads bytes 4..7 once more and shifts them down).
 */
// @ts-ignore: decorator
@inline
function decodeGroupInPlace(bits: i32, sym: bool, n: i32, p: usize, out: usize, vs: v128, vm: v128, mA: v128, mB: v128, fA: v128, fB: v128, oA: v128, oB: v128): void {
  const sA = f32x4.mul(vs, fA);
  const sB = f32x4.mul(vs, fB);
  if (n == 32) {
    inPlace16(bits, sym, p, out, 0, vm, mA, mB, sA, sB, oA, oB);
    inPlace16(bits, sym, p, out, 16, vm, mA, mB, sA, sB, oA, oB);
    return;
  }
  // 32 codes per iteration, then a 16-code tail.
  let i: usize = 0;
  for (; i + 32 <= <usize>n; i += 32) {
    inPlace16(bits, sym, p, out, i, vm, mA, mB, sA, sB, oA, oB);
    inPlace16(bits, sym, p, out, i + 16, vm, mA, mB, sA, sB, oA, oB);
  }
  if (i < <usize>n) inPlace16(bits, sym, p, out, i, vm, mA, mB, sA, sB, oA, oB);
}

/** Codes [i, i+16) of a group at p to f32 at out (see decodeGroupInPlace). */
// @ts-ignore: decorator
@inline
function inPlace16(bits: i32, sym: bool, p: usize, out: usize, i: usize, vm: v128, mA: v128, mB: v128, sA: v128, sB: v128, oA: v128, oB: v128): void {
  const o = out + (i << 2);
  if (bits == 4) {
    const q = p + (i >> 1);
    const a = v128.load32_splat(q);
    const b = v128.load32_splat(q, 2);
    const c = v128.load32_splat(q, 4);
    const d = i32x4.shr_u(c, 16);
    v128.store(o, dqLane(sym, a, mA, oA, sA, vm));
    v128.store(o, dqLane(sym, b, mA, oA, sA, vm), 16);
    v128.store(o, dqLane(sym, c, mA, oA, sA, vm), 32);
    v128.store(o, dqLane(sym, d, mA, oA, sA, vm), 48);
  } else {
    const a = v128.load32_splat(p + (i >> 2));
    const b = i32x4.shr_u(a, 16);
    v128.store(o, dqLane(sym, a, mA, oA, sA, vm));
    v128.store(o, dqLane(sym, a, mB, oB, sB, vm), 16);
    v128.store(o, dqLane(sym, b, mA, oA, sA, vm), 32);
    v128.store(o, dqLane(sym, b, mB, oB, sB, vm), 48);
  }
}

/** Lane k: code at mask bits (code * 2^j), minus the offset there, times s * 2^-j, plus zero. */
// @ts-ignore: decorator
@inline
function dqLane(sym: bool, w: v128, mask: v128, off: v128, s: v128, vm: v128): v128 {
  const c = v128.and(w, mask);
  return sym ? f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(c, off)), s) : f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(c), s), vm);
}

/** int8: one group of n (multiple of 16) codes at p to f32 at out, with scale vs and zero-point vm splatted. */
// @ts-ignore: decorator
@inline
function decodeGroupFast(sym: bool, n: i32, p: usize, out: usize, vs: v128, vm: v128, vOff: v128): void {
  for (let i: usize = 0; i < <usize>n; i += 16) {
    let w0: v128;
    let w1: v128;
    if (sym) {
      const c = i8x16.sub(v128.load(p + i), vOff);
      w0 = i16x8.extend_low_i8x16_s(c);
      w1 = i16x8.extend_high_i8x16_s(c);
    } else {
      // Unsigned codes: zero-extend by zips with zero (one instruction each on x64).
      const c = v128.load(p + i);
      const zero = i32x4.splat(0);
      w0 = i8x16.shuffle(c, zero, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      w1 = i8x16.shuffle(c, zero, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    }
    const o = out + (i << 2);
    if (sym) {
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w0)), vs, vm));
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w0)), vs, vm), 16);
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w1)), vs, vm), 32);
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w1)), vs, vm), 48);
    } else {
      const zero = i32x4.splat(0);
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i16x8.shuffle(w0, zero, 0, 8, 1, 9, 2, 10, 3, 11)), vs, vm));
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i16x8.shuffle(w0, zero, 4, 12, 5, 13, 6, 14, 7, 15)), vs, vm), 16);
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i16x8.shuffle(w1, zero, 0, 8, 1, 9, 2, 10, 3, 11)), vs, vm), 32);
      v128.store(o, dq(sym, f32x4.convert_i32x4_s(i16x8.shuffle(w1, zero, 4, 12, 5, 13, 6, 14, 7, 15)), vs, vm), 48);
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
  if (groupSize % 16 == 0 && headDim % groupSize == 0) {
    const nG = nRows * (headDim / groupSize);
    if (bits == 8) sym ? decodeFlat<i8>(groupSize, payload, scales, zeros, nG, dst) : decodeFlat<u8>(groupSize, payload, scales, zeros, nG, dst);
    else if (bits == 4) sym ? decodeFlat<i16>(groupSize, payload, scales, zeros, nG, dst) : decodeFlat<u16>(groupSize, payload, scales, zeros, nG, dst);
    else sym ? decodeFlat<i32>(groupSize, payload, scales, zeros, nG, dst) : decodeFlat<u32>(groupSize, payload, scales, zeros, nG, dst);
    return;
  }
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
