// Scores of 1, 2 or 4 query rows in q8_0 form (cache option query: q8, src/quant/q8-query.ts)
// over int8 / int4 keys with integer dot products, as llama.cpp's ggml_vec_dot_q8_0_q8_0 and
// ggml_vec_dot_q4_0_q8_0 do (ggml-cpu/arch/x86/quants.c): per block b of 32 elements,
//   q . k = sum_b d_b * s_g(b) * (sum_{i in b} c_i u_i  -  off * sum_{i in b} c_i)  +  m_g(b) * sum_{i in b} qHat_i
// with c the query's int8 codes and d_b its block scale, u the stored unsigned key codes,
// s_g / m_g the key group's scale / zero-point (m = 0, off = 2^(bits-1) when symmetric; off = 0
// when asymmetric). The integer sums are exact (|sum| <= 32 * 127 * 255 < 2^24, so also exact
// in f32); the result differs from q̂ . k in f32 rounding only (the block and group products).
//
// Baseline SIMD: codes widened to i16, i32x4.dot_i16x8_s (8 products per instruction) against
// the codes of q pre-widened once per call. Relaxed SIMD (build/kvlab-relaxed.wasm,
// ASC_FEATURE_RELAXED_SIMD): i32x4.relaxed_dot_i8x16_i7x16_add_s (16 products and the add per
// instruction). Its second operand must be in [0, 127] for the result to be defined the same on
// every engine (x86's pmaddubsw reads it unsigned; also then no i16 pair sum saturates:
// 2 * 127 * 127 < 2^15): it is always a key code that is made so here, the 4-bit code itself
// (0..15) or a nibble of the 8-bit one (u = 16 hi + lo, two dots); q's codes (-127..127) are the
// first, signed operand. So both builds give bit-identical integer sums.
//
// Per slot the R rows' block sums are combined across lanes once (a 4x4 transposed sum), so a
// vector holds the R rows' scores and one multiply by (d_b of each row) * s_g serves all rows.
// int4 is read in storage order (low nibbles = even elements, high = odd): q's codes are
// permuted to match per block, once per call.
import { f16ToF32 } from "./half";

/** Whether keys of this kind (8 or 4 bits) and group size take the integer path (blocks of 32 inside groups). */
// @ts-ignore: decorator
@inline
export function q8Ok(kind: i32, G: i32, d: i32): bool {
  return (kind == 8 || kind == 4) && G >= 32 && (G & 31) == 0 && d % G == 0;
}

/** Scratch bytes of q8Scores: widened q codes (4 rows x 2d), three per-block vectors (48 per block). */
export function q8ScratchBytes(d: i32): i32 {
  return 8 * d + 48 * ((d + 31) >> 5) + 64;
}

/**
 * Prepare the R rows' q codes (qc: (R, d) i8, qs: (R, d / 32) f32) at work: codes in the dot's
 * operand form (i16 in the baseline build, i8 in the relaxed one; int4: each block's even
 * elements, then its odd ones), then per block b three vectors whose lane r is row r's: its
 * scale d_b (f32), off * sum c (i32), d_b * sum c (f32, the zero-point term's sum of qHat).
 */
// @ts-ignore: decorator
@inline
function prepQ(R: i32, kind: i32, off: i32, d: i32, qc: usize, qs: usize, work: usize): void {
  const nB = d >> 5;
  const vecs = work + (<usize>d << 3);
  memory.fill(vecs, 0, <usize>nB * 48);
  for (let r = 0; r < R; r++) {
    const src = qc + <usize>r * <usize>d;
    for (let b = 0; b < nB; b++) {
      let sum = 0;
      for (let k = 0; k < 32; k++) {
        // storage order of the keys: int4 bytes hold elements 2k (low) and 2k + 1 (high)
        const i = kind == 4 ? (k < 16 ? 2 * k : 2 * (k - 16) + 1) : k;
        const c = <i32>load<i8>(src + <usize>(b * 32 + i));
        sum += c;
        const o = <usize>(r * d + b * 32 + k);
        if (ASC_FEATURE_RELAXED_SIMD) store<i8>(work + o, <i8>c);
        else store<i16>(work + (o << 1), <i16>c);
      }
      const db = load<f32>(qs + (<usize>(r * nB + b) << 2));
      const v = vecs + <usize>b * 48 + (<usize>r << 2);
      store<f32>(v, db);
      store<i32>(v, off * sum, 16);
      store<f32>(v, db * <f32>sum, 32);
    }
  }
}

/** [sum(a), sum(b), sum(c), sum(e)] of four i32x4. */
// @ts-ignore: decorator
@inline
function tsum(a: v128, b: v128, c: v128, e: v128): v128 {
  const t0 = i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
  const t1 = i32x4.add(i32x4.shuffle(c, e, 0, 1, 4, 5), i32x4.shuffle(c, e, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(t0, t1, 0, 2, 4, 6), i32x4.shuffle(t0, t1, 1, 3, 5, 7));
}

/** sum_{k<32} c_k u_k of one row's codes at qw (operand form) against one key block's codes. */
// @ts-ignore: decorator
@inline
function blockDot(kind: i32, qw: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    // x0, x1: int4 low / high nibbles (16 elements each); int8: lo/hi nibbles of bytes 0-15 (x0, x1) and 16-31 (x2, x3)
    const z = i32x4.splat(0);
    if (kind == 4) {
      const a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qw), x0, z);
      return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qw, 16), x1, a);
    }
    let lo = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qw), x0, z);
    lo = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qw, 16), x2, lo);
    let hi = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qw), x1, z);
    hi = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qw, 16), x3, hi);
    return i32x4.add(lo, i32x4.shl(hi, 4));
  }
  let a = i32x4.dot_i16x8_s(v128.load(qw), x0);
  a = i32x4.add(a, i32x4.dot_i16x8_s(v128.load(qw, 16), x1));
  a = i32x4.add(a, i32x4.dot_i16x8_s(v128.load(qw, 32), x2));
  return i32x4.add(a, i32x4.dot_i16x8_s(v128.load(qw, 48), x3));
}

/**
 * scores (R, nSlots) = scale * qHat_r . k_j (-Inf where slotPos[j] > qPos_r); row maxima to
 * maxes (R floats). R, kind, sym constant after inlining.
 */
// @ts-ignore: decorator
@inline
function q8ScoresR(
  R: i32,
  kind: i32,
  sym: bool,
  G: i32,
  d: i32,
  qc: usize,
  qs: usize,
  qPos: usize,
  pay: usize,
  sc: usize,
  ze: usize,
  slotPos: usize,
  nSlots: i32,
  scale: f32,
  scores: usize,
  maxes: usize,
  work: usize,
): void {
  const off = sym ? (kind == 8 ? 128 : 8) : 0;
  prepQ(R, kind, off, d, qc, qs, work);
  const nB = d >> 5;
  const nG = d / G;
  const bPerG = G >> 5;
  const vecs = work + (<usize>d << 3);
  const qStride: usize = ASC_FEATURE_RELAXED_SIMD ? <usize>d : <usize>d << 1; // bytes per row of work
  const blockBytes: usize = ASC_FEATURE_RELAXED_SIMD ? 32 : 64;
  const rowBytes: usize = kind == 8 ? <usize>d : <usize>d >> 1;
  const m0f = i8x16.splat(0x0f);
  const vNegInf = f32x4.splat(-Infinity);
  // rows' positions in lanes (lanes R..3 are never read)
  const qp = R == 4 ? v128.load(qPos) : R == 2 ? v128.load64_zero(qPos) : i32x4.splat(load<i32>(qPos));
  let vmax = vNegInf;
  const vscale = f32x4.splat(scale);
  const zero = i32x4.splat(0);
  for (let j = 0; j < nSlots; j++) {
    const row = pay + <usize>j * rowBytes;
    const scj = sc + ((<usize>j * <usize>nG) << 1);
    const zej = ze + ((<usize>j * <usize>nG) << 1);
    let S = f32x4.splat(0);
    for (let g = 0; g < nG; g++) {
      const sg = f32x4.splat(f16ToF32(<u32>load<u16>(scj + (<usize>g << 1))));
      const mg = sym ? f32x4.splat(0) : f32x4.splat(f16ToF32(<u32>load<u16>(zej + (<usize>g << 1))));
      for (let bb = 0; bb < bPerG; bb++) {
        const b = g * bPerG + bb;
        // the block's key codes in operand form
        let x0: v128, x1: v128, x2: v128, x3: v128;
        if (kind == 4) {
          const w = v128.load(row + (<usize>b << 4));
          const lo = v128.and(w, m0f);
          const hi = i8x16.shr_u(w, 4);
          if (ASC_FEATURE_RELAXED_SIMD) {
            x0 = lo;
            x1 = hi;
            x2 = lo;
            x3 = hi;
          } else {
            x0 = i16x8.extend_low_i8x16_u(lo);
            x1 = i16x8.extend_high_i8x16_u(lo);
            x2 = i16x8.extend_low_i8x16_u(hi);
            x3 = i16x8.extend_high_i8x16_u(hi);
          }
        } else {
          const w0 = v128.load(row + (<usize>b << 5));
          const w1 = v128.load(row + (<usize>b << 5), 16);
          if (ASC_FEATURE_RELAXED_SIMD) {
            x0 = v128.and(w0, m0f);
            x1 = i8x16.shr_u(w0, 4);
            x2 = v128.and(w1, m0f);
            x3 = i8x16.shr_u(w1, 4);
          } else {
            x0 = i16x8.extend_low_i8x16_u(w0);
            x1 = i16x8.extend_high_i8x16_u(w0);
            x2 = i16x8.extend_low_i8x16_u(w1);
            x3 = i16x8.extend_high_i8x16_u(w1);
          }
        }
        const qw = work + <usize>b * blockBytes;
        const a0 = blockDot(kind, qw, x0, x1, x2, x3);
        const a1 = R > 1 ? blockDot(kind, qw + qStride, x0, x1, x2, x3) : zero;
        const a2 = R > 2 ? blockDot(kind, qw + 2 * qStride, x0, x1, x2, x3) : zero;
        const a3 = R > 3 ? blockDot(kind, qw + 3 * qStride, x0, x1, x2, x3) : zero;
        let t = tsum(a0, a1, a2, a3);
        const vb = vecs + <usize>b * 48;
        if (sym) t = i32x4.sub(t, v128.load(vb, 16));
        S = f32x4.add(S, f32x4.mul(f32x4.convert_i32x4_s(t), f32x4.mul(v128.load(vb), sg)));
        if (!sym) S = f32x4.add(S, f32x4.mul(mg, v128.load(vb, 32)));
      }
    }
    S = f32x4.mul(S, vscale);
    const vis = i32x4.le_s(i32x4.splat(load<i32>(slotPos + (<usize>j << 2))), qp);
    S = v128.bitselect(S, vNegInf, vis);
    vmax = f32x4.pmax(vmax, S);
    const sp = scores + (<usize>j << 2);
    const rs = <usize>nSlots << 2;
    v128.store32_lane(sp, S, 0);
    if (R > 1) v128.store32_lane(sp + rs, S, 1);
    if (R > 2) v128.store32_lane(sp + 2 * rs, S, 2);
    if (R > 3) v128.store32_lane(sp + 3 * rs, S, 3);
  }
  store<f32>(maxes, f32x4.extract_lane(vmax, 0));
  if (R > 1) store<f32>(maxes, f32x4.extract_lane(vmax, 1), 4);
  if (R > 2) store<f32>(maxes, f32x4.extract_lane(vmax, 2), 8);
  if (R > 3) store<f32>(maxes, f32x4.extract_lane(vmax, 3), 12);
}

// One function per (rows, kind, symmetry): each a small function for the optimising compiler.
function q8S1_8s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(1, 8, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S1_8a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(1, 8, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S1_4s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(1, 4, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S1_4a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(1, 4, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_8s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(2, 8, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_8a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(2, 8, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_4s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(2, 4, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_4a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(2, 4, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_8s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(4, 8, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_8a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(4, 8, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_4s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(4, 4, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_4a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  q8ScoresR(4, 4, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}

/**
 * Scores of a block of `rows` (1, 2 or 4) q8 query rows (codes qc (rows, d), scales qs
 * (rows, d / 32)) over int8 / int4 keys (kind 8 or 4; q8Ok): scores (rows, nSlots), row maxima
 * to maxes. work: q8ScratchBytes(d), 16-aligned.
 */
export function q8Scores(
  rows: i32,
  kind: i32,
  sym: bool,
  G: i32,
  d: i32,
  qc: usize,
  qs: usize,
  qPos: usize,
  pay: usize,
  sc: usize,
  ze: usize,
  slotPos: usize,
  nSlots: i32,
  scale: f32,
  scores: usize,
  maxes: usize,
  work: usize,
): void {
  if (rows == 1) {
    if (kind == 8) {
      if (sym) q8S1_8s(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
      else q8S1_8a(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    } else if (sym) q8S1_4s(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8S1_4a(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else if (rows == 2) {
    if (kind == 8) {
      if (sym) q8S2_8s(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
      else q8S2_8a(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    } else if (sym) q8S2_4s(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8S2_4a(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else if (kind == 8) {
    if (sym) q8S4_8s(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8S4_8a(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else if (sym) q8S4_4s(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  else q8S4_4a(G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}

/**
 * Lane 0 of the i8 x i7 dot product of splat(a) and splat(b) (b in 0..127): 4 * a * b wherever
 * the engine implements i32x4.relaxed_dot_i8x16_i7x16_add_s as the standard says (first operand
 * signed). The loader runs it on the relaxed build before using it: V8 11.3 (Node 20 with
 * --experimental-wasm-relaxed-simd) reads the first operand unsigned and gives 4 * (a & 255) * b.
 */
export function relaxedDotCheck(a: i32, b: i32): i32 {
  if (ASC_FEATURE_RELAXED_SIMD)
    return i32x4.extract_lane(i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.splat(<i8>a), i8x16.splat(<i8>b), i32x4.splat(0)), 0);
  return 4 * <i32><i8>a * <i32><i8>b;
}
