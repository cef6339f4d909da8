// Fused attention over ggml block-quantized keys and/or values (codec-ggml.ts: q4_0, q4_1,
// q5_0, q5_1, q8_0, iq4_nl), the way llama.cpp's CPU flash attention reads its quantized KV
// cache: no f32 copy of the cache, each 32-element block unpacked to levels in registers and
// the block's f16 d (and m) applied once per block:
//   q . k = sum_b d_b (q_b . L_b)  +  m_b sum_{i in b} q_i           (L: the block's levels)
//   acc  += sum_b (p d_b) L_b  +  p m_b
// Query rows go up to four at a time (a GQA group shares each unpacked key/value block).
//
// With the cache option query: q8 (src/quant/q8-query.ts) the scores use the rows' q8_0 codes c
// and block scales s with integer dot products, as ggml_vec_dot_q4_0_q8_0 / q8_0_q8_0 do
// (ggml-cpu quants.c): q . k = sum_b s_b d_b (c_b . L_b) + m_b s_b sum c_b; c_b . L_b is exact
// (|c| <= 127, |L| <= 128: |sum| < 2^24), so the result is qHat . k up to f32 rounding of the
// block products. Baseline build: i32x4.dot_i16x8_s on sign-extended levels (8 products per
// instruction). Relaxed-SIMD build (build/kvlab-relaxed.wasm), for q4_0/q4_1/q5_0/q5_1:
// i32x4.relaxed_dot_i8x16_i7x16_add_s (16 products and the add; one vpdpbusd with AVX-VNNI).
// Its second operand must lie in [0, 127] for the result to be the same on every engine: the
// standard leaves lanes with the top bit set implementation-defined, x86's pmaddubsw / vpdpbusd
// read that operand unsigned, ARM's sdot signed (so [-64, 63] is not safe either: q4_0's signed
// levels -8..7 give wrong scores on x86, test/kernels/wasm-ggml.test.ts). The query codes span
// -127..127, so they are the first, signed operand, and the second is the key's stored code
// u = L + o (codec-ggml.ts codesLo/Hi, ggmlCodeOffset: 0..15 for q4, 0..31 for q5; o = 8 for
// q4_0, 16 for q5_0, 0 for q4_1/q5_1). Then
//   c . L = c . u - o sum(c)      (o sum(c) per row and block computed once per call)
// in exact i32 arithmetic; pmaddubsw's pairwise i16 sums stay below 2^15 (2 * 127 * 31).
// q8_0 (levels -128..127) and iq4_nl (-127..113) keep the i16 dots in the relaxed build too:
// their codes need two 4-bit halves (two dots per 16 elements), which measured no faster
// (q8_0 1.03-1.08x the i16 dots, iq4_nl 1.00-1.04x; results/bench/attention-ggml/README.md).
// Both builds get the same integer c . L, and as the block products are combined with a
// multiply then an add (not madd's fused one in the relaxed build), the scores are
// bit-identical in the two builds (test/kernels/wasm-ggml.test.ts).
//
// The other side of a mixed pair (e.g. f16 keys with q4_0 values, as llama.cpp allows) is a
// float or int codec (kind 0..4): its rows are decoded into an f32 row buffer per slot.
// Head sizes are multiples of 32 here (the ggml codecs refuse others), so no tails.
import { decodeFloatLoop } from "./codec-float";
import { decodeIntLoop } from "./codec-int";
import {
  codesHi,
  codesLo,
  GGML_Q8_0,
  ggmlCodeOffset,
  ggmlCodesNarrow,
  ggmlHasMin,
  ggmlPayloadBytes,
  levelsHi,
  levelsLo,
  widen,
} from "./codec-ggml";
import { exp4 } from "./exp";
import { f16ToF32 } from "./half";
import { hsum4, madd } from "./simd";

/** Descriptor kind of the ggml block types (src/kernels/wasm.ts WASM_CODECS); type index in bits 4..7. */
export const KIND_GGML: i32 = 6;

// @ts-ignore: decorator
@inline
export function isGgml(desc: i32): bool {
  return (desc & 15) == KIND_GGML;
}

/** Bytes of one stored row, of its scales and of its zeros, for a descriptor of kind 0..4 or ggml. */
export function rowBytesAny(desc: i32, d: i32): usize {
  const kind = desc & 15;
  if (kind == KIND_GGML) return <usize>((d >> 5) * ggmlPayloadBytes((desc >> 4) & 15));
  if (kind < 4) return <usize>d << (kind == 0 ? 2 : kind == 3 ? 0 : 1);
  return <usize>((d * ((desc >> 4) & 15) + 7) >> 3);
}

export function scaleBytesAny(desc: i32, d: i32): usize {
  const kind = desc & 15;
  if (kind == KIND_GGML) return <usize>((d >> 5) << 1);
  if (kind < 4) return 0;
  const G = desc >>> 16;
  return <usize>(((d + G - 1) / G) << 1);
}

export function zeroBytesAny(desc: i32, d: i32): usize {
  const kind = desc & 15;
  if (kind == KIND_GGML) return ggmlHasMin((desc >> 4) & 15) ? <usize>((d >> 5) << 1) : 0;
  if (kind < 4 || ((desc >> 8) & 1) == 1) return 0;
  return scaleBytesAny(desc, d);
}

// ---- call context (scratch memory: keeps the specialised functions' signatures short) ----

const CX_D = 0; // i32 head size
const CX_Q = 4; // f32 query rows (R, d)
const CX_QPOS = 8; // i32 positions (R)
const CX_PAY = 12; // payload of slot 0
const CX_SC = 16; // scales of slot 0
const CX_ZE = 20; // zeros of slot 0
const CX_SLOTPOS = 24; // i32 (nSlots)
const CX_NSLOTS = 28;
const CX_SCALE = 32; // f32
const CX_SCORES = 36; // (4, nSlots) f32: scores, then the unnormalised softmax weights
const CX_STAT = 40; // 4 maxima, then 4 inverse sums
const CX_QV = 44; // per block b: 3 vectors of the rows' lanes (q sums | q8 scale, scale * sum c, i32 o * sum c)
const CX_QW = 48; // q8 codes of the R rows: i16 (R, d) at scratch, or i8 where they are (relaxed i8 dots)
const CX_BUF = 52; // (d) f32 row buffer of the non-ggml side
const CX_ACC = 56; // (4, d) f32 accumulators
const CX_PROBS = 60; // (R, nSlots) probabilities out, or 0
const CX_DESC = 64; // descriptor of the side being read
const CX_STAGE = 68; // (nB, MIX_TILE) pairs of v128: staged value weights of mixG
const CX_TAB = 72; // (2, MIX_TILE * nB) f32: one tile's block d, then m, widened from f16 (tileScales)
const CX_BYTES = 80;

// @ts-ignore: decorator
@inline
function cx<T>(c: usize, off: i32): T {
  return load<T>(c + <usize>off);
}

/** [sum(a), sum(b), sum(c), sum(e)] of four i32x4. */
// @ts-ignore: decorator
@inline
function isum4(a: v128, b: v128, c: v128, e: v128): v128 {
  const t0 = i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
  const t1 = i32x4.add(i32x4.shuffle(c, e, 0, 1, 4, 5), i32x4.shuffle(c, e, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(t0, t1, 0, 2, 4, 6), i32x4.shuffle(t0, t1, 1, 3, 5, 7));
}

/** q_b . L for one row's 32 query floats at qp and the block's levels as 8 f32x4. */
// @ts-ignore: decorator
@inline
function dot32(qp: usize, l0: v128, l1: v128, l2: v128, l3: v128, l4: v128, l5: v128, l6: v128, l7: v128): v128 {
  let a = f32x4.mul(v128.load(qp), l0);
  let b = f32x4.mul(v128.load(qp, 16), l1);
  a = madd(v128.load(qp, 32), l2, a);
  b = madd(v128.load(qp, 48), l3, b);
  a = madd(v128.load(qp, 64), l4, a);
  b = madd(v128.load(qp, 80), l5, b);
  a = madd(v128.load(qp, 96), l6, a);
  b = madd(v128.load(qp, 112), l7, b);
  return f32x4.add(a, b);
}

/** c_b . L for one row's 32 i16 query codes at qp and the block's levels as 4 i16x8. */
// @ts-ignore: decorator
@inline
function idot32(qp: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const a = i32x4.add(i32x4.dot_i16x8_s(v128.load(qp), x0), i32x4.dot_i16x8_s(v128.load(qp, 16), x1));
  const b = i32x4.add(i32x4.dot_i16x8_s(v128.load(qp, 32), x2), i32x4.dot_i16x8_s(v128.load(qp, 48), x3));
  return i32x4.add(a, b);
}

/** c_b . u for one row's 32 i8 query codes at qp and the block's codes u (0..127) as 2 i8x16 (relaxed build). */
// @ts-ignore: decorator
@inline
function rdot32(qp: usize, u0: v128, u1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qp), u0, i32x4.splat(0));
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qp, 16), u1, a);
  }
  return unreachable(); // only called where i8dot holds: the relaxed build
}

/** f16ToF32 of four f16 bits in the low halves of i32 lanes: the same exact arithmetic, per lane. */
// @ts-ignore: decorator
@inline
function f16x4ToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const special = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00)); // Inf / NaN
  const finite = f32x4.mul(em, f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
  return v128.or(sign, v128.bitselect(v128.or(em, i32x4.splat(0x7f800000)), finite, special));
}

/**
 * The n f16 values at src (n = slots x blocks of one tile, contiguous in the cache's scale or
 * zero array) as f32 at dst: four per step instead of a scalar f16ToF32 per slot and block
 * where they are used (scoresG, mixG). Bit-identical to f16ToF32.
 */
function tileScales(src: usize, n: i32, dst: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), f16x4ToF32(v128.load16x4_u(src + (<usize>i << 1))));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(<u32>load<u16>(src + (<usize>i << 1))));
}

/** Score vector (lanes = rows) -> scaled, masked, stored at scores rows; running max. */
// @ts-ignore: decorator
@inline
function putScores(R: i32, S: v128, scale: v128, sp: i32, qp: v128, scores: usize, j: i32, rs: usize, vmax: v128): v128 {
  S = f32x4.mul(S, scale);
  S = v128.bitselect(S, f32x4.splat(-Infinity), i32x4.le_s(i32x4.splat(sp), qp));
  const o = scores + (<usize>j << 2);
  v128.store32_lane(o, S, 0);
  if (R > 1) v128.store32_lane(o + rs, S, 1);
  if (R > 2) v128.store32_lane(o + 2 * rs, S, 2);
  if (R > 3) v128.store32_lane(o + 3 * rs, S, 3);
  return f32x4.pmax(vmax, S);
}

// @ts-ignore: decorator
@inline
function rowPositions(R: i32, qPos: usize): v128 {
  let v = i32x4.splat(load<i32>(qPos));
  if (R > 1) v = i32x4.replace_lane(v, 1, load<i32>(qPos, 4));
  if (R > 2) v = i32x4.replace_lane(v, 2, load<i32>(qPos, 8));
  if (R > 3) v = i32x4.replace_lane(v, 3, load<i32>(qPos, 12));
  return v;
}

// @ts-ignore: decorator
@inline
function storeMaxes(R: i32, maxes: usize, vmax: v128): void {
  v128.store(maxes, vmax);
}

/**
 * Scores of R query rows over ggml keys of type t (R, t, q8 constant after inlining): scale *
 * q_r . k_j, -Inf where slotPos[j] > qPos_r; row maxima to the context's stat. q8: the rows'
 * q8_0 codes with integer dot products (CX_QW, i16 per code), else the f32 rows (CX_Q). Slots
 * go in tiles of MIX_TILE whose block d (and m) are widened from f16 four at a time first
 * (tileScales), instead of one scalar f16ToF32 per slot and block.
 */
// @ts-ignore: decorator
@inline
function scoresG(R: i32, t: i32, q8: bool, c: usize): void {
  const d = cx<i32>(c, CX_D);
  const q = q8 ? cx<usize>(c, CX_QW) : cx<usize>(c, CX_Q);
  const pay = cx<usize>(c, CX_PAY);
  const sc = cx<usize>(c, CX_SC);
  const ze = cx<usize>(c, CX_ZE);
  const slotPos = cx<usize>(c, CX_SLOTPOS);
  const nSlots = cx<i32>(c, CX_NSLOTS);
  const scores = cx<usize>(c, CX_SCORES);
  const qv = cx<usize>(c, CX_QV);
  const vscale = f32x4.splat(cx<f32>(c, CX_SCALE));
  const qp = rowPositions(R, cx<usize>(c, CX_QPOS));
  const pmax = max(max(i32x4.extract_lane(qp, 0), i32x4.extract_lane(qp, 1)), max(i32x4.extract_lane(qp, 2), i32x4.extract_lane(qp, 3)));
  const nB = d >> 5;
  const pb = <usize>ggmlPayloadBytes(t);
  const rowBytes = <usize>nB * pb;
  const i8dot = q8 && ASC_FEATURE_RELAXED_SIMD && ggmlCodesNarrow(t); // relaxed i8 x i7 dots
  // bytes per query row: q8 codes as i8 (i8 dots) or i16, or f32
  const rb = q8 ? (i8dot ? <usize>d : <usize>d << 1) : <usize>d << 2;
  const rs = <usize>nSlots << 2;
  const zero = f32x4.splat(0);
  const izero = i32x4.splat(0);
  let vmax = f32x4.splat(-Infinity);
  const tab = cx<usize>(c, CX_TAB);
  const tabM = tab + (<usize>(MIX_TILE * nB) << 2);
  for (let j0 = 0; j0 < nSlots; j0 += MIX_TILE) {
    // the tile's block d (and m) as f32, four conversions per step
    const nt = min(MIX_TILE, nSlots - j0);
    tileScales(sc + ((<usize>j0 * <usize>nB) << 1), nt * nB, tab);
    if (ggmlHasMin(t)) tileScales(ze + ((<usize>j0 * <usize>nB) << 1), nt * nB, tabM);
    for (let jj = 0; jj < nt; jj++) {
      const j = j0 + jj;
      const sp = load<i32>(slotPos + (<usize>j << 2));
      let S = zero;
      if (sp <= pmax) {
        const row = pay + <usize>j * rowBytes;
        const scj = tab + ((<usize>jj * <usize>nB) << 2);
        const zej = tabM + ((<usize>jj * <usize>nB) << 2);
        let T0 = zero, T1 = zero, T2 = zero, T3 = zero, tail = zero; // f32 rows: per-row lane sums
        for (let b = 0; b < nB; b++) {
          const p = row + <usize>b * pb;
          const vd = v128.load32_splat(scj + (<usize>b << 2));
          const vb = qv + <usize>b * 48;
          if (q8) {
            let a0: v128, a1 = izero, a2 = izero, a3 = izero;
            if (i8dot) {
              // the rows' i8 codes c . the block's unsigned codes u (0..31)
              const u0 = codesLo(t, p), u1 = codesHi(t, p);
              const qo = q + (<usize>b << 5);
              a0 = rdot32(qo, u0, u1);
              if (R > 1) a1 = rdot32(qo + rb, u0, u1);
              if (R > 2) a2 = rdot32(qo + 2 * rb, u0, u1);
              if (R > 3) a3 = rdot32(qo + 3 * rb, u0, u1);
            } else {
              let x0: v128, x1: v128, x2: v128, x3: v128;
              if (t == GGML_Q8_0) {
                x0 = levels8(t, p, 0); x1 = levels8(t, p, 1); x2 = levels8(t, p, 2); x3 = levels8(t, p, 3);
              } else {
                const lo = levelsLo(t, p), hi = levelsHi(t, p);
                x0 = i16x8.extend_low_i8x16_s(lo); x1 = i16x8.extend_high_i8x16_s(lo);
                x2 = i16x8.extend_low_i8x16_s(hi); x3 = i16x8.extend_high_i8x16_s(hi);
              }
              const qo = q + (<usize>b << 6);
              a0 = idot32(qo, x0, x1, x2, x3);
              if (R > 1) a1 = idot32(qo + rb, x0, x1, x2, x3);
              if (R > 2) a2 = idot32(qo + 2 * rb, x0, x1, x2, x3);
              if (R > 3) a3 = idot32(qo + 3 * rb, x0, x1, x2, x3);
            }
            let cl = isum4(a0, a1, a2, a3); // c . L of the R rows
            // i8 dots: c . L = c . u - o sum(c), o sum(c) per row from the set-up
            if (i8dot && ggmlCodeOffset(t) != 0) cl = i32x4.sub(cl, v128.load(vb, 32));
            // multiply then add (not madd): the scores are bit-identical in both builds
            S = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(cl), f32x4.mul(v128.load(vb), vd)), S);
            if (ggmlHasMin(t)) S = f32x4.add(f32x4.mul(v128.load32_splat(zej + (<usize>b << 2)), v128.load(vb, 16)), S);
          } else {
            let l0: v128, l1: v128, l2: v128, l3: v128, l4: v128, l5: v128, l6: v128, l7: v128;
            if (t == GGML_Q8_0) {
              // sign-extending 8-byte loads (levels8) instead of two loads and four extends
              const h0 = levels8(t, p, 0), h1 = levels8(t, p, 1), h2 = levels8(t, p, 2), h3 = levels8(t, p, 3);
              l0 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h0));
              l1 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h0));
              l2 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h1));
              l3 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h1));
              l4 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h2));
              l5 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h2));
              l6 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h3));
              l7 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h3));
            } else {
              const lo = levelsLo(t, p), hi = levelsHi(t, p);
              l0 = widen(lo, 0); l1 = widen(lo, 1); l2 = widen(lo, 2); l3 = widen(lo, 3);
              l4 = widen(hi, 0); l5 = widen(hi, 1); l6 = widen(hi, 2); l7 = widen(hi, 3);
            }
            const qo = q + (<usize>b << 7);
            T0 = madd(dot32(qo, l0, l1, l2, l3, l4, l5, l6, l7), vd, T0);
            if (R > 1) T1 = madd(dot32(qo + rb, l0, l1, l2, l3, l4, l5, l6, l7), vd, T1);
            if (R > 2) T2 = madd(dot32(qo + 2 * rb, l0, l1, l2, l3, l4, l5, l6, l7), vd, T2);
            if (R > 3) T3 = madd(dot32(qo + 3 * rb, l0, l1, l2, l3, l4, l5, l6, l7), vd, T3);
            if (ggmlHasMin(t)) tail = madd(v128.load32_splat(zej + (<usize>b << 2)), v128.load(vb), tail);
          }
        }
        if (!q8) S = f32x4.add(hsum4(T0, T1, T2, T3), tail);
      }
      vmax = putScores(R, S, vscale, sp, qp, scores, j, rs, vmax);
    }
  }
  storeMaxes(R, cx<usize>(c, CX_STAT), vmax);
}

/** Decode stored row j of a float (kind 0..3) or int (kind 4) codec into buf (d f32). */
function otherRow(desc: i32, d: i32, pay: usize, sc: usize, ze: usize, j: i32, buf: usize): void {
  const kind = desc & 15;
  const row = pay + <usize>j * rowBytesAny(desc, d);
  if (kind < 4) decodeFloatLoop(kind, row, d, buf);
  else {
    const sb = <usize>j * scaleBytesAny(desc, d);
    decodeIntLoop((desc >> 4) & 15, ((desc >> 8) & 1) == 1, desc >>> 16, row, sc + sb, ze + sb, 1, d, buf);
  }
}

/** Scores of R f32 query rows over keys of a float or int codec (rows decoded into the buffer). */
// @ts-ignore: decorator
@inline
function scoresOther(R: i32, c: usize): void {
  const d = cx<i32>(c, CX_D);
  const q = cx<usize>(c, CX_Q);
  const slotPos = cx<usize>(c, CX_SLOTPOS);
  const nSlots = cx<i32>(c, CX_NSLOTS);
  const scores = cx<usize>(c, CX_SCORES);
  const buf = cx<usize>(c, CX_BUF);
  const desc = cx<i32>(c, CX_DESC);
  const vscale = f32x4.splat(cx<f32>(c, CX_SCALE));
  const qp = rowPositions(R, cx<usize>(c, CX_QPOS));
  const pmax = max(max(i32x4.extract_lane(qp, 0), i32x4.extract_lane(qp, 1)), max(i32x4.extract_lane(qp, 2), i32x4.extract_lane(qp, 3)));
  const rb = <usize>d << 2;
  const rs = <usize>nSlots << 2;
  const zero = f32x4.splat(0);
  let vmax = f32x4.splat(-Infinity);
  for (let j = 0; j < nSlots; j++) {
    const sp = load<i32>(slotPos + (<usize>j << 2));
    let S = zero;
    if (sp <= pmax) {
      otherRow(desc, d, cx<usize>(c, CX_PAY), cx<usize>(c, CX_SC), cx<usize>(c, CX_ZE), j, buf);
      let T0 = zero, T1 = zero, T2 = zero, T3 = zero;
      for (let i: usize = 0; i < rb; i += 16) {
        const k = v128.load(buf + i);
        T0 = madd(v128.load(q + i), k, T0);
        if (R > 1) T1 = madd(v128.load(q + rb + i), k, T1);
        if (R > 2) T2 = madd(v128.load(q + 2 * rb + i), k, T2);
        if (R > 3) T3 = madd(v128.load(q + 3 * rb + i), k, T3);
      }
      S = hsum4(T0, T1, T2, T3);
    }
    vmax = putScores(R, S, vscale, sp, qp, scores, j, rs, vmax);
  }
  storeMaxes(R, cx<usize>(c, CX_STAT), vmax);
}

/** The R rows' softmax weights of slot j (e * inv), written to probs when asked. */
// @ts-ignore: decorator
@inline
function weights(R: i32, c: usize, j: i32): v128 {
  const nSlots = cx<i32>(c, CX_NSLOTS);
  const rs = <usize>nSlots << 2;
  const e = cx<usize>(c, CX_SCORES) + (<usize>j << 2);
  let w = f32x4.splat(load<f32>(e));
  if (R > 1) w = f32x4.replace_lane(w, 1, load<f32>(e + rs));
  if (R > 2) w = f32x4.replace_lane(w, 2, load<f32>(e + 2 * rs));
  if (R > 3) w = f32x4.replace_lane(w, 3, load<f32>(e + 3 * rs));
  w = f32x4.mul(w, v128.load(cx<usize>(c, CX_STAT), 16));
  const probs = cx<usize>(c, CX_PROBS);
  if (probs) {
    const o = probs + (<usize>j << 2);
    v128.store32_lane(o, w, 0);
    if (R > 1) v128.store32_lane(o + rs, w, 1);
    if (R > 2) v128.store32_lane(o + 2 * rs, w, 2);
    if (R > 3) v128.store32_lane(o + 3 * rs, w, 3);
  }
  return w;
}

/**
 * The block's levels 8h..8h+7 as i16x8 (h constant after inlining). q8_0's levels are its
 * stored bytes: one sign-extending 8-byte load (pmovsxbw) instead of a 16-byte load and an
 * extend; the other types unpack 16 levels and extend half of them.
 */
// @ts-ignore: decorator
@inline
function levels8(t: i32, p: usize, h: i32): v128 {
  if (t == GGML_Q8_0) return v128.load8x8_s(p + (<usize>h << 3));
  const lv = h < 2 ? levelsLo(t, p) : levelsHi(t, p);
  return (h & 1) == 0 ? i16x8.extend_low_i8x16_s(lv) : i16x8.extend_high_i8x16_s(lv);
}

/** Slots per tile of the weighted sum over ggml values (mixG), and of scoresG's widened block scales. */
const MIX_TILE = 32;

/**
 * acc[8 floats at a, of R rows rb apart] += sum over the tile's nt slots of cw_rj * L_j (+ cm_rj),
 * where L_j are the block's levels 8h..8h+7 (h constant after inlining: which quarter of the
 * 32-element block) and cw / cm the staged per-(slot, row) vectors (lanes = rows). The 2R
 * accumulators stay in registers across the tile; each element still adds its slots in
 * ascending order, as one slot at a time did, so the sums are the same to the bit.
 */
// @ts-ignore: decorator
@inline
function mixQuarter(R: i32, t: i32, h: i32, a: usize, rb: usize, p0: usize, rowBytes: usize, st: usize, nt: i32): void {
  const hasMin = ggmlHasMin(t);
  const zero = f32x4.splat(0);
  let a00 = v128.load(a), a01 = v128.load(a, 16);
  let a10 = zero, a11 = zero, a20 = zero, a21 = zero, a30 = zero, a31 = zero;
  if (R > 1) { a10 = v128.load(a + rb); a11 = v128.load(a + rb, 16); }
  if (R > 2) { a20 = v128.load(a + 2 * rb); a21 = v128.load(a + 2 * rb, 16); }
  if (R > 3) { a30 = v128.load(a + 3 * rb); a31 = v128.load(a + 3 * rb, 16); }
  for (let jj = 0; jj < nt; jj++) {
    const p = p0 + <usize>jj * rowBytes;
    const l16 = levels8(t, p, h);
    const l0 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l16));
    const l1 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l16));
    const sp = st + (<usize>jj << 5);
    // lane r of the staged cw (cm) splatted by a load: row r's weight times the block's d (m);
    // 0 where p_rj = 0 (a splatting load, not a load and a lane shuffle per row)
    let w = v128.load32_splat(sp);
    if (hasMin) {
      const m = v128.load32_splat(sp, 16);
      a00 = f32x4.add(madd(w, l0, a00), m);
      a01 = f32x4.add(madd(w, l1, a01), m);
    } else {
      a00 = madd(w, l0, a00);
      a01 = madd(w, l1, a01);
    }
    if (R > 1) {
      w = v128.load32_splat(sp, 4);
      if (hasMin) {
        const m = v128.load32_splat(sp, 20);
        a10 = f32x4.add(madd(w, l0, a10), m);
        a11 = f32x4.add(madd(w, l1, a11), m);
      } else {
        a10 = madd(w, l0, a10);
        a11 = madd(w, l1, a11);
      }
    }
    if (R > 2) {
      w = v128.load32_splat(sp, 8);
      if (hasMin) {
        const m = v128.load32_splat(sp, 24);
        a20 = f32x4.add(madd(w, l0, a20), m);
        a21 = f32x4.add(madd(w, l1, a21), m);
      } else {
        a20 = madd(w, l0, a20);
        a21 = madd(w, l1, a21);
      }
    }
    if (R > 3) {
      w = v128.load32_splat(sp, 12);
      if (hasMin) {
        const m = v128.load32_splat(sp, 28);
        a30 = f32x4.add(madd(w, l0, a30), m);
        a31 = f32x4.add(madd(w, l1, a31), m);
      } else {
        a30 = madd(w, l0, a30);
        a31 = madd(w, l1, a31);
      }
    }
  }
  v128.store(a, a00);
  v128.store(a, a01, 16);
  if (R > 1) { v128.store(a + rb, a10); v128.store(a + rb, a11, 16); }
  if (R > 2) { v128.store(a + 2 * rb, a20); v128.store(a + 2 * rb, a21, 16); }
  if (R > 3) { v128.store(a + 3 * rb, a30); v128.store(a + 3 * rb, a31, 16); }
}

/** a + w * l (+ m): one output vector's step, as one slot at a time added it. */
// @ts-ignore: decorator
@inline
function step(hasMin: bool, w: v128, m: v128, l: v128, a: v128): v128 {
  return hasMin ? f32x4.add(madd(w, l, a), m) : madd(w, l, a);
}

/**
 * mixQuarter for 16 floats (the block's levels 16h..16h+15, one levelsLo/Hi per slot), R <= 3
 * rows (4R accumulators): the 4-bit and 5-bit types unpack a half-block's levels once instead
 * of twice.
 */
// @ts-ignore: decorator
@inline
function mixHalf(R: i32, t: i32, h: i32, a: usize, rb: usize, p0: usize, rowBytes: usize, st: usize, nt: i32): void {
  const hasMin = ggmlHasMin(t);
  const zero = f32x4.splat(0);
  let a00 = v128.load(a), a01 = v128.load(a, 16), a02 = v128.load(a, 32), a03 = v128.load(a, 48);
  let a10 = zero, a11 = zero, a12 = zero, a13 = zero, a20 = zero, a21 = zero, a22 = zero, a23 = zero;
  if (R > 1) { a10 = v128.load(a + rb); a11 = v128.load(a + rb, 16); a12 = v128.load(a + rb, 32); a13 = v128.load(a + rb, 48); }
  if (R > 2) { a20 = v128.load(a + 2 * rb); a21 = v128.load(a + 2 * rb, 16); a22 = v128.load(a + 2 * rb, 32); a23 = v128.load(a + 2 * rb, 48); }
  for (let jj = 0; jj < nt; jj++) {
    const p = p0 + <usize>jj * rowBytes;
    const lv = h == 0 ? levelsLo(t, p) : levelsHi(t, p);
    const l0 = widen(lv, 0), l1 = widen(lv, 1), l2 = widen(lv, 2), l3 = widen(lv, 3);
    const sp = st + (<usize>jj << 5);
    let w = v128.load32_splat(sp);
    let m = hasMin ? v128.load32_splat(sp, 16) : zero;
    a00 = step(hasMin, w, m, l0, a00); a01 = step(hasMin, w, m, l1, a01);
    a02 = step(hasMin, w, m, l2, a02); a03 = step(hasMin, w, m, l3, a03);
    if (R > 1) {
      w = v128.load32_splat(sp, 4);
      if (hasMin) m = v128.load32_splat(sp, 20);
      a10 = step(hasMin, w, m, l0, a10); a11 = step(hasMin, w, m, l1, a11);
      a12 = step(hasMin, w, m, l2, a12); a13 = step(hasMin, w, m, l3, a13);
    }
    if (R > 2) {
      w = v128.load32_splat(sp, 8);
      if (hasMin) m = v128.load32_splat(sp, 24);
      a20 = step(hasMin, w, m, l0, a20); a21 = step(hasMin, w, m, l1, a21);
      a22 = step(hasMin, w, m, l2, a22); a23 = step(hasMin, w, m, l3, a23);
    }
  }
  v128.store(a, a00); v128.store(a, a01, 16); v128.store(a, a02, 32); v128.store(a, a03, 48);
  if (R > 1) { v128.store(a + rb, a10); v128.store(a + rb, a11, 16); v128.store(a + rb, a12, 32); v128.store(a + rb, a13, 48); }
  if (R > 2) { v128.store(a + 2 * rb, a20); v128.store(a + 2 * rb, a21, 16); v128.store(a + 2 * rb, a22, 32); v128.store(a + 2 * rb, a23, 48); }
}

/**
 * acc (R, d) += sum_j p_rj v_j over ggml values of type t (rows with p = 0 add nothing).
 * Slots go in tiles of MIX_TILE: the tile's weights times each block's d (and m) are staged
 * once (lanes = rows; 0 where p_rj = 0, so 0 * Inf never enters), then each 8 floats of the
 * R rows' outputs (mixQuarter; 16 floats for the 4/5-bit types with up to 3 rows, mixHalf) are
 * summed over the tile in registers. A slot at a time, the accumulators were loaded and stored
 * (2R vectors per 8 levels per slot): 46% of a q8_0 call at 9q/3kv/64, 4K before this
 * (results/bench/attention-ggml/3row-mix-tiles/).
 */
// @ts-ignore: decorator
@inline
function mixG(R: i32, t: i32, c: usize): void {
  const d = cx<i32>(c, CX_D);
  const pay = cx<usize>(c, CX_PAY);
  const sc = cx<usize>(c, CX_SC);
  const ze = cx<usize>(c, CX_ZE);
  const nSlots = cx<i32>(c, CX_NSLOTS);
  const acc = cx<usize>(c, CX_ACC);
  const stage = cx<usize>(c, CX_STAGE); // (nB, MIX_TILE) pairs of v128: cw, cm
  const nB = d >> 5;
  const pb = <usize>ggmlPayloadBytes(t);
  const rowBytes = <usize>nB * pb;
  const rb = <usize>d << 2;
  const hasMin = ggmlHasMin(t);
  const zero = f32x4.splat(0);
  const tab = cx<usize>(c, CX_TAB);
  const tabM = tab + (<usize>(MIX_TILE * nB) << 2);
  for (let j0 = 0; j0 < nSlots; j0 += MIX_TILE) {
    const nt = min(MIX_TILE, nSlots - j0);
    // the tile's block d (and m) as f32, four conversions per step
    tileScales(sc + ((<usize>j0 * <usize>nB) << 1), nt * nB, tab);
    if (hasMin) tileScales(ze + ((<usize>j0 * <usize>nB) << 1), nt * nB, tabM);
    let any = false;
    for (let jj = 0; jj < nt; jj++) {
      const j = j0 + jj;
      const w = weights(R, c, j);
      const off = f32x4.eq(w, zero); // rows this slot adds nothing to
      if (!i32x4.all_true(off)) any = true;
      const scj = tab + ((<usize>jj * <usize>nB) << 2);
      const zej = tabM + ((<usize>jj * <usize>nB) << 2);
      for (let b = 0; b < nB; b++) {
        const sp = stage + ((<usize>(b * MIX_TILE + jj)) << 5);
        const vd = v128.load32_splat(scj + (<usize>b << 2));
        v128.store(sp, v128.bitselect(zero, f32x4.mul(w, vd), off));
        if (hasMin) {
          const vm = v128.load32_splat(zej + (<usize>b << 2));
          v128.store(sp, v128.bitselect(zero, f32x4.mul(w, vm), off), 16);
        }
      }
    }
    if (!any) continue; // the whole tile masked or underflowed: nothing to add
    const row0 = pay + <usize>j0 * rowBytes;
    for (let b = 0; b < nB; b++) {
      const p0 = row0 + <usize>b * pb;
      const a = acc + (<usize>b << 7);
      const st = stage + ((<usize>(b * MIX_TILE)) << 5);
      if (t != GGML_Q8_0 && R <= 3) {
        // unpacked levels: one levelsLo / levelsHi per slot and half-block
        mixHalf(R, t, 0, a, rb, p0, rowBytes, st, nt);
        mixHalf(R, t, 1, a + 64, rb, p0, rowBytes, st, nt);
      } else {
        // q8_0's levels are a plain load; 4 rows' 16 accumulators would not fit in registers
        mixQuarter(R, t, 0, a, rb, p0, rowBytes, st, nt);
        mixQuarter(R, t, 1, a + 32, rb, p0, rowBytes, st, nt);
        mixQuarter(R, t, 2, a + 64, rb, p0, rowBytes, st, nt);
        mixQuarter(R, t, 3, a + 96, rb, p0, rowBytes, st, nt);
      }
    }
  }
}

/** acc (R, d) += sum_j p_rj v_j over values of a float or int codec (decoded into the buffer). */
// @ts-ignore: decorator
@inline
function mixOther(R: i32, c: usize): void {
  const d = cx<i32>(c, CX_D);
  const nSlots = cx<i32>(c, CX_NSLOTS);
  const acc = cx<usize>(c, CX_ACC);
  const buf = cx<usize>(c, CX_BUF);
  const desc = cx<i32>(c, CX_DESC);
  const rb = <usize>d << 2;
  for (let j = 0; j < nSlots; j++) {
    const w = weights(R, c, j);
    if (!v128.any_true(f32x4.ne(w, f32x4.splat(0)))) continue;
    otherRow(desc, d, cx<usize>(c, CX_PAY), cx<usize>(c, CX_SC), cx<usize>(c, CX_ZE), j, buf);
    for (let r = 0; r < R; r++) {
      // a row whose weight is zero adds exactly nothing (0 * Inf would be NaN)
      const wr = r == 0 ? f32x4.extract_lane(w, 0) : r == 1 ? f32x4.extract_lane(w, 1) : r == 2 ? f32x4.extract_lane(w, 2) : f32x4.extract_lane(w, 3);
      if (wr == 0) continue;
      const vw = f32x4.splat(wr);
      const a = acc + <usize>r * rb;
      for (let i: usize = 0; i < rb; i += 16) v128.store(a + i, madd(vw, v128.load(buf + i), v128.load(a + i)));
    }
  }
}

// ---- one small function per (rows, type): the optimising compiler sees constants ----

function sF1(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(1, 0, false, c); break;
    case 1: scoresG(1, 1, false, c); break;
    case 2: scoresG(1, 2, false, c); break;
    case 3: scoresG(1, 3, false, c); break;
    case 4: scoresG(1, 4, false, c); break;
    default: scoresG(1, 5, false, c);
  }}
function sF2(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(2, 0, false, c); break;
    case 1: scoresG(2, 1, false, c); break;
    case 2: scoresG(2, 2, false, c); break;
    case 3: scoresG(2, 3, false, c); break;
    case 4: scoresG(2, 4, false, c); break;
    default: scoresG(2, 5, false, c);
  }}
function sF3(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(3, 0, false, c); break;
    case 1: scoresG(3, 1, false, c); break;
    case 2: scoresG(3, 2, false, c); break;
    case 3: scoresG(3, 3, false, c); break;
    case 4: scoresG(3, 4, false, c); break;
    default: scoresG(3, 5, false, c);
  }}
function sF4(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(4, 0, false, c); break;
    case 1: scoresG(4, 1, false, c); break;
    case 2: scoresG(4, 2, false, c); break;
    case 3: scoresG(4, 3, false, c); break;
    case 4: scoresG(4, 4, false, c); break;
    default: scoresG(4, 5, false, c);
  }}
function sQ1(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(1, 0, true, c); break;
    case 1: scoresG(1, 1, true, c); break;
    case 2: scoresG(1, 2, true, c); break;
    case 3: scoresG(1, 3, true, c); break;
    case 4: scoresG(1, 4, true, c); break;
    default: scoresG(1, 5, true, c);
  }}
function sQ2(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(2, 0, true, c); break;
    case 1: scoresG(2, 1, true, c); break;
    case 2: scoresG(2, 2, true, c); break;
    case 3: scoresG(2, 3, true, c); break;
    case 4: scoresG(2, 4, true, c); break;
    default: scoresG(2, 5, true, c);
  }}
function sQ3(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(3, 0, true, c); break;
    case 1: scoresG(3, 1, true, c); break;
    case 2: scoresG(3, 2, true, c); break;
    case 3: scoresG(3, 3, true, c); break;
    case 4: scoresG(3, 4, true, c); break;
    default: scoresG(3, 5, true, c);
  }}
function sQ4(t: i32, c: usize): void {
  switch (t) {
    case 0: scoresG(4, 0, true, c); break;
    case 1: scoresG(4, 1, true, c); break;
    case 2: scoresG(4, 2, true, c); break;
    case 3: scoresG(4, 3, true, c); break;
    case 4: scoresG(4, 4, true, c); break;
    default: scoresG(4, 5, true, c);
  }}
function mG1(t: i32, c: usize): void {
  switch (t) {
    case 0: mixG(1, 0, c); break;
    case 1: mixG(1, 1, c); break;
    case 2: mixG(1, 2, c); break;
    case 3: mixG(1, 3, c); break;
    case 4: mixG(1, 4, c); break;
    default: mixG(1, 5, c);
  }
}
function mG2(t: i32, c: usize): void {
  switch (t) {
    case 0: mixG(2, 0, c); break;
    case 1: mixG(2, 1, c); break;
    case 2: mixG(2, 2, c); break;
    case 3: mixG(2, 3, c); break;
    case 4: mixG(2, 4, c); break;
    default: mixG(2, 5, c);
  }
}
function mG3(t: i32, c: usize): void {
  switch (t) {
    case 0: mixG(3, 0, c); break;
    case 1: mixG(3, 1, c); break;
    case 2: mixG(3, 2, c); break;
    case 3: mixG(3, 3, c); break;
    case 4: mixG(3, 4, c); break;
    default: mixG(3, 5, c);
  }
}
function mG4(t: i32, c: usize): void {
  switch (t) {
    case 0: mixG(4, 0, c); break;
    case 1: mixG(4, 1, c); break;
    case 2: mixG(4, 2, c); break;
    case 3: mixG(4, 3, c); break;
    case 4: mixG(4, 4, c); break;
    default: mixG(4, 5, c);
  }
}
function sO1(c: usize): void { scoresOther(1, c); }
function sO2(c: usize): void { scoresOther(2, c); }
function sO3(c: usize): void { scoresOther(3, c); }
function sO4(c: usize): void { scoresOther(4, c); }
function mO1(c: usize): void { mixOther(1, c); }
function mO2(c: usize): void { mixOther(2, c); }
function mO3(c: usize): void { mixOther(3, c); }
function mO4(c: usize): void { mixOther(4, c); }

// @ts-ignore: decorator
@inline
function align16(p: usize): usize {
  return (p + 15) & ~(<usize>15);
}

/** Scratch bytes of ggmlAttendRows (within attend.ts attendScratchBytes for the same sizes). */
export function ggmlScratchBytes(nSlots: i32, d: i32): i32 {
  return 16 * nSlots + 16 * d + 4 * d + 8 * d + 48 * (d >> 5) + MIX_TILE * d + 8 * d + 32 + CX_BYTES + 144;
}

/** Softmax weights in place: e_j = exp(s_j - max) (0 where masked); returns their sum (0 if none visible). */
function expRow(scores: usize, nSlots: i32, max: f32): f32 {
  if (max == -Infinity) {
    memory.fill(scores, 0, <usize>nSlots << 2); // no visible slot: the row outputs zeros
    return 0;
  }
  const vmax = f32x4.splat(max);
  let vsum = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= nSlots; j += 4) {
    const sp = scores + (<usize>j << 2);
    const e = exp4(f32x4.sub(v128.load(sp), vmax)); // masked slots hold -Inf: exp4 gives 0
    v128.store(sp, e);
    vsum = f32x4.add(vsum, e);
  }
  let sum = f32x4.extract_lane(vsum, 0) + f32x4.extract_lane(vsum, 1) + f32x4.extract_lane(vsum, 2) + f32x4.extract_lane(vsum, 3);
  for (; j < nSlots; j++) {
    const sp = scores + (<usize>j << 2);
    const s = load<f32>(sp);
    const e: f32 = s == -Infinity ? 0 : f32x4.extract_lane(exp4(f32x4.splat(s - max)), 0);
    store<f32>(sp, e);
    sum += e;
  }
  return sum;
}

/**
 * Attention of nRows query rows when the keys or the values (or both) are a ggml block type
 * (arguments as attend.ts attendRows; head size a multiple of 32). ms != 0: per row (max, sum)
 * of the softmax (attendPart). scratch: ggmlScratchBytes(nSlots, d), 16-aligned.
 */
export function ggmlAttendRows(
  kDesc: i32,
  vDesc: i32,
  d: i32,
  q: usize,
  qPos: usize,
  nRows: i32,
  kPay: usize,
  kSc: usize,
  kZe: usize,
  vPay: usize,
  vSc: usize,
  vZe: usize,
  slotPos: usize,
  nSlots: i32,
  scale: f32,
  out: usize,
  probs: usize,
  scratch: usize,
  ms: usize,
  qc: usize,
  qs: usize,
): void {
  const rb = <usize>d << 2;
  const nB = d >> 5;
  const c = scratch;
  const scores = align16(c + CX_BYTES);
  const stat = align16(scores + (<usize>nSlots << 4));
  const acc = align16(stat + 32);
  const buf = acc + 4 * rb;
  const qv = buf + rb;
  const qw = qv + <usize>nB * 48;
  const stage = qw + (<usize>d << 3); // after the (4, d) i16 q8 codes
  const tab = align16(stage + <usize>MIX_TILE * (<usize>d)); // after the (nB, MIX_TILE) v128 pairs
  const kG = isGgml(kDesc);
  const vG = isGgml(vDesc);
  const kt = (kDesc >> 4) & 15;
  const vt = (vDesc >> 4) & 15;
  const useQ8 = qc != 0 && kG;
  store<i32>(c, d, CX_D);
  store<usize>(c, slotPos, CX_SLOTPOS);
  store<i32>(c, nSlots, CX_NSLOTS);
  store<f32>(c, scale, CX_SCALE);
  store<usize>(c, scores, CX_SCORES);
  store<usize>(c, stat, CX_STAT);
  store<usize>(c, qv, CX_QV);
  store<usize>(c, qw, CX_QW);
  store<usize>(c, buf, CX_BUF);
  store<usize>(c, acc, CX_ACC);
  store<usize>(c, stage, CX_STAGE);
  store<usize>(c, tab, CX_TAB);
  for (let r = 0; r < nRows; ) {
    const R = min(4, nRows - r);
    const qb = q + <usize>r * rb;
    store<usize>(c, qb, CX_Q);
    store<usize>(c, qPos + (<usize>r << 2), CX_QPOS);
    // per-block vectors whose lane i is row i's
    memory.fill(qv, 0, <usize>nB * 48);
    if (useQ8) {
      // relaxed i8 dots read the rows' i8 codes where they are; else widened to i16 at qw
      const inPlace = ASC_FEATURE_RELAXED_SIMD && ggmlCodesNarrow(kt);
      store<usize>(c, inPlace ? qc + <usize>r * <usize>d : qw, CX_QW);
      const off = ggmlCodeOffset(kt);
      for (let i = 0; i < R; i++) {
        const src = qc + <usize>(r + i) * <usize>d;
        const dst = qw + <usize>i * (<usize>d << 1);
        for (let b = 0; b < nB; b++) {
          let sum = 0;
          for (let k = 0; k < 32; k++) {
            const v = <i32>load<i8>(src + <usize>(b * 32 + k));
            if (!inPlace) store<i16>(dst + (<usize>(b * 32 + k) << 1), <i16>v);
            sum += v;
          }
          const s = load<f32>(qs + (<usize>((r + i) * nB + b) << 2));
          const o = qv + <usize>b * 48 + (<usize>i << 2);
          store<f32>(o, s);
          store<f32>(o, s * <f32>sum, 16);
          store<i32>(o, off * sum, 32);
        }
      }
    } else if (kG && ggmlHasMin(kt))
      for (let i = 0; i < R; i++)
        for (let b = 0; b < nB; b++) {
          const o = qb + <usize>i * rb + (<usize>b << 7);
          let a = v128.load(o);
          for (let k: usize = 16; k < 128; k += 16) a = f32x4.add(a, v128.load(o + k));
          store<f32>(qv + <usize>b * 48 + (<usize>i << 2), f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
        }
    store<usize>(c, kPay, CX_PAY);
    store<usize>(c, kSc, CX_SC);
    store<usize>(c, kZe, CX_ZE);
    store<i32>(c, kDesc, CX_DESC);
    if (!kG) {
      if (R == 1) sO1(c);
      else if (R == 2) sO2(c);
      else if (R == 3) sO3(c);
      else sO4(c);
    } else if (useQ8) {
      if (R == 1) sQ1(kt, c);
      else if (R == 2) sQ2(kt, c);
      else if (R == 3) sQ3(kt, c);
      else sQ4(kt, c);
    } else if (R == 1) sF1(kt, c);
    else if (R == 2) sF2(kt, c);
    else if (R == 3) sF3(kt, c);
    else sF4(kt, c);
    v128.store(stat, f32x4.splat(0), 16); // inverse sums of rows R..3 stay 0
    for (let i = 0; i < R; i++) {
      const m = load<f32>(stat + (<usize>i << 2));
      const sum = expRow(scores + ((<usize>i * <usize>nSlots) << 2), nSlots, m);
      store<f32>(stat + 16 + (<usize>i << 2), sum > 0 ? <f32>1 / sum : 0);
      if (ms) {
        store<f32>(ms + (<usize>(r + i) << 3), m);
        store<f32>(ms + (<usize>(r + i) << 3), sum, 4);
      }
    }
    store<usize>(c, probs ? probs + ((<usize>r * <usize>nSlots) << 2) : 0, CX_PROBS);
    store<usize>(c, vPay, CX_PAY);
    store<usize>(c, vSc, CX_SC);
    store<usize>(c, vZe, CX_ZE);
    store<i32>(c, vDesc, CX_DESC);
    memory.fill(acc, 0, <usize>R * rb);
    if (!vG) {
      if (R == 1) mO1(c);
      else if (R == 2) mO2(c);
      else if (R == 3) mO3(c);
      else mO4(c);
    } else if (R == 1) mG1(vt, c);
    else if (R == 2) mG2(vt, c);
    else if (R == 3) mG3(vt, c);
    else mG4(vt, c);
    memory.copy(out + <usize>r * rb, acc, <usize>R * rb);
    r += R;
  }
}
