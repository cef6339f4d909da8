// The weighted sum of cache option query: q8w (src/quant/q8-weights.ts is the definition) over
// int8 / int4 values: per block of 32 slots and value group g, each row's weights times the
// slots' group scales a_j = e_j s_jg are rounded to int8 codes c_j = nearest(127 a_j / max a)
// (ties to even, f32x4.nearest), and
//   acc_i += (max a / 127) * inv * (sum_j c_j u_ji - off * sum_j c_j)   [+ inv * sum_j e_j m_jg]
// with e the unnormalised softmax weights exp(s - max) and inv their row's 1 / sum (codes do not
// change with a common factor, so rounding e s equals rounding p s up to f32 rounding). As
// llama.cpp's flash attention turns the softmax row into V's dot type (ggml-cpu ops.cpp).
//
// Baseline SIMD: the sum over slots is i32x4.dot_i16x8_s over pairs of slots: the two slots'
// codes of 8 elements interleaved as i16 (u_a0 u_b0 u_a1 u_b1 ...) against (c_a, c_b) splat, so
// each lane gets c_a u_a,i + c_b u_b,i. Relaxed SIMD (build/kvlab-relaxed.wasm):
// i32x4.relaxed_dot_i8x16_i7x16_add_s over quads of slots, the four slots' codes of each element
// side by side as i8 against (c_0, c_1, c_2, c_3) splat; the weight codes (0..127) are the i7
// operand, so the result is defined alike on every engine, and an int8 code enters as u - 128
// (its bits xor 0x80; + 128 sum c puts the offset back), an int4 code as itself. Integer sums
// are exact (|sum| <= 32 * 127 * 255 < 2^24, also exact when converted to f32; no i16 pair of
// the relaxed dot saturates: 2 * 127 * 128 < 2^15), so both builds give the same sums.
//
// Against the exact f32 weighted sum (mix4Fused): per slot pair and 8 elements, 2 loads, a
// shuffle and 2 widenings shared by the rows, then per row a splat load, 2 dots and 2 adds for
// 16 products, where the f32 path spends a widening to f32 and a multiply-add per 4 products per
// row. The rounding of the weights costs O(slots x groups x rows), not O(slots x d x rows).
import { f16ToF32 } from "./half";
import { madd } from "./simd";

/** Scratch bytes of mixQ8w: one group's scales / zero-points (32 f32 each), codes (4 rows x 32 i16 or i8), per-row terms, 4 constants. */
export function q8wScratchBytes(): i32 {
  return 128 + 128 + 256 + 64 + 64;
}

/** 4 weights of row er from slot t on (n slots in the block): zeros past n (the scores buffer holds other rows there). */
// @ts-ignore: decorator
@inline
function load4(er: usize, t: i32, n: i32): v128 {
  if (t + 4 <= n) return v128.load(er + (<usize>t << 2));
  let v = f32x4.splat(0);
  if (t < n) v = f32x4.replace_lane(v, 0, load<f32>(er + (<usize>t << 2)));
  if (t + 1 < n) v = f32x4.replace_lane(v, 1, load<f32>(er + (<usize>t << 2), 4));
  if (t + 2 < n) v = f32x4.replace_lane(v, 2, load<f32>(er + (<usize>t << 2), 8));
  return v;
}

/**
 * nearest(x) as i32, ties to even, for 0 <= x < 2^22: x + 2^23 rounds x to an integer in the
 * f32 add itself (round to nearest even), which then sits in the low mantissa bits. One add and
 * one integer subtract, where nearest + trunc_sat are several instructions on x64. K: 2^23 in
 * every f32 lane, whose bits are 0x4b000000, so the same register serves both (passed in: V8
 * rebuilds a v128.const at each use, 3 instructions).
 */
// @ts-ignore: decorator
@inline
function rne(x: v128, K: v128): v128 {
  return i32x4.sub(f32x4.add(x, K), K);
}

/**
 * f16 bits in the u16 lanes of h (8 of them) -> f32 at dst (8 floats): sign to bit 31, exponent
 * and mantissa to bits 27..13, times 2^112 (exact, subnormal f16 included). Finite f16 only;
 * returns the lanes' largest |h| so that the caller can see an Inf / NaN (>= 0x7c00). two112:
 * 2^112 in f32 lanes, m7fff: 0x7fff in i16 lanes (registers, as rne's K).
 */
// @ts-ignore: decorator
@inline
function f16x8(h: v128, dst: usize, top: v128, two112: v128, m7fff: v128): v128 {
  const mag = v128.and(h, m7fff);
  const sgn = v128.andnot(h, m7fff);
  const lo = v128.or(i32x4.shl(i32x4.extend_low_i16x8_u(sgn), 16), i32x4.shl(i32x4.extend_low_i16x8_u(mag), 13));
  const hi = v128.or(i32x4.shl(i32x4.extend_high_i16x8_u(sgn), 16), i32x4.shl(i32x4.extend_high_i16x8_u(mag), 13));
  v128.store(dst, f32x4.mul(lo, two112));
  v128.store(dst, f32x4.mul(hi, two112), 16);
  return i16x8.max_u(top, mag);
}

/** 8 f16 at p, p + stride, ... (a group's scales over 8 slots) in u16 lanes. */
// @ts-ignore: decorator
@inline
function gather8(p: usize, stride: usize): v128 {
  let v = i16x8.splat(0);
  v = i16x8.replace_lane(v, 0, load<u16>(p));
  v = i16x8.replace_lane(v, 1, load<u16>(p + stride));
  v = i16x8.replace_lane(v, 2, load<u16>(p + 2 * stride));
  v = i16x8.replace_lane(v, 3, load<u16>(p + 3 * stride));
  v = i16x8.replace_lane(v, 4, load<u16>(p + 4 * stride));
  v = i16x8.replace_lane(v, 5, load<u16>(p + 5 * stride));
  v = i16x8.replace_lane(v, 6, load<u16>(p + 6 * stride));
  return i16x8.replace_lane(v, 7, load<u16>(p + 7 * stride));
}

/**
 * A group's f16 fields (scales or zero-points: 2 bytes each, stride 2 nG per slot) of the n
 * slots of a block from p to f32 at dst (32 floats, 0 past n). Whole blocks convert 8 at a
 * time; a field that is Inf / NaN, or a last partial block, goes through f16ToF32.
 */
// @ts-ignore: decorator
@inline
function fields(p: usize, stride: usize, n: i32, dst: usize, kAt: usize): void {
  if (n == 32) {
    const two112 = v128.load(kAt, 32), m7fff = v128.load(kAt, 48);
    let top = i16x8.splat(0);
    top = f16x8(gather8(p, stride), dst, top, two112, m7fff);
    top = f16x8(gather8(p + 8 * stride, stride), dst + 32, top, two112, m7fff);
    top = f16x8(gather8(p + 16 * stride, stride), dst + 64, top, two112, m7fff);
    top = f16x8(gather8(p + 24 * stride, stride), dst + 96, top, two112, m7fff);
    if (!v128.any_true(i16x8.ge_u(top, i16x8.splat(0x7c00)))) return;
  }
  for (let t = 0; t < 32; t++)
    store<f32>(dst + (<usize>t << 2), t < n ? f16ToF32(<u32>load<u16>(p + <usize>t * stride)) : 0);
}

/** max of the four lanes (all >= 0 or NaN-free here). */
// @ts-ignore: decorator
@inline
function hmax(v: v128): f32 {
  const s = f32x4.pmax(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(s, i32x4.shuffle(s, s, 1, 0, 3, 2)), 0);
}

/** Sum of four i32 lanes. */
// @ts-ignore: decorator
@inline
function isum(v: v128): i32 {
  const s = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(i32x4.add(s, i32x4.shuffle(s, s, 1, 0, 3, 2)), 0);
}

/**
 * Row r's codes of one block and group at cw (32 i16; slot pairs read as one i32), and its
 * per-block terms: D * inv (f32) at tm, off * sum c (i32) at tm + 4, the zero-point term
 * inv * sum e m (f32) at tm + 8.
 */
// @ts-ignore: decorator
@inline
function codesRow(bits8: bool, sym: bool, off: i32, er: usize, n: i32, sF: usize, mF: usize, inv: f32, cw: usize, tm: usize, K: v128): void {
  const a0 = f32x4.mul(load4(er, 0, n), v128.load(sF));
  const a1 = f32x4.mul(load4(er, 4, n), v128.load(sF, 16));
  const a2 = f32x4.mul(load4(er, 8, n), v128.load(sF, 32));
  const a3 = f32x4.mul(load4(er, 12, n), v128.load(sF, 48));
  const a4 = f32x4.mul(load4(er, 16, n), v128.load(sF, 64));
  const a5 = f32x4.mul(load4(er, 20, n), v128.load(sF, 80));
  const a6 = f32x4.mul(load4(er, 24, n), v128.load(sF, 96));
  const a7 = f32x4.mul(load4(er, 28, n), v128.load(sF, 112));
  const m = hmax(f32x4.pmax(f32x4.pmax(f32x4.pmax(a0, a1), f32x4.pmax(a2, a3)), f32x4.pmax(f32x4.pmax(a4, a5), f32x4.pmax(a6, a7))));
  const k = f32x4.splat(m > 0 ? <f32>127 / m : 0);
  const c0 = rne(f32x4.mul(a0, k), K);
  const c1 = rne(f32x4.mul(a1, k), K);
  const c2 = rne(f32x4.mul(a2, k), K);
  const c3 = rne(f32x4.mul(a3, k), K);
  const c4 = rne(f32x4.mul(a4, k), K);
  const c5 = rne(f32x4.mul(a5, k), K);
  const c6 = rne(f32x4.mul(a6, k), K);
  const c7 = rne(f32x4.mul(a7, k), K);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // i8 codes, 4 slots to an i32 (the relaxed dot's quads)
    v128.store(cw, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(c0, c1), i16x8.narrow_i32x4_s(c2, c3)));
    v128.store(cw, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(c4, c5), i16x8.narrow_i32x4_s(c6, c7)), 16);
  } else {
    v128.store(cw, i16x8.narrow_i32x4_s(c0, c1));
    v128.store(cw, i16x8.narrow_i32x4_s(c2, c3), 16);
    v128.store(cw, i16x8.narrow_i32x4_s(c4, c5), 32);
    v128.store(cw, i16x8.narrow_i32x4_s(c6, c7), 48);
  }
  store<f32>(tm, (m / <f32>127) * inv);
  // (off - bias) * sum c, subtracted from the integer sums: bias = 128 where the relaxed build
  // reads int8 codes as u - 128, else 0
  const bias = ASC_FEATURE_RELAXED_SIMD && bits8 ? 128 : 0;
  const cs = i32x4.add(i32x4.add(i32x4.add(c0, c1), i32x4.add(c2, c3)), i32x4.add(i32x4.add(c4, c5), i32x4.add(c6, c7)));
  store<i32>(tm, off == bias ? 0 : (off - bias) * isum(cs), 4);
  if (!sym) {
    let z = f32x4.mul(load4(er, 0, n), v128.load(mF));
    z = f32x4.add(z, f32x4.mul(load4(er, 4, n), v128.load(mF, 16)));
    z = f32x4.add(z, f32x4.mul(load4(er, 8, n), v128.load(mF, 32)));
    z = f32x4.add(z, f32x4.mul(load4(er, 12, n), v128.load(mF, 48)));
    z = f32x4.add(z, f32x4.mul(load4(er, 16, n), v128.load(mF, 64)));
    z = f32x4.add(z, f32x4.mul(load4(er, 20, n), v128.load(mF, 80)));
    z = f32x4.add(z, f32x4.mul(load4(er, 24, n), v128.load(mF, 96)));
    z = f32x4.add(z, f32x4.mul(load4(er, 28, n), v128.load(mF, 112)));
    const zs = f32x4.add(z, i32x4.shuffle(z, z, 2, 3, 0, 1));
    store<f32>(tm, f32x4.extract_lane(f32x4.add(zs, i32x4.shuffle(zs, zs, 1, 0, 3, 2)), 0) * inv, 8);
  }
}

/**
 * acc (8 floats at a) += D * t (+ zero term), t the element sums, which started at -off sum c
 * (the accumulators' initial value, dotInit); int4 lanes come as even / odd elements. acc + D t
 * is one multiply-add (fused in the relaxed build; in the baseline build the same multiply and
 * add as before, in the same order).
 */
// @ts-ignore: decorator
@inline
function flush(kind: i32, sym: bool, lo: v128, hi: v128, tm: usize, a: usize): void {
  const D = v128.load32_splat(tm);
  let cl = f32x4.convert_i32x4_s(lo);
  let ch = f32x4.convert_i32x4_s(hi);
  if (kind == 4) {
    // lanes of lo: elements 0, 2, 4, 6; of hi: 1, 3, 5, 7
    const x = i32x4.shuffle(cl, ch, 0, 4, 1, 5);
    ch = i32x4.shuffle(cl, ch, 2, 6, 3, 7);
    cl = x;
  }
  if (sym) {
    v128.store(a, madd(cl, D, v128.load(a)));
    v128.store(a, madd(ch, D, v128.load(a, 16)), 16);
  } else {
    const z = v128.load32_splat(tm, 8);
    v128.store(a, f32x4.add(v128.load(a), madd(cl, D, z)));
    v128.store(a, f32x4.add(v128.load(a, 16), madd(ch, D, z)), 16);
  }
}

/** -off sum c of row r's codes (tm: its per-block terms) in every lane: where its element sums start. */
// @ts-ignore: decorator
@inline
function dotInit(tm: usize): v128 {
  return i32x4.neg(v128.load32_splat(tm, 4));
}

/**
 * acc (R, d) = the q8w weighted sum of R rows' weights e (R, nSlots; row r's 1 / sum at invs + 4r)
 * over int8 / int4 values (kind 8 or 4, groups of whole 8s); probabilities e * inv to probs
 * (R, nSlots) when nonzero. R, kind, sym constant after inlining.
 */
// @ts-ignore: decorator
@inline
function mixQ8wR(
  R: i32,
  kind: i32,
  sym: bool,
  G: i32,
  d: i32,
  pay: usize,
  sc: usize,
  ze: usize,
  nSlots: i32,
  e: usize,
  invs: usize,
  probs: usize,
  acc: usize,
  work: usize,
): void {
  const off = sym ? (kind == 8 ? 128 : 8) : 0;
  const nG = d / G;
  const rowBytes: usize = kind == 8 ? <usize>d : <usize>d >> 1;
  const eStride = <usize>nSlots << 2;
  const sF = work; // (32) f32 scales of one group
  const mF = work + 128; // (32) f32 zero-points
  const cw = work + 256; // (R, 32) i16 codes (i8 in the relaxed build)
  const tm = work + 512; // (R) x 16 bytes: D * inv, off * sum c, zero term
  const m0f = i8x16.splat(0x0f);
  // constants read from scratch so that V8 keeps them in registers: the unpacking's byte
  // constant (0x80 / 0x0f), rne's 2^23, f16x8's 2^112 and 0x7fff
  const kcAt = work + 576;
  v128.store(kcAt, i8x16.splat(kind == 8 ? <i8>0x80 : 0x0f));
  v128.store(kcAt, i32x4.splat(0x4b000000), 16);
  v128.store(kcAt, i32x4.splat(0x77800000), 32);
  v128.store(kcAt, i16x8.splat(0x7fff), 48);
  const rb2 = rowBytes << 1, rb3 = rowBytes * 3;
  memory.fill(acc, 0, (<usize>R * <usize>d) << 2);
  if (probs) {
    for (let r = 0; r < R; r++) {
      const inv = load<f32>(invs + (<usize>r << 2));
      for (let j = 0; j < nSlots; j++) {
        const o = <usize>r * eStride + (<usize>j << 2);
        store<f32>(probs + o, load<f32>(e + o) * inv);
      }
    }
  }
  for (let j0 = 0; j0 < nSlots; j0 += 32) {
    const n = min(32, nSlots - j0);
    const nPairs = (n + 1) >> 1;
    const blk = pay + <usize>j0 * rowBytes;
    for (let g = 0; g < nG; g++) {
      // the group's scales (and zero-points) of the block's slots; 0 past the last slot
      const gi = (<usize>j0 * <usize>nG + <usize>g) << 1;
      fields(sc + gi, <usize>nG << 1, n, sF, kcAt);
      if (!sym) fields(ze + gi, <usize>nG << 1, n, mF, kcAt);
      const K = v128.load(kcAt, 16);
      // (a whole block with n a constant 32, so that load4's tail tests fold away)
      if (n == 32)
        for (let r = 0; r < R; r++)
          codesRow(kind == 8, sym, off, e + <usize>r * eStride + (<usize>j0 << 2), 32, sF, mF, load<f32>(invs + (<usize>r << 2)), cw + (<usize>r << 6), tm + (<usize>r << 4), K);
      else
        for (let r = 0; r < R; r++)
          codesRow(kind == 8, sym, off, e + <usize>r * eStride + (<usize>j0 << 2), n, sF, mF, load<f32>(invs + (<usize>r << 2)), cw + (<usize>r << 6), tm + (<usize>r << 4), K);
      // the integer dots over the block's slot pairs, 8 elements at a time
      for (let i = g * G; i < (g + 1) * G; i += 8) {
        // (relaxed int8 symmetric: off - bias = 0, the sums start at 0)
        const zero0 = ASC_FEATURE_RELAXED_SIMD && kind == 8 && sym;
        const i0 = zero0 ? i32x4.splat(0) : dotInit(tm);
        const i1 = R > 1 && !zero0 ? dotInit(tm + 16) : i0;
        const i2 = R > 2 && !zero0 ? dotInit(tm + 32) : i0;
        const i3 = R > 2 && !zero0 ? dotInit(tm + 48) : i0;
        let l0 = i0, h0 = i0, l1 = i1, h1 = i1, l2 = i2, h2 = i2, l3 = i3, h3 = i3;
        const colOff: usize = kind == 8 ? <usize>i : <usize>i >> 1;
        // kc: the byte constant of the codes' unpacking (0x80 / 0x0f), read from scratch so that
        // V8 keeps it in a register: a v128.const is rebuilt at every use (3 instructions)
        const kc = v128.load(kcAt);
        if (ASC_FEATURE_RELAXED_SIMD && n == 32) {
          // a whole block: 8 quads, slot pointers stepping 4 rows (no tail selects)
          let p0 = blk + colOff;
          const end = p0 + (rowBytes << 5);
          let wp = cw;
          do {
            let lo: v128, hi: v128;
            if (kind == 8) {
              const t01 = i8x16.shuffle(v128.load64_zero(p0), v128.load64_zero(p0 + rowBytes), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const t23 = i8x16.shuffle(v128.load64_zero(p0 + rb2), v128.load64_zero(p0 + rb3), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              lo = v128.xor(i8x16.shuffle(t01, t23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), kc);
              hi = v128.xor(i8x16.shuffle(t01, t23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), kc);
            } else {
              const t01 = i8x16.shuffle(v128.load32_zero(p0), v128.load32_zero(p0 + rowBytes), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const t23 = i8x16.shuffle(v128.load32_zero(p0 + rb2), v128.load32_zero(p0 + rb3), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const b = i8x16.shuffle(t01, t23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
              lo = v128.and(b, kc);
              // (a 16-bit shift, then the mask: i8x16.shr_u is the same two on x64 with a rebuilt mask)
              hi = v128.and(i16x8.shr_u(b, 4), kc);
            }
            let w = v128.load32_splat(wp);
            l0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l0);
            h0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h0);
            if (R > 1) {
              w = v128.load32_splat(wp, 64);
              l1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l1);
              h1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h1);
            }
            if (R > 2) {
              w = v128.load32_splat(wp, 128);
              l2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l2);
              h2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h2);
              w = v128.load32_splat(wp, 192);
              l3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l3);
              h3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h3);
            }
            p0 += rowBytes << 2;
            wp += 4;
          } while (p0 < end);
        } else if (!ASC_FEATURE_RELAXED_SIMD && n == 32) {
          // a whole block: 16 pairs, one slot pointer stepping 2 rows (no tail select)
          let pA = blk + colOff;
          const end = pA + (rowBytes << 5);
          let wp = cw;
          do {
            let lo: v128, hi: v128;
            if (kind == 8) {
              const il = i8x16.shuffle(v128.load64_zero(pA), v128.load64_zero(pA + rowBytes), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              lo = i16x8.extend_low_i8x16_u(il);
              hi = i16x8.extend_high_i8x16_u(il);
            } else {
              const il = i8x16.shuffle(v128.load32_zero(pA), v128.load32_zero(pA + rowBytes), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              lo = i16x8.extend_low_i8x16_u(v128.and(il, kc));
              hi = i16x8.extend_low_i8x16_u(v128.and(i16x8.shr_u(il, 4), kc));
            }
            let w = v128.load32_splat(wp);
            l0 = i32x4.add(l0, i32x4.dot_i16x8_s(lo, w));
            h0 = i32x4.add(h0, i32x4.dot_i16x8_s(hi, w));
            if (R > 1) {
              w = v128.load32_splat(wp, 64);
              l1 = i32x4.add(l1, i32x4.dot_i16x8_s(lo, w));
              h1 = i32x4.add(h1, i32x4.dot_i16x8_s(hi, w));
            }
            if (R > 2) {
              w = v128.load32_splat(wp, 128);
              l2 = i32x4.add(l2, i32x4.dot_i16x8_s(lo, w));
              h2 = i32x4.add(h2, i32x4.dot_i16x8_s(hi, w));
              w = v128.load32_splat(wp, 192);
              l3 = i32x4.add(l3, i32x4.dot_i16x8_s(lo, w));
              h3 = i32x4.add(h3, i32x4.dot_i16x8_s(hi, w));
            }
            pA += rowBytes << 1;
            wp += 4;
          } while (pA < end);
        } else if (ASC_FEATURE_RELAXED_SIMD) {
          // a last partial block
          const nQuads = (n + 3) >> 2;
          for (let p = 0; p < nQuads; p++) {
            // slots past the block's last (code 0) read the first slot's row
            const r0 = blk + <usize>(4 * p) * rowBytes + colOff;
            const r1 = 4 * p + 1 < n ? r0 + rowBytes : r0;
            const r2 = 4 * p + 2 < n ? r0 + 2 * rowBytes : r0;
            const r3 = 4 * p + 3 < n ? r0 + 3 * rowBytes : r0;
            let lo: v128, hi: v128;
            if (kind == 8) {
              // bytes of 8 elements of 4 slots -> (element, slot) order, as u - 128
              const t01 = i8x16.shuffle(v128.load64_zero(r0), v128.load64_zero(r1), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const t23 = i8x16.shuffle(v128.load64_zero(r2), v128.load64_zero(r3), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const c80 = i8x16.splat(<i8>0x80);
              lo = v128.xor(i8x16.shuffle(t01, t23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), c80);
              hi = v128.xor(i8x16.shuffle(t01, t23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), c80);
            } else {
              // 4 bytes (8 elements) of 4 slots -> (byte, slot) order; low nibbles = even elements.
              // Only the low 8 bytes of t01 / t23 are read: their shuffles are written as the
              // whole unpack-low pattern (one punpcklbw on x64; the upper half is zeros), since
              // any other upper half makes V8 emit a general two-source byte shuffle.
              const t01 = i8x16.shuffle(v128.load32_zero(r0), v128.load32_zero(r1), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const t23 = i8x16.shuffle(v128.load32_zero(r2), v128.load32_zero(r3), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
              const b = i8x16.shuffle(t01, t23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
              lo = v128.and(b, m0f);
              hi = i8x16.shr_u(b, 4);
            }
            const wp = cw + (<usize>p << 2);
            let w = v128.load32_splat(wp);
            l0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l0);
            h0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h0);
            if (R > 1) {
              w = v128.load32_splat(wp, 64);
              l1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l1);
              h1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h1);
            }
            if (R > 2) {
              w = v128.load32_splat(wp, 128);
              l2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l2);
              h2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h2);
              w = v128.load32_splat(wp, 192);
              l3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(lo, w, l3);
              h3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(hi, w, h3);
            }
          }
        } else {
        // a last partial block
        for (let p = 0; p < nPairs; p++) {
          const rowA = blk + <usize>(2 * p) * rowBytes + colOff;
          // an odd last slot pairs with itself; its partner's code is 0
          const rowB = 2 * p + 1 < n ? rowA + rowBytes : rowA;
          let lo: v128, hi: v128;
          if (kind == 8) {
            const il = i8x16.shuffle(v128.load64_zero(rowA), v128.load64_zero(rowB), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            lo = i16x8.extend_low_i8x16_u(il);
            hi = i16x8.extend_high_i8x16_u(il);
          } else {
            // (the low 8 bytes are read: the unpack-low pattern, as in the relaxed path)
            const il = i8x16.shuffle(v128.load32_zero(rowA), v128.load32_zero(rowB), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            lo = i16x8.extend_low_i8x16_u(v128.and(il, m0f)); // even elements
            hi = i16x8.extend_low_i8x16_u(i8x16.shr_u(il, 4)); // odd elements
          }
          const wp = cw + (<usize>p << 2);
          let w = v128.load32_splat(wp);
          l0 = i32x4.add(l0, i32x4.dot_i16x8_s(lo, w));
          h0 = i32x4.add(h0, i32x4.dot_i16x8_s(hi, w));
          if (R > 1) {
            w = v128.load32_splat(wp, 64);
            l1 = i32x4.add(l1, i32x4.dot_i16x8_s(lo, w));
            h1 = i32x4.add(h1, i32x4.dot_i16x8_s(hi, w));
          }
          if (R > 2) {
            w = v128.load32_splat(wp, 128);
            l2 = i32x4.add(l2, i32x4.dot_i16x8_s(lo, w));
            h2 = i32x4.add(h2, i32x4.dot_i16x8_s(hi, w));
            w = v128.load32_splat(wp, 192);
            l3 = i32x4.add(l3, i32x4.dot_i16x8_s(lo, w));
            h3 = i32x4.add(h3, i32x4.dot_i16x8_s(hi, w));
          }
        }
        }
        const a = acc + (<usize>i << 2);
        const rb = <usize>d << 2;
        flush(kind, sym, l0, h0, tm, a);
        if (R > 1) flush(kind, sym, l1, h1, tm + 16, a + rb);
        if (R > 2) {
          flush(kind, sym, l2, h2, tm + 32, a + 2 * rb);
          flush(kind, sym, l3, h3, tm + 48, a + 3 * rb);
        }
      }
    }
  }
}

// One function per (rows, kind, symmetry), each a small function for the optimising compiler.
function mixQ8w1_8s(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(1, 8, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w1_8a(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(1, 8, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w1_4s(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(1, 4, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w1_4a(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(1, 4, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w2_8s(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(2, 8, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w2_8a(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(2, 8, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w2_4s(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(2, 4, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w2_4a(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(2, 4, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w4_8s(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(4, 8, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w4_8a(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(4, 8, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w4_4s(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(4, 4, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mixQ8w4_4a(G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): void {
  mixQ8wR(4, 4, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}

/**
 * The q8w weighted sum of a block of `rows` (1, 2 or 4) over int8 / int4 values (kind 8 or 4;
 * groups of whole 16s, d % G == 0: attend-fused.ts fusedOk) into acc (rows, d), which it zeroes;
 * probabilities to probs (rows, nSlots) when nonzero. work: q8wScratchBytes(), 16-aligned.
 */
export function mixQ8w(
  rows: i32,
  kind: i32,
  sym: bool,
  G: i32,
  d: i32,
  pay: usize,
  sc: usize,
  ze: usize,
  nSlots: i32,
  e: usize,
  invs: usize,
  probs: usize,
  acc: usize,
  work: usize,
): void {
  if (rows == 1) {
    if (kind == 8) {
      if (sym) mixQ8w1_8s(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
      else mixQ8w1_8a(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
    } else if (sym) mixQ8w1_4s(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
    else mixQ8w1_4a(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
  } else if (rows == 2) {
    if (kind == 8) {
      if (sym) mixQ8w2_8s(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
      else mixQ8w2_8a(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
    } else if (sym) mixQ8w2_4s(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
    else mixQ8w2_4a(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
  } else if (kind == 8) {
    if (sym) mixQ8w4_8s(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
    else mixQ8w4_8a(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
  } else if (sym) mixQ8w4_4s(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
  else mixQ8w4_4a(G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
