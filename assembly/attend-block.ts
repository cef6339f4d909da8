// Four query rows at a time (GQA groups and prefill chunks): each stored K/V row is widened
// to f32 once into an L1-resident row buffer (headDim floats, bit-identical to the codec's
// decode) and then used by all four rows, so stored bytes are read and converted once per
// block instead of once per row. Single rows (decode of one token) use attend.ts's in-register path.
import { decodeFloatLoop } from "./codec-float";
import { decodeIntLoop } from "./codec-int";
import { turboDecodeRow, turboRowBytes } from "./codec-turbo";
import { hsum, madd } from "./simd";

/** Decode stored row j of variant v (see attend.ts variant()) into buf (headDim f32). */
// @ts-ignore: decorator
@inline
function decodeRow(v: i32, G: i32, d: i32, pay: usize, sc: usize, ze: usize, j: i32, buf: usize): void {
  if (v == 10) {
    // TurboQuant: G = lo | hi << 4, one f16 norm per row, ze = the codebook table (codec-turbo.ts)
    const lo = G & 15;
    const hi = G >> 4;
    turboDecodeRow(lo, hi, ze, d, pay + <usize>j * turboRowBytes(lo, hi, d), <u32>load<u16>(sc + (<usize>j << 1)), buf);
  } else if (v < 4) {
    const rowBytes = <usize>d << (v == 0 ? 2 : v == 3 ? 0 : 1);
    decodeFloatLoop(v, pay + <usize>j * rowBytes, d, buf);
  } else {
    const bits = v < 6 ? 8 : v < 8 ? 4 : 2;
    const sym = (v & 1) == 1;
    const rowBytes = <usize>((d * bits + 7) >> 3);
    const gi = <usize>(j * ((d + G - 1) / G)) << 1;
    decodeIntLoop(bits, sym, G, pay + <usize>j * rowBytes, sc + gi, ze + gi, 1, d, buf);
  }
}

/**
 * scores (4, nSlots) for query rows q (4, d): scale * q_r . k_j, -Inf where slotPos[j] > qPos_r.
 * Writes the 4 row maxima to maxes.
 */
// @ts-ignore: decorator
@inline
function score4(
  v: i32,
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
  kbuf: usize,
  maxes: usize,
): void {
  const rb = <usize>d << 2;
  const q1 = q + rb;
  const q2 = q1 + rb;
  const q3 = q2 + rb;
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
      decodeRow(v, G, d, pay, sc, ze, j, kbuf);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= d; i += 4) {
        const o = <usize>i << 2;
        const kv = v128.load(kbuf + o);
        a0 = madd(v128.load(q + o), kv, a0);
        a1 = madd(v128.load(q1 + o), kv, a1);
        a2 = madd(v128.load(q2 + o), kv, a2);
        a3 = madd(v128.load(q3 + o), kv, a3);
      }
      let t0 = hsum(a0), t1 = hsum(a1), t2 = hsum(a2), t3 = hsum(a3);
      for (; i < d; i++) {
        const o = <usize>i << 2;
        const kx = load<f32>(kbuf + o);
        t0 += load<f32>(q + o) * kx;
        t1 += load<f32>(q1 + o) * kx;
        t2 += load<f32>(q2 + o) * kx;
        t3 += load<f32>(q3 + o) * kx;
      }
      if (sp <= p0) { s0 = t0 * scale; if (s0 > m0) m0 = s0; }
      if (sp <= p1) { s1 = t1 * scale; if (s1 > m1) m1 = s1; }
      if (sp <= p2) { s2 = t2 * scale; if (s2 > m2) m2 = s2; }
      if (sp <= p3) { s3 = t3 * scale; if (s3 > m3) m3 = s3; }
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
 * acc (4, d) = sum_j p_rj * v_j with p = e * inv per row (e: (4, nSlots) unnormalised weights);
 * writes probs (4 rows with stride nSlots) when probs != 0.
 */
// @ts-ignore: decorator
@inline
function mix4(
  v: i32,
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
  vbuf: usize,
): void {
  const sb = <usize>nSlots << 2;
  const rb = <usize>d << 2;
  const i0 = load<f32>(invs);
  const i1 = load<f32>(invs, 4);
  const i2 = load<f32>(invs, 8);
  const i3 = load<f32>(invs, 12);
  for (let j = 0; j < nSlots; j++) {
    const eo = e + (<usize>j << 2);
    const w0 = load<f32>(eo) * i0;
    const w1 = load<f32>(eo + sb) * i1;
    const w2 = load<f32>(eo + 2 * sb) * i2;
    const w3 = load<f32>(eo + 3 * sb) * i3;
    if (probs) {
      const po = probs + (<usize>j << 2);
      store<f32>(po, w0);
      store<f32>(po + sb, w1);
      store<f32>(po + 2 * sb, w2);
      store<f32>(po + 3 * sb, w3);
    }
    if (w0 == 0 && w1 == 0 && w2 == 0 && w3 == 0) continue;
    decodeRow(v, G, d, pay, sc, ze, j, vbuf);
    const v0 = f32x4.splat(w0), v1 = f32x4.splat(w1), v2 = f32x4.splat(w2), v3 = f32x4.splat(w3);
    // A row whose weight is zero adds exactly nothing (0 * Inf would be NaN): masked products.
    const n0 = f32x4.ne(v0, f32x4.splat(0)), n1 = f32x4.ne(v1, f32x4.splat(0));
    const n2 = f32x4.ne(v2, f32x4.splat(0)), n3 = f32x4.ne(v3, f32x4.splat(0));
    let i = 0;
    for (; i + 4 <= d; i += 4) {
      const o = <usize>i << 2;
      const x = v128.load(vbuf + o);
      const a = acc + o;
      v128.store(a, f32x4.add(v128.load(a), v128.and(f32x4.mul(v0, x), n0)));
      v128.store(a + rb, f32x4.add(v128.load(a + rb), v128.and(f32x4.mul(v1, x), n1)));
      v128.store(a + 2 * rb, f32x4.add(v128.load(a + 2 * rb), v128.and(f32x4.mul(v2, x), n2)));
      v128.store(a + 3 * rb, f32x4.add(v128.load(a + 3 * rb), v128.and(f32x4.mul(v3, x), n3)));
    }
    for (; i < d; i++) {
      const o = <usize>i << 2;
      const x = load<f32>(vbuf + o);
      const a = acc + o;
      if (w0 != 0) store<f32>(a, load<f32>(a) + w0 * x);
      if (w1 != 0) store<f32>(a + rb, load<f32>(a + rb) + w1 * x);
      if (w2 != 0) store<f32>(a + 2 * rb, load<f32>(a + 2 * rb) + w2 * x);
      if (w3 != 0) store<f32>(a + 3 * rb, load<f32>(a + 3 * rb) + w3 * x);
    }
  }
}

export function score4Any(
  v: i32,
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
  kbuf: usize,
  maxes: usize,
): void {
  switch (v) {
    case 0: score4(0, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 1: score4(1, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 2: score4(2, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 3: score4(3, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 4: score4(4, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 5: score4(5, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 6: score4(6, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 7: score4(7, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 8: score4(8, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    case 10: score4(10, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes); break;
    default: score4(9, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, kbuf, maxes);
  }
}

export function mix4Any(
  v: i32,
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
  vbuf: usize,
): void {
  switch (v) {
    case 0: mix4(0, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 1: mix4(1, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 2: mix4(2, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 3: mix4(3, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 4: mix4(4, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 5: mix4(5, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 6: mix4(6, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 7: mix4(7, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 8: mix4(8, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    case 10: mix4(10, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf); break;
    default: mix4(9, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, vbuf);
  }
}
