// Four query rows at a time over int8/int4 rows (the common decode case: a GQA group of 4 heads
// over one KV head), without widening rows to an f32 buffer first (attend-block.ts does that for
// the other codecs). Codes are converted to f32 in registers (symmetric ones centred first, in
// the integer domain, so no large offset cancels in f32); everything that is per group is folded
// out of the per-element loops (u: the code, minus the offset when symmetric; m_g = 0 then):
//   q . k  = sum_g s_g * (q_g . u_g) + m_g * sum(q_g)
//   sum_j p_j v_j[i] = sum_j (p_j s_jg) u_ji + sum_j p_j m_jg   (i in group g)
// So each element costs a convert and, per query row, one multiply and one add; each group costs
// one scale multiply per row. The weighted sum is register-blocked: a block of slots is applied
// to 8 output columns of all 4 rows held in registers, so accumulators are not reloaded per slot.
// Needs groupSize % 16 == 0 and headDim % groupSize == 0 (see intBlockOk); q stays f32 (the
// attention tolerances are ~1e-5 relative, tighter than an int16 q would give).
import { unpack16, unpack8 } from "./codec-int";
import { f16ToF32 } from "./half";

/** Slots per block of the weighted sum (their per-group weights are staged in scratch). */
const JB = 8;

/** Whether the fused integer path handles this layout (int8/int4, whole groups of 16k elements). */
// @ts-ignore: decorator
@inline
export function intBlockOk(bits: i32, G: i32, d: i32): bool {
  return (bits == 8 || bits == 4) && G >= 16 && (G & 15) == 0 && d % G == 0;
}

/** Extra scratch bytes the fused path needs beyond attend.ts's own (per-group vectors, staged weights). */
export function intScratchBytes(d: i32): i32 {
  // attend.ts lays out q sums (4d bytes), zero terms (4d) and staged weights (JB * nG * 16 <= JB * d)
  return (8 + JB) * d + 64;
}

// @ts-ignore: decorator
@inline
function hsum(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(s, i32x4.shuffle(s, s, 1, 0, 3, 2)), 0);
}

/** Asymmetric zero-point m_g of one group. */
// @ts-ignore: decorator
@inline
function zeroOf(ze: usize): f32 {
  return f16ToF32(<u32>load<u16>(ze));
}

/** Codes in u8 lanes -> signed i8 lanes of (code - offset) for symmetric codes; as is otherwise. */
// @ts-ignore: decorator
@inline
function centre(bits: i32, sym: bool, c: v128): v128 {
  if (!sym) return c;
  // int8: code - 128 == code ^ 0x80 read as i8; int4: code - 8 in [-8, 7].
  return bits == 8 ? v128.xor(c, i8x16.splat(-128)) : i8x16.sub(c, i8x16.splat(8));
}

// Lanes 0-3 / 4-7 / 8-11 / 12-15 of centred codes -> f32x4 (signed when sym, else unsigned).
// @ts-ignore: decorator
@inline
function u0(sym: bool, c: v128): v128 {
  return sym
    ? f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(c)))
    : f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(c)));
}
// @ts-ignore: decorator
@inline
function u1(sym: bool, c: v128): v128 {
  return sym
    ? f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_low_i8x16_s(c)))
    : f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(i16x8.extend_low_i8x16_u(c)));
}
// @ts-ignore: decorator
@inline
function u2(sym: bool, c: v128): v128 {
  return sym
    ? f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_high_i8x16_s(c)))
    : f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_high_i8x16_u(c)));
}
// @ts-ignore: decorator
@inline
function u3(sym: bool, c: v128): v128 {
  return sym
    ? f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_high_i8x16_s(c)))
    : f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(i16x8.extend_high_i8x16_u(c)));
}

/**
 * scores (4, nSlots) = scale * q_r . k_j (-Inf where slotPos[j] > qPos_r) for q (4, d); row maxima
 * to maxes. qs: scratch for nG vectors (the 4 rows' sums of q per group).
 */
// @ts-ignore: decorator
@inline
function score4I(
  bits: i32,
  sym: bool,
  G: i32,
  d: i32,
  q: usize,
  qPos: usize,
  pay: usize,
  sc: usize,
  ze: usize,
  slotPos: usize,
  nSlots: i32,
  scale: f32,
  scores: usize,
  maxes: usize,
  qs: usize,
): void {
  const rb = <usize>d << 2;
  const q1 = q + rb;
  const q2 = q1 + rb;
  const q3 = q2 + rb;
  const nG = d / G;
  const rowBytes = <usize>((d * bits) >> 3);
  // qs[g] = (sum q_0g, sum q_1g, sum q_2g, sum q_3g), for the asymmetric zero-point term.
  const nQs = sym ? 0 : nG;
  for (let g = 0; g < nQs; g++) {
    let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), e = f32x4.splat(0);
    for (let i = g * G; i < (g + 1) * G; i += 4) {
      const o = <usize>i << 2;
      a = f32x4.add(a, v128.load(q + o));
      b = f32x4.add(b, v128.load(q1 + o));
      c = f32x4.add(c, v128.load(q2 + o));
      e = f32x4.add(e, v128.load(q3 + o));
    }
    let v = f32x4.splat(hsum(a));
    v = f32x4.replace_lane(v, 1, hsum(b));
    v = f32x4.replace_lane(v, 2, hsum(c));
    v = f32x4.replace_lane(v, 3, hsum(e));
    v128.store(qs + (<usize>g << 4), v);
  }
  const p0 = load<i32>(qPos);
  const p1 = load<i32>(qPos, 4);
  const p2 = load<i32>(qPos, 8);
  const p3 = load<i32>(qPos, 12);
  const pmax = max(max(p0, p1), max(p2, p3));
  const sb = <usize>nSlots << 2;
  let m0: f32 = -Infinity, m1: f32 = -Infinity, m2: f32 = -Infinity, m3: f32 = -Infinity;
  for (let j = 0; j < nSlots; j++) {
    const sp = load<i32>(slotPos + (<usize>j << 2));
    let s0: f32 = -Infinity, s1: f32 = -Infinity, s2: f32 = -Infinity, s3: f32 = -Infinity;
    if (sp <= pmax) {
      const row = pay + <usize>j * rowBytes;
      const gi = <usize>(j * nG) << 1;
      let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
      let zt = f32x4.splat(0);
      for (let g = 0; g < nG; g++) {
        // Two accumulators per row (even / odd quarter of each 16 codes) to halve add chains.
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
        for (let i = g * G; i < (g + 1) * G; i += 16) {
          const c = centre(bits, sym, unpack16(bits, row, <usize>i));
          const o = <usize>i << 2;
          let x = u0(sym, c);
          a0 = f32x4.add(a0, f32x4.mul(v128.load(q + o), x));
          a1 = f32x4.add(a1, f32x4.mul(v128.load(q1 + o), x));
          a2 = f32x4.add(a2, f32x4.mul(v128.load(q2 + o), x));
          a3 = f32x4.add(a3, f32x4.mul(v128.load(q3 + o), x));
          x = u1(sym, c);
          b0 = f32x4.add(b0, f32x4.mul(v128.load(q + o, 16), x));
          b1 = f32x4.add(b1, f32x4.mul(v128.load(q1 + o, 16), x));
          b2 = f32x4.add(b2, f32x4.mul(v128.load(q2 + o, 16), x));
          b3 = f32x4.add(b3, f32x4.mul(v128.load(q3 + o, 16), x));
          x = u2(sym, c);
          a0 = f32x4.add(a0, f32x4.mul(v128.load(q + o, 32), x));
          a1 = f32x4.add(a1, f32x4.mul(v128.load(q1 + o, 32), x));
          a2 = f32x4.add(a2, f32x4.mul(v128.load(q2 + o, 32), x));
          a3 = f32x4.add(a3, f32x4.mul(v128.load(q3 + o, 32), x));
          x = u3(sym, c);
          b0 = f32x4.add(b0, f32x4.mul(v128.load(q + o, 48), x));
          b1 = f32x4.add(b1, f32x4.mul(v128.load(q1 + o, 48), x));
          b2 = f32x4.add(b2, f32x4.mul(v128.load(q2 + o, 48), x));
          b3 = f32x4.add(b3, f32x4.mul(v128.load(q3 + o, 48), x));
        }
        const s = f16ToF32(<u32>load<u16>(sc + gi + (<usize>g << 1)));
        const vs = f32x4.splat(s);
        t0 = f32x4.add(t0, f32x4.mul(f32x4.add(a0, b0), vs));
        t1 = f32x4.add(t1, f32x4.mul(f32x4.add(a1, b1), vs));
        t2 = f32x4.add(t2, f32x4.mul(f32x4.add(a2, b2), vs));
        t3 = f32x4.add(t3, f32x4.mul(f32x4.add(a3, b3), vs));
        if (!sym) {
          const z = zeroOf(ze + gi + (<usize>g << 1));
          zt = f32x4.add(zt, f32x4.mul(v128.load(qs + (<usize>g << 4)), f32x4.splat(z)));
        }
      }
      if (sp <= p0) { s0 = (hsum(t0) + f32x4.extract_lane(zt, 0)) * scale; if (s0 > m0) m0 = s0; }
      if (sp <= p1) { s1 = (hsum(t1) + f32x4.extract_lane(zt, 1)) * scale; if (s1 > m1) m1 = s1; }
      if (sp <= p2) { s2 = (hsum(t2) + f32x4.extract_lane(zt, 2)) * scale; if (s2 > m2) m2 = s2; }
      if (sp <= p3) { s3 = (hsum(t3) + f32x4.extract_lane(zt, 3)) * scale; if (s3 > m3) m3 = s3; }
    }
    const o = scores + (<usize>j << 2);
    store<f32>(o, s0);
    store<f32>(o + sb, s1);
    store<f32>(o + 2 * sb, s2);
    store<f32>(o + 3 * sb, s3);
  }
  store<f32>(maxes, m0);
  store<f32>(maxes, m1, 4);
  store<f32>(maxes, m2, 8);
  store<f32>(maxes, m3, 12);
}

/**
 * acc (4, d) = sum_j p_rj v_j, p = e * inv per row (e: (4, nSlots)); writes probs (4 rows, stride
 * nSlots) when nonzero. ws: scratch for JB * nG staged weights; corr: nG per-group corrections.
 */
// @ts-ignore: decorator
@inline
function mix4I(
  bits: i32,
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
  ws: usize,
  corr: usize,
): void {
  const sb = <usize>nSlots << 2;
  const rb = <usize>d << 2;
  const nG = d / G;
  const rowBytes = <usize>((d * bits) >> 3);
  const inv = v128.load(invs);
  const zero = f32x4.splat(0);
  memory.fill(corr, 0, <usize>nG << 4);
  memory.fill(acc, 0, 4 * rb);
  for (let j0 = 0; j0 < nSlots; j0 += JB) {
    const nb = min(JB, nSlots - j0);
    // Stage ws[jj][g] = (p_0j s_jg, .., p_3j s_jg); corr[g] += p_j z_jg (4 rows as one vector).
    let any = false;
    for (let jj = 0; jj < nb; jj++) {
      const j = j0 + jj;
      const eo = e + (<usize>j << 2);
      let w = f32x4.splat(load<f32>(eo));
      w = f32x4.replace_lane(w, 1, load<f32>(eo + sb));
      w = f32x4.replace_lane(w, 2, load<f32>(eo + 2 * sb));
      w = f32x4.replace_lane(w, 3, load<f32>(eo + 3 * sb));
      w = f32x4.mul(w, inv);
      if (probs) {
        const po = probs + (<usize>j << 2);
        store<f32>(po, f32x4.extract_lane(w, 0));
        store<f32>(po + sb, f32x4.extract_lane(w, 1));
        store<f32>(po + 2 * sb, f32x4.extract_lane(w, 2));
        store<f32>(po + 3 * sb, f32x4.extract_lane(w, 3));
      }
      // Rows with zero weight (masked or underflowed) must add exactly nothing, even if a
      // group's f16 scale is Inf: 0 * Inf would be NaN, so zero weights stay zero.
      const nz = f32x4.ne(w, zero);
      any = any || v128.any_true(nz);
      const gi = <usize>(j * nG) << 1;
      for (let g = 0; g < nG; g++) {
        const s = f16ToF32(<u32>load<u16>(sc + gi + (<usize>g << 1)));
        v128.store(ws + (<usize>(jj * nG + g) << 4), v128.and(f32x4.mul(w, f32x4.splat(s)), nz));
        if (!sym) {
          const co = corr + (<usize>g << 4);
          const z = zeroOf(ze + gi + (<usize>g << 1));
          v128.store(co, f32x4.add(v128.load(co), v128.and(f32x4.mul(w, f32x4.splat(z)), nz)));
        }
      }
    }
    if (!any) continue;
    const blk = pay + <usize>j0 * rowBytes;
    // 8 output columns of the 4 rows in registers, the block's slots applied to them.
    for (let i = 0; i < d; i += 8) {
      const g = i / G;
      const o = <usize>i << 2;
      const a = acc + o;
      let a0 = v128.load(a), a1 = v128.load(a + rb), a2 = v128.load(a + 2 * rb), a3 = v128.load(a + 3 * rb);
      let b0 = v128.load(a, 16), b1 = v128.load(a + rb, 16), b2 = v128.load(a + 2 * rb, 16), b3 = v128.load(a + 3 * rb, 16);
      let wp = ws + (<usize>g << 4);
      let row = blk;
      for (let jj = 0; jj < nb; jj++) {
        const c = centre(bits, sym, unpack8(bits, row, <usize>i));
        const lo = u0(sym, c);
        const hi = u1(sym, c);
        const w = v128.load(wp);
        let vw = i32x4.shuffle(w, w, 0, 0, 0, 0);
        a0 = f32x4.add(a0, f32x4.mul(vw, lo));
        b0 = f32x4.add(b0, f32x4.mul(vw, hi));
        vw = i32x4.shuffle(w, w, 1, 1, 1, 1);
        a1 = f32x4.add(a1, f32x4.mul(vw, lo));
        b1 = f32x4.add(b1, f32x4.mul(vw, hi));
        vw = i32x4.shuffle(w, w, 2, 2, 2, 2);
        a2 = f32x4.add(a2, f32x4.mul(vw, lo));
        b2 = f32x4.add(b2, f32x4.mul(vw, hi));
        vw = i32x4.shuffle(w, w, 3, 3, 3, 3);
        a3 = f32x4.add(a3, f32x4.mul(vw, lo));
        b3 = f32x4.add(b3, f32x4.mul(vw, hi));
        wp += <usize>nG << 4;
        row += rowBytes;
      }
      v128.store(a, a0);
      v128.store(a + rb, a1);
      v128.store(a + 2 * rb, a2);
      v128.store(a + 3 * rb, a3);
      v128.store(a, b0, 16);
      v128.store(a + rb, b1, 16);
      v128.store(a + 2 * rb, b2, 16);
      v128.store(a + 3 * rb, b3, 16);
    }
  }
  // Per-group zero-point terms: the same constant for every column of group g in row r.
  if (sym) return;
  for (let g = 0; g < nG; g++) {
    const cv = v128.load(corr + (<usize>g << 4));
    const c0 = i32x4.shuffle(cv, cv, 0, 0, 0, 0);
    const c1 = i32x4.shuffle(cv, cv, 1, 1, 1, 1);
    const c2 = i32x4.shuffle(cv, cv, 2, 2, 2, 2);
    const c3 = i32x4.shuffle(cv, cv, 3, 3, 3, 3);
    for (let i = g * G; i < (g + 1) * G; i += 4) {
      const a = acc + (<usize>i << 2);
      v128.store(a, f32x4.add(v128.load(a), c0));
      v128.store(a + rb, f32x4.add(v128.load(a + rb), c1));
      v128.store(a + 2 * rb, f32x4.add(v128.load(a + 2 * rb), c2));
      v128.store(a + 3 * rb, f32x4.add(v128.load(a + 3 * rb), c3));
    }
  }
}

/** score4 for int8/int4 keys (bits 8 or 4, see intBlockOk); one specialisation per (bits, sym). */
export function score4Int(
  bits: i32,
  sym: bool,
  G: i32,
  d: i32,
  q: usize,
  qPos: usize,
  pay: usize,
  sc: usize,
  ze: usize,
  slotPos: usize,
  nSlots: i32,
  scale: f32,
  scores: usize,
  maxes: usize,
  qs: usize,
): void {
  if (bits == 8) {
    if (sym) score4I(8, true, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs);
    else score4I(8, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs);
  } else if (sym) score4I(4, true, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs);
  else score4I(4, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs);
}

/** mix4 for int8/int4 values (bits 8 or 4, see intBlockOk); zeroes acc itself. */
export function mix4Int(
  bits: i32,
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
  ws: usize,
  corr: usize,
): void {
  if (bits == 8) {
    if (sym) mix4I(8, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr);
    else mix4I(8, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr);
  } else if (sym) mix4I(4, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr);
  else mix4I(4, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr);
}
