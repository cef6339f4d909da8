// TurboQuant MSE codecs (turbo2, turbo2.5, turbo3, turbo3.5, turbo4): bit-exact port of
// src/quant/turboquant.ts (Zandieh et al. 2025, arXiv:2504.19874, Algorithm 1; the rotation is
// the cache's, applied before these kernels see a row). One f16 norm per row, then each
// coordinate's index into a Lloyd-Max codebook, bit-packed little-endian in element order; the
// first ceil(d/2) coordinates use `hi` bits, the rest `lo` bits (equal for the integer rates).
//
// The codebooks come from the JS side (src/kernels/wasm.ts builds them from
// src/quant/turboquant-codebook.ts) as one table of TURBO_TABLE_BYTES per (codec, head size):
//   book at 0 (hi bits) and at 192 (lo bits), each:
//     +0    4 x 16 bytes: byte b of every centroid's f32 bits (plane b; entries >= 2^bits are 0),
//           so that i8x16.swizzle looks up 16 codes' centroids a byte plane at a time;
//     +64   16 f32 centroids;
//     +128  16 f32 boundaries (2^bits - 1 used, the rest +Inf).
// Attention (attend.ts, attend-block.ts) decodes each stored row once per block of four query
// rows through turboDecodeRow: the scores and the weighted sum run over the codebook values
// n * c[code], never over a copy of the cache.
import { unpack16 } from "./codec-int";
import { f16ToF32, f32ToF16 } from "./half";

export const KIND_TURBO: i32 = 5;
export const TURBO_TABLE_BYTES: i32 = 384;
const LO_BOOK: usize = 192;

/** Coordinates coded with the high width: ceil(d / 2). */
// @ts-ignore: decorator
@inline
export function turboHiCount(d: i32): i32 {
  return (d + 1) >> 1;
}

/** Payload bytes of one row. */
// @ts-ignore: decorator
@inline
export function turboRowBytes(lo: i32, hi: i32, d: i32): usize {
  const nHi = turboHiCount(d);
  return <usize>((nHi * hi + (d - nHi) * lo + 7) >> 3);
}

/** Code of the element at bit offset `bit` (width w <= 4) of the row at p. */
// @ts-ignore: decorator
@inline
function getBitsAt(p: usize, bit: i32, w: i32): i32 {
  const at = p + <usize>(bit >> 3);
  const sh = bit & 7;
  let v = <i32>load<u8>(at) >> sh;
  if (sh + w > 8) v |= <i32>load<u8>(at, 1) << (8 - sh);
  return v & ((1 << w) - 1);
}

/** Write code c (width w) at bit offset `bit` of the row at p, leaving the other bits. */
// @ts-ignore: decorator
@inline
function putBitsAt(p: usize, bit: i32, w: i32, c: i32): void {
  const at = p + <usize>(bit >> 3);
  const sh = bit & 7;
  const m = ((1 << w) - 1) << sh;
  const v = (<i32>load<u8>(at) | (<i32>load<u8>(at + <usize>(sh + w > 8 ? 1 : 0)) << 8)) & ~m | (c << sh);
  store<u8>(at, <u8>v);
  if (sh + w > 8) store<u8>(at, <u8>(v >> 8), 1);
}

/** 16 three-bit codes (6 bytes at p) in u8 lanes: shifts by exact i32 multiplies, then narrowed. */
// @ts-ignore: decorator
@inline
function unpack3x16(p: usize): v128 {
  const a = i32x4.splat(<i32>load<u16>(p) | (<i32>load<u8>(p, 2) << 16)); // codes 0..7
  const b = i32x4.splat(<i32>load<u16>(p, 3) | (<i32>load<u8>(p, 5) << 16)); // codes 8..15
  // (x << (29 - 3k)) >>> 29 is bits 3k..3k+2 of x.
  const mLo = i32x4(1 << 29, 1 << 26, 1 << 23, 1 << 20);
  const mHi = i32x4(1 << 17, 1 << 14, 1 << 11, 1 << 8);
  const c0 = i32x4.shr_u(i32x4.mul(a, mLo), 29);
  const c1 = i32x4.shr_u(i32x4.mul(a, mHi), 29);
  const c2 = i32x4.shr_u(i32x4.mul(b, mLo), 29);
  const c3 = i32x4.shr_u(i32x4.mul(b, mHi), 29);
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3));
}

/** 16 codes of width w (2, 3 or 4) starting at byte p, one per u8 lane. */
// @ts-ignore: decorator
@inline
function unpackCodes(w: i32, p: usize): v128 {
  return w == 3 ? unpack3x16(p) : unpack16(w, p, 0);
}

/**
 * out[0..16) = n * c[codes] for 16 codes in u8 lanes: four byte-plane swizzles, then the bytes
 * interleaved back into f32 lanes.
 */
// @ts-ignore: decorator
@inline
function lookup16(book: usize, codes: v128, n: v128, out: usize): void {
  const b0 = i8x16.swizzle(v128.load(book), codes);
  const b1 = i8x16.swizzle(v128.load(book, 16), codes);
  const b2 = i8x16.swizzle(v128.load(book, 32), codes);
  const b3 = i8x16.swizzle(v128.load(book, 48), codes);
  const lo01 = i8x16.shuffle(b0, b1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const hi01 = i8x16.shuffle(b0, b1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const lo23 = i8x16.shuffle(b2, b3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const hi23 = i8x16.shuffle(b2, b3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  v128.store(out, f32x4.mul(n, i8x16.shuffle(lo01, lo23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23)));
  v128.store(out, f32x4.mul(n, i8x16.shuffle(lo01, lo23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31)), 16);
  v128.store(out, f32x4.mul(n, i8x16.shuffle(hi01, hi23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23)), 32);
  v128.store(out, f32x4.mul(n, i8x16.shuffle(hi01, hi23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31)), 48);
}

/** Decode elements [i0, i1) of one row (codes of width w from bit offset bit0, book at `book`) into out (f32). */
// @ts-ignore: decorator
@inline
function decodeRegion(w: i32, book: usize, row: usize, bit0: i32, i0: i32, i1: i32, nHat: f32, out: usize): void {
  let i = i0;
  let bit = bit0;
  if ((bit0 & 7) == 0) {
    const n = f32x4.splat(nHat);
    for (; i + 16 <= i1; i += 16, bit += 16 * w)
      lookup16(book, unpackCodes(w, row + <usize>(bit >> 3)), n, out + (<usize>i << 2));
  }
  for (; i < i1; i++, bit += w)
    store<f32>(out + (<usize>i << 2), nHat * load<f32>(book + 64 + (<usize>getBitsAt(row, bit, w) << 2)));
}

/** Decode one stored row (payload at row, f16 norm bits h) into out (d f32), as turboquant.ts decode. */
// @ts-ignore: decorator
@inline
export function turboDecodeRow(lo: i32, hi: i32, table: usize, d: i32, row: usize, h: u32, out: usize): void {
  const nHat = f16ToF32(h);
  if (lo == hi) decodeRegion(hi, table, row, 0, 0, d, nHat, out);
  else {
    const nHi = turboHiCount(d);
    decodeRegion(hi, table, row, 0, 0, nHi, nHat, out);
    decodeRegion(lo, table + LO_BOOK, row, nHi * hi, nHi, d, nHat, out);
  }
}

/** Decode nRows rows: payload (nRows, rowBytes), norms (nRows) f16, out (nRows, d) f32. */
export function decodeTurbo(lo: i32, hi: i32, table: usize, payload: usize, norms: usize, nRows: i32, d: i32, out: usize): void {
  const rb = turboRowBytes(lo, hi, d);
  for (let r = 0; r < nRows; r++)
    turboDecodeRow(lo, hi, table, d, payload + <usize>r * rb, <u32>load<u16>(norms + (<usize>r << 1)), out + ((<usize>r * <usize>d) << 2));
}

/**
 * Codes of elements [i0, i1) of one row: u = x / n^ (f32), or the raw x when n^ = 0 (finite
 * elements then code u = 0); NaN codes as 0; code = boundaries <= u, four elements at a time.
 */
// @ts-ignore: decorator
@inline
function encodeRegion(w: i32, book: usize, x: usize, row: usize, bit0: i32, i0: i32, i1: i32, nHat: f32): void {
  const nb = (1 << w) - 1;
  const bounds = book + 128;
  const vn = f32x4.splat(nHat);
  const zero = nHat > 0;
  let bit = bit0;
  for (let i = i0; i < i1; i += 4) {
    const m = min(4, i1 - i);
    let xv = f32x4.splat(0);
    xv = f32x4.replace_lane(xv, 0, load<f32>(x + (<usize>i << 2)));
    if (m > 1) xv = f32x4.replace_lane(xv, 1, load<f32>(x + (<usize>i << 2), 4));
    if (m > 2) xv = f32x4.replace_lane(xv, 2, load<f32>(x + (<usize>i << 2), 8));
    if (m > 3) xv = f32x4.replace_lane(xv, 3, load<f32>(x + (<usize>i << 2), 12));
    let u: v128;
    if (zero) u = f32x4.div(xv, vn);
    else {
      // n^ = 0: finite elements are u = 0, non-finite ones keep their value.
      const inf = f32x4.eq(f32x4.abs(xv), f32x4.splat(Infinity));
      const nan = f32x4.ne(xv, xv);
      u = v128.and(xv, v128.or(inf, nan));
    }
    u = v128.and(u, f32x4.eq(u, u)); // NaN -> +0
    let cnt = i32x4.splat(0);
    for (let k = 0; k < nb; k++) cnt = i32x4.sub(cnt, f32x4.le(f32x4.splat(load<f32>(bounds + (<usize>k << 2))), u));
    putBitsAt(row, bit, w, i32x4.extract_lane(cnt, 0));
    if (m > 1) putBitsAt(row, bit + w, w, i32x4.extract_lane(cnt, 1));
    if (m > 2) putBitsAt(row, bit + 2 * w, w, i32x4.extract_lane(cnt, 2));
    if (m > 3) putBitsAt(row, bit + 3 * w, w, i32x4.extract_lane(cnt, 3));
    bit += 4 * w;
  }
}

/**
 * Encode one row x (d f32) into the payload row at `row` and its f16 norm at `norm` (as
 * encodeTurbo); returns nonFinite | saturated << 16 (d < 65536).
 */
export function turboEncodeRow(lo: i32, hi: i32, table: usize, x: usize, d: i32, row: usize, norm: usize): i32 {
  let ss: f64 = 0;
  let finite = 0;
  for (let i = 0; i < d; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v - v == 0) {
      ss += <f64>v * <f64>v;
      finite++;
    }
  }
  const n = Math.sqrt(ss);
  let h = f32ToF16(<f32>n);
  let saturated = 0;
  if (n > 65504 || (h & 0x7c00) == 0x7c00) {
    h = 0x7bff; // 65504
    saturated = finite;
  }
  store<u16>(norm, <u16>h);
  const nHat = f16ToF32(h);
  if (lo == hi) encodeRegion(hi, table, x, row, 0, 0, d, nHat);
  else {
    const nHi = turboHiCount(d);
    encodeRegion(hi, table, x, row, 0, 0, nHi, nHat);
    encodeRegion(lo, table + LO_BOOK, x, row, nHi * hi, nHi, d, nHat);
  }
  return (d - finite) | (saturated << 16);
}

/**
 * Encode nRows rows (nRows, d) f32 at src into payload (rows of turboRowBytes, read-modify-write:
 * padding bits of a row's last byte are kept) and norms (f16 per row). stats: {nonFinite,
 * saturated} i32 pair, zeroed here. The norm is the f64 sum of squares of the finite elements
 * in element order, as the reference.
 */
export function encodeTurbo(lo: i32, hi: i32, table: usize, src: usize, nRows: i32, d: i32, payload: usize, norms: usize, stats: usize): void {
  const rb = turboRowBytes(lo, hi, d);
  let nonFinite = 0;
  let saturated = 0;
  for (let r = 0; r < nRows; r++) {
    const st = turboEncodeRow(lo, hi, table, src + ((<usize>r * <usize>d) << 2), d, payload + <usize>r * rb, norms + (<usize>r << 1));
    nonFinite += st & 0xffff;
    saturated += st >>> 16;
  }
  store<i32>(stats, nonFinite);
  store<i32>(stats, saturated, 4);
}
