// TurboQuant_prod (turbo3-qjl, turbo4-qjl; Zandieh et al. 2025, arXiv:2504.19874, Algorithm 2,
// with the QJL residual of Zandieh, Daliri, Han 2024, arXiv:2406.03482): a (b-1)-bit TurboQuant
// MSE code (codec-turbo.ts), then sign(S r) of the residual r and gamma = |r|. Encode and decode
// are bit-exact ports of src/quant/turboquant-qjl.ts (its f64 sums in element order). The
// table (src/kernels/wasm-turbo.ts) is the MSE codebook table, then S (d, d) f32 at +384.
//
// Attention never decodes the sketch: with x' = x_mse + c * S^T s (c = gamma sqrt(pi/2) / d),
//   keys:   q . x' = q . x_mse + c * (S q) . s        (S q once per query row)
//   values: sum_j p_j x'_j = sum_j p_j x_mse_j + S^T (sum_j p_j c_j s_j)   (S^T once per row)
// so a slot costs O(d) as for the MSE codecs; the other side may be any float, int or turbo codec.
import { decodeFloatLoop } from "./codec-float";
import { decodeIntLoop } from "./codec-int";
import { turboDecodeRow, turboEncodeRow, turboRowBytes } from "./codec-turbo";
import { f16ToF32, f32ToF16 } from "./half";
import { hsum } from "./simd";

export const KIND_TURBO_QJL: i32 = 7;
const S_OFF: usize = 384;
const SQRT_HALF_PI: f64 = Math.sqrt(Math.PI / 2); // as the reference computes it

// @ts-ignore: decorator
@inline
function al(p: usize): usize {
  return (p + 15) & ~(<usize>15);
}

// @ts-ignore: decorator
@inline
function signBytes(d: i32): usize {
  return <usize>((d + 7) >> 3);
}

/** Payload bytes of one row: the MSE codes, then the d sign bits. */
// @ts-ignore: decorator
@inline
export function qjlRowBytes(lo: i32, hi: i32, d: i32): usize {
  return turboRowBytes(lo, hi, d) + signBytes(d);
}

/**
 * Encode nRows rows (nRows, d) f32 at src: payload rows (qjlRowBytes), scales 2 f16 per row
 * (norm, gamma). work: d f32 + d f64 (16-aligned). stats: {nonFinite, saturated}.
 */
export function encodeTurboQjl(lo: i32, hi: i32, table: usize, src: usize, nRows: i32, d: i32, payload: usize, scales: usize, stats: usize, work: usize): void {
  const rb = qjlRowBytes(lo, hi, d);
  const mb = turboRowBytes(lo, hi, d);
  const S = table + S_OFF;
  const xm = work;
  const r = (work + (<usize>d << 2) + 15) & ~(<usize>15);
  let nonFinite = 0;
  let saturated = 0;
  for (let k = 0; k < nRows; k++) {
    const x = src + ((<usize>k * <usize>d) << 2);
    const row = payload + <usize>k * rb;
    const sc = scales + (<usize>k << 2);
    const st = turboEncodeRow(lo, hi, table, x, d, row, sc);
    nonFinite += st & 0xffff;
    saturated += st >>> 16;
    turboDecodeRow(lo, hi, table, d, row, <u32>load<u16>(sc), xm);
    let g: f64 = 0;
    for (let i = 0; i < d; i++) {
      const xi = load<f32>(x + (<usize>i << 2));
      const ri: f64 = xi - xi == 0 ? <f64>xi - <f64>load<f32>(xm + (<usize>i << 2)) : 0;
      store<f64>(r + (<usize>i << 3), ri);
      g += ri * ri;
    }
    g = Math.sqrt(g);
    let gb = f32ToF16(<f32>g);
    if (g > 65504 || (gb & 0x7c00) == 0x7c00) gb = 0x7bff;
    store<u16>(sc, <u16>gb, 2);
    const sb = row + mb;
    memory.fill(sb, 0, signBytes(d));
    for (let j = 0; j < d; j++) {
      let p: f64 = 0;
      const sr = S + ((<usize>j * <usize>d) << 2);
      for (let i = 0; i < d; i++) p += <f64>load<f32>(sr + (<usize>i << 2)) * load<f64>(r + (<usize>i << 3));
      if (p >= 0) store<u8>(sb + (<usize>j >> 3), <u8>(<i32>load<u8>(sb + (<usize>j >> 3)) | (1 << (j & 7))));
    }
  }
  store<i32>(stats, nonFinite);
  store<i32>(stats, saturated, 4);
}

/** Decode nRows rows into out (nRows, d) f32, as the reference: x_mse + fround(c * (S^T s)_i). */
export function decodeTurboQjl(lo: i32, hi: i32, table: usize, payload: usize, scales: usize, nRows: i32, d: i32, out: usize): void {
  const rb = qjlRowBytes(lo, hi, d);
  const mb = turboRowBytes(lo, hi, d);
  const S = table + S_OFF;
  for (let k = 0; k < nRows; k++) {
    const row = payload + <usize>k * rb;
    const sc = scales + (<usize>k << 2);
    const o = out + ((<usize>k * <usize>d) << 2);
    turboDecodeRow(lo, hi, table, d, row, <u32>load<u16>(sc), o);
    const gamma = <f64>f16ToF32(<u32>load<u16>(sc, 2));
    if (gamma == 0) continue;
    const c = (gamma * SQRT_HALF_PI) / <f64>d;
    const sb = row + mb;
    for (let i = 0; i < d; i++) {
      let acc: f64 = 0;
      for (let j = 0; j < d; j++) {
        const s: f64 = (load<u8>(sb + (<usize>j >> 3)) >> (j & 7)) & 1 ? 1 : -1;
        acc += <f64>load<f32>(S + ((<usize>(j * d + i)) << 2)) * s;
      }
      const oi = o + (<usize>i << 2);
      store<f32>(oi, load<f32>(oi) + <f32>(c * acc));
    }
  }
}

/** sum_k s_k v_k for the d signs at sb (bit set = +1) and f32 v. */
// @ts-ignore: decorator
@inline
function signDot(sb: usize, v: usize, d: i32): f32 {
  const b0 = i32x4(1, 2, 4, 8);
  const b1 = i32x4(16, 32, 64, 128);
  let a = f32x4.splat(0);
  let k = 0;
  for (; k + 8 <= d; k += 8) {
    const byte = i32x4.splat(<i32>load<u8>(sb + (<usize>k >> 3)));
    const x0 = v128.load(v + (<usize>k << 2));
    const x1 = v128.load(v + (<usize>k << 2), 16);
    a = f32x4.add(a, v128.bitselect(x0, f32x4.neg(x0), i32x4.ne(v128.and(byte, b0), i32x4.splat(0))));
    a = f32x4.add(a, v128.bitselect(x1, f32x4.neg(x1), i32x4.ne(v128.and(byte, b1), i32x4.splat(0))));
  }
  let t = hsum(a);
  for (; k < d; k++) {
    const x = load<f32>(v + (<usize>k << 2));
    t += (load<u8>(sb + (<usize>k >> 3)) >> (k & 7)) & 1 ? x : -x;
  }
  return t;
}

/** out (d) = M x for an f32 (d, d) row-major M (transposed: M^T x when `t`). */
// @ts-ignore: decorator
@inline
function matVec(M: usize, x: usize, d: i32, out: usize, t: bool): void {
  if (!t) {
    for (let k = 0; k < d; k++) {
      const row = M + ((<usize>k * <usize>d) << 2);
      let a = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= d; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(row + (<usize>i << 2)), v128.load(x + (<usize>i << 2))));
      let s = hsum(a);
      for (; i < d; i++) s += load<f32>(row + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
      store<f32>(out + (<usize>k << 2), s);
    }
    return;
  }
  memory.fill(out, 0, <usize>d << 2);
  for (let k = 0; k < d; k++) {
    const row = M + ((<usize>k * <usize>d) << 2);
    const w = load<f32>(x + (<usize>k << 2));
    if (w == 0) continue;
    const vw = f32x4.splat(w);
    let i = 0;
    for (; i + 4 <= d; i += 4) {
      const o = out + (<usize>i << 2);
      v128.store(o, f32x4.add(v128.load(o), f32x4.mul(vw, v128.load(row + (<usize>i << 2)))));
    }
    for (; i < d; i++) store<f32>(out + (<usize>i << 2), load<f32>(out + (<usize>i << 2)) + w * load<f32>(row + (<usize>i << 2)));
  }
}

/** Bytes per row and scale bytes per row of a descriptor's codec (float 0-3, int 4, turbo 5, qjl 7). */
// @ts-ignore: decorator
@inline
function rowBytes(desc: i32, d: i32): usize {
  const kind = desc & 15;
  if (kind < 4) return <usize>d << (kind == 0 ? 2 : kind == 3 ? 0 : 1);
  if (kind == 4) return <usize>((d * ((desc >> 4) & 15) + 7) >> 3);
  const lo = (desc >> 16) & 15;
  const hi = (desc >> 20) & 15;
  return kind == 5 ? turboRowBytes(lo, hi, d) : qjlRowBytes(lo, hi, d);
}

/** Decode row j of a non-QJL codec (float, int, turbo) into buf. */
// @ts-ignore: decorator
@inline
function decodeOther(desc: i32, d: i32, pay: usize, sc: usize, ze: usize, j: i32, buf: usize): void {
  const kind = desc & 15;
  const row = pay + <usize>j * rowBytes(desc, d);
  if (kind < 4) decodeFloatLoop(kind, row, d, buf);
  else if (kind == 4) {
    const G = desc >>> 16;
    const gi = <usize>(j * ((d + G - 1) / G)) << 1;
    decodeIntLoop((desc >> 4) & 15, ((desc >> 8) & 1) == 1, G, row, sc + gi, ze + gi, 1, d, buf);
  } else turboDecodeRow((desc >> 16) & 15, (desc >> 20) & 15, ze, d, row, <u32>load<u16>(sc + (<usize>j << 1)), buf);
}

/** Scratch bytes of attendTurboQjl. */
export function attendQjlScratchBytes(nSlots: i32, d: i32): i32 {
  return (nSlots << 2) + 5 * (d << 2) + 96;
}

/**
 * Attention of nRows query rows over nSlots rows whose keys and/or values are TurboQuant_prod
 * (descriptors kind 7: lo/hi MSE bits at 16/20; the zeros pointer of a QJL or turbo side is its
 * table). Arguments as attend.ts attend; scratch: attendQjlScratchBytes. One row at a time,
 * two-pass softmax.
 */
export function attendTurboQjl(
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
): void {
  const kq = (kDesc & 15) == KIND_TURBO_QJL;
  const vq = (vDesc & 15) == KIND_TURBO_QJL;
  const rb = <usize>d << 2;
  const scores = al(scratch);
  const buf = al(scores + (<usize>nSlots << 2));
  const sq = al(buf + rb);
  const w = al(sq + rb);
  const acc = al(w + rb);
  const kLo = (kDesc >> 16) & 15;
  const kHi = (kDesc >> 20) & 15;
  const vLo = (vDesc >> 16) & 15;
  const vHi = (vDesc >> 20) & 15;
  const kRb = rowBytes(kDesc, d);
  const vRb = rowBytes(vDesc, d);
  const kMb = turboRowBytes(kLo, kHi, d);
  const vMb = turboRowBytes(vLo, vHi, d);
  const cd: f32 = <f32>(SQRT_HALF_PI / <f64>d);
  for (let r = 0; r < nRows; r++) {
    const qr = q + <usize>r * rb;
    const qp = load<i32>(qPos + (<usize>r << 2));
    if (kq) matVec(kZe + S_OFF, qr, d, sq, false);
    let max: f32 = -Infinity;
    for (let j = 0; j < nSlots; j++) {
      let s: f32 = -Infinity;
      if (load<i32>(slotPos + (<usize>j << 2)) <= qp) {
        let t: f32;
        if (kq) {
          const row = kPay + <usize>j * kRb;
          turboDecodeRow(kLo, kHi, kZe, d, row, <u32>load<u16>(kSc + (<usize>j << 2)), buf);
          t = dotF32(qr, buf, d);
          const gamma = f16ToF32(<u32>load<u16>(kSc + (<usize>j << 2), 2));
          if (gamma != 0) t += gamma * cd * signDot(row + kMb, sq, d);
        } else {
          decodeOther(kDesc, d, kPay, kSc, kZe, j, buf);
          t = dotF32(qr, buf, d);
        }
        s = t * scale;
        if (s > max) max = s;
      }
      store<f32>(scores + (<usize>j << 2), s);
    }
    let sum: f32 = 0;
    for (let j = 0; j < nSlots; j++) {
      const sp = scores + (<usize>j << 2);
      const s = load<f32>(sp);
      const e: f32 = s == -Infinity ? 0 : Mathf.exp(s - max);
      store<f32>(sp, e);
      sum += e;
    }
    const inv: f32 = sum > 0 ? <f32>1 / sum : 0;
    memory.fill(acc, 0, rb);
    if (vq) memory.fill(w, 0, rb);
    for (let j = 0; j < nSlots; j++) {
      const p = load<f32>(scores + (<usize>j << 2)) * inv;
      if (probs) store<f32>(probs + ((<usize>r * <usize>nSlots + <usize>j) << 2), p);
      if (p == 0) continue;
      if (vq) {
        const row = vPay + <usize>j * vRb;
        turboDecodeRow(vLo, vHi, vZe, d, row, <u32>load<u16>(vSc + (<usize>j << 2)), buf);
        const gamma = f16ToF32(<u32>load<u16>(vSc + (<usize>j << 2), 2));
        if (gamma != 0) {
          const c = p * gamma * cd;
          const sb = row + vMb;
          for (let k = 0; k < d; k++) {
            const wk = w + (<usize>k << 2);
            store<f32>(wk, load<f32>(wk) + ((load<u8>(sb + (<usize>k >> 3)) >> (k & 7)) & 1 ? c : -c));
          }
        }
      } else decodeOther(vDesc, d, vPay, vSc, vZe, j, buf);
      axpy(p, buf, acc, d);
    }
    if (vq) {
      matVec(vZe + S_OFF, w, d, buf, true);
      axpy(1, buf, acc, d);
    }
    memory.copy(out + <usize>r * rb, acc, rb);
  }
}

// @ts-ignore: decorator
@inline
function dotF32(a: usize, b: usize, d: i32): f32 {
  let v = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= d; i += 4) v = f32x4.add(v, f32x4.mul(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  let t = hsum(v);
  for (; i < d; i++) t += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return t;
}

// @ts-ignore: decorator
@inline
function axpy(p: f32, x: usize, acc: usize, d: i32): void {
  const vp = f32x4.splat(p);
  let i = 0;
  for (; i + 4 <= d; i += 4) {
    const a = acc + (<usize>i << 2);
    v128.store(a, f32x4.add(v128.load(a), f32x4.mul(vp, v128.load(x + (<usize>i << 2)))));
  }
  for (; i < d; i++) store<f32>(acc + (<usize>i << 2), load<f32>(acc + (<usize>i << 2)) + p * load<f32>(x + (<usize>i << 2)));
}
