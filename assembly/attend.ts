// Fused attention of query rows over one KV head's encoded rows (src/kernels/executor.ts AttendArgs).
// Scores are computed on the stored keys and the weighted sum on the stored values, widening
// codes to f32 in registers (integer codecs: per-group scale applied to a SIMD partial dot);
// no f32 copy of the cache is made. Two-pass stable softmax as in the reference.
import { codesHi, codesHiLo, codesLo, codesLoHi, getCode, unpack16, unpack8 } from "./codec-int";
import { mix4Any, score4Any } from "./attend-block";
import { FUSED_F16, FUSED_F32, fusedOk, fusedScratchBytes, mix4Fused, score4Fused } from "./attend-fused";
import { q8Ok, q8Scores, q8ScratchBytes } from "./attend-q8";
import { mixQ8w, q8wScratchBytes } from "./attend-q8w";
import { ggmlAttendRows, isGgml, rowBytesAny, scaleBytesAny, zeroBytesAny } from "./attend-ggml";
import { exp4 } from "./exp";
import { f16ToF32, KIND_INT, loadFloat1, loadFloat4 } from "./half";
import { hsum, madd } from "./simd";
import { KIND_TURBO, turboRowBytes } from "./codec-turbo";

/** Variant of the TurboQuant codecs (codec-turbo.ts): G carries lo | hi << 4, zeros the codebook table. */
const V_TURBO: i32 = 10;

/**
 * Flag in the value descriptor: cache option query: q8w, the softmax weights over int8 / int4
 * values rounded to q8_0 per block of 32 slots (attend-q8w.ts; src/quant/q8-weights.ts). The JS
 * side sets it only where attendRows takes that path (fused int8 / int4 values, keys not ggml).
 */
const Q8W_FLAG: i32 = 1 << 12;

/** Codec descriptor packed by the JS side: kind | bits << 4 | symmetric << 8 | groupSize << 16. */
// @ts-ignore: decorator
@inline
function variant(desc: i32): i32 {
  const kind = desc & 15;
  if (kind == KIND_TURBO) return V_TURBO;
  if (kind != KIND_INT) return kind; // 0..3
  const bits = (desc >> 4) & 15;
  const sym = (desc >> 8) & 1;
  return 4 + (bits == 8 ? 0 : bits == 4 ? 2 : 4) + sym; // 4..9
}

// ---- q . k for one stored key row ----

// @ts-ignore: decorator
@inline
function dotFloat(kind: i32, q: usize, row: usize, d: i32): f32 {
  let a = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= d; i += 4) a = madd(v128.load(q + (<usize>i << 2)), loadFloat4(kind, row, <usize>i), a);
  let t = hsum(a);
  for (; i < d; i++) t += load<f32>(q + (<usize>i << 2)) * loadFloat1(kind, row, <usize>i);
  return t;
}

// @ts-ignore: decorator
@inline
function dotInt(bits: i32, sym: bool, G: i32, q: usize, qsum: usize, p: usize, sc: usize, ze: usize, d: i32): f32 {
  const off = sym ? 1 << (bits - 1) : 0;
  let tot = f32x4.splat(0);
  let tail: f32 = 0;
  for (let g = 0, start = 0; start < d; g++, start += G) {
    const end = min(start + G, d);
    let a = f32x4.splat(0);
    let i = start;
    for (; i + 16 <= end; i += 16) {
      const c = unpack16(bits, p, <usize>i);
      const qi = q + (<usize>i << 2);
      a = madd(v128.load(qi), codesLo(c, off), a);
      a = madd(v128.load(qi, 16), codesLoHi(c, off), a);
      a = madd(v128.load(qi, 32), codesHiLo(c, off), a);
      a = madd(v128.load(qi, 48), codesHi(c, off), a);
    }
    if (i + 8 <= end) {
      const c = unpack8(bits, p, <usize>i);
      const qi = q + (<usize>i << 2);
      a = madd(v128.load(qi), codesLo(c, off), a);
      a = madd(v128.load(qi, 16), codesLoHi(c, off), a);
      i += 8;
    }
    let t: f32 = 0;
    for (; i < end; i++) t += load<f32>(q + (<usize>i << 2)) * <f32>(<i32>getCode(bits, p, <usize>i) - off);
    const s = f16ToF32(<u32>load<u16>(sc + (<usize>g << 1)));
    tot = madd(a, f32x4.splat(s), tot);
    tail += t * s;
    if (!sym) tail += f16ToF32(<u32>load<u16>(ze + (<usize>g << 1))) * load<f32>(qsum + (<usize>g << 2));
  }
  return hsum(tot) + tail;
}

/**
 * scores[j] = scale * q . k_j for visible slots (slotPos[j] <= qp), -Inf for masked ones.
 * Returns the max score. One specialisation per key variant (v is a constant after inlining).
 */
// @ts-ignore: decorator
@inline
function scoreRow(
  v: i32,
  G: i32,
  d: i32,
  q: usize,
  qsum: usize,
  pay: usize,
  sc: usize,
  ze: usize,
  slotPos: usize,
  nSlots: i32,
  qp: i32,
  scale: f32,
  scores: usize,
): f32 {
  const bits = v < 6 ? 8 : v < 8 ? 4 : 2;
  const sym = v >= 4 && (v & 1) == 1;
  const rowBytes: usize = v < 4 ? (<usize>d << (v == 0 ? 2 : v == 3 ? 0 : 1)) : <usize>((d * bits + 7) >> 3);
  const nG = v < 4 ? 0 : (d + G - 1) / G; // float codecs have no groups (G = 0)
  let max: f32 = -Infinity;
  for (let j = 0; j < nSlots; j++) {
    let s: f32 = -Infinity;
    if (load<i32>(slotPos + (<usize>j << 2)) <= qp) {
      const row = pay + <usize>j * rowBytes;
      if (v < 4) s = dotFloat(v, q, row, d) * scale;
      else {
        const gi = <usize>(j * nG) << 1;
        s = dotInt(bits, sym, G, q, qsum, row, sc + gi, ze + gi, d) * scale;
      }
      if (s > max) max = s;
    }
    store<f32>(scores + (<usize>j << 2), s);
  }
  return max;
}

function scoreRowAny(
  v: i32,
  G: i32,
  d: i32,
  q: usize,
  qsum: usize,
  pay: usize,
  sc: usize,
  ze: usize,
  slotPos: usize,
  nSlots: i32,
  qp: i32,
  scale: f32,
  scores: usize,
): f32 {
  switch (v) {
    case 0: return scoreRow(0, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 1: return scoreRow(1, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 2: return scoreRow(2, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 3: return scoreRow(3, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 4: return scoreRow(4, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 5: return scoreRow(5, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 6: return scoreRow(6, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 7: return scoreRow(7, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    case 8: return scoreRow(8, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
    default: return scoreRow(9, G, d, q, qsum, pay, sc, ze, slotPos, nSlots, qp, scale, scores);
  }
}

// ---- acc += p * v_j for one stored value row ----

// @ts-ignore: decorator
@inline
function axpyFloat(kind: i32, p: f32, row: usize, acc: usize, d: i32): void {
  const vp = f32x4.splat(p);
  let i = 0;
  for (; i + 4 <= d; i += 4) {
    const a = acc + (<usize>i << 2);
    v128.store(a, madd(vp, loadFloat4(kind, row, <usize>i), v128.load(a)));
  }
  for (; i < d; i++) {
    const a = acc + (<usize>i << 2);
    store<f32>(a, load<f32>(a) + p * loadFloat1(kind, row, <usize>i));
  }
}

// @ts-ignore: decorator
@inline
function axpyInt(bits: i32, sym: bool, G: i32, p: f32, row: usize, sc: usize, ze: usize, acc: usize, d: i32): void {
  const off = sym ? 1 << (bits - 1) : 0;
  for (let g = 0, start = 0; start < d; g++, start += G) {
    const end = min(start + G, d);
    const ps = p * f16ToF32(<u32>load<u16>(sc + (<usize>g << 1)));
    const pm: f32 = sym ? 0 : p * f16ToF32(<u32>load<u16>(ze + (<usize>g << 1)));
    const vps = f32x4.splat(ps);
    const vpm = f32x4.splat(pm);
    let i = start;
    for (; i + 16 <= end; i += 16) {
      const c = unpack16(bits, row, <usize>i);
      const a = acc + (<usize>i << 2);
      if (sym) {
        v128.store(a, madd(vps, codesLo(c, off), v128.load(a)));
        v128.store(a, madd(vps, codesLoHi(c, off), v128.load(a, 16)), 16);
        v128.store(a, madd(vps, codesHiLo(c, off), v128.load(a, 32)), 32);
        v128.store(a, madd(vps, codesHi(c, off), v128.load(a, 48)), 48);
      } else {
        v128.store(a, f32x4.add(v128.load(a), madd(vps, codesLo(c, 0), vpm)));
        v128.store(a, f32x4.add(v128.load(a, 16), madd(vps, codesLoHi(c, 0), vpm)), 16);
        v128.store(a, f32x4.add(v128.load(a, 32), madd(vps, codesHiLo(c, 0), vpm)), 32);
        v128.store(a, f32x4.add(v128.load(a, 48), madd(vps, codesHi(c, 0), vpm)), 48);
      }
    }
    if (i + 8 <= end) {
      const c = unpack8(bits, row, <usize>i);
      const a = acc + (<usize>i << 2);
      if (sym) {
        v128.store(a, madd(vps, codesLo(c, off), v128.load(a)));
        v128.store(a, madd(vps, codesLoHi(c, off), v128.load(a, 16)), 16);
      } else {
        v128.store(a, f32x4.add(v128.load(a), madd(vps, codesLo(c, 0), vpm)));
        v128.store(a, f32x4.add(v128.load(a, 16), madd(vps, codesLoHi(c, 0), vpm)), 16);
      }
      i += 8;
    }
    for (; i < end; i++) {
      const a = acc + (<usize>i << 2);
      store<f32>(a, load<f32>(a) + ps * <f32>(<i32>getCode(bits, row, <usize>i) - off) + pm);
    }
  }
}

/** acc (d) = sum_j probs_j * v_j over slots with nonzero probability; optionally writes probs. */
// @ts-ignore: decorator
@inline
function mixRow(
  v: i32,
  G: i32,
  d: i32,
  pay: usize,
  sc: usize,
  ze: usize,
  nSlots: i32,
  e: usize,
  inv: f32,
  probs: usize,
  acc: usize,
): void {
  const bits = v < 6 ? 8 : v < 8 ? 4 : 2;
  const sym = v >= 4 && (v & 1) == 1;
  const rowBytes: usize = v < 4 ? (<usize>d << (v == 0 ? 2 : v == 3 ? 0 : 1)) : <usize>((d * bits + 7) >> 3);
  const nG = v < 4 ? 0 : (d + G - 1) / G; // float codecs have no groups (G = 0)
  for (let j = 0; j < nSlots; j++) {
    const p = load<f32>(e + (<usize>j << 2)) * inv;
    if (probs) store<f32>(probs + (<usize>j << 2), p);
    if (p == 0) continue;
    const row = pay + <usize>j * rowBytes;
    if (v < 4) axpyFloat(v, p, row, acc, d);
    else {
      const gi = <usize>(j * nG) << 1;
      axpyInt(bits, sym, G, p, row, sc + gi, ze + gi, acc, d);
    }
  }
}

function mixRowAny(
  v: i32,
  G: i32,
  d: i32,
  pay: usize,
  sc: usize,
  ze: usize,
  nSlots: i32,
  e: usize,
  inv: f32,
  probs: usize,
  acc: usize,
): void {
  switch (v) {
    case 0: mixRow(0, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 1: mixRow(1, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 2: mixRow(2, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 3: mixRow(3, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 4: mixRow(4, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 5: mixRow(5, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 6: mixRow(6, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 7: mixRow(7, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    case 8: mixRow(8, G, d, pay, sc, ze, nSlots, e, inv, probs, acc); break;
    default: mixRow(9, G, d, pay, sc, ze, nSlots, e, inv, probs, acc);
  }
}

/** Bytes of scratch attend needs: scores (4, nSlots), accumulators (4, headDim), row buffers, padded q block, maxima. */
export function attendScratchBytes(nSlots: i32, headDim: i32): i32 {
  return ((4 * nSlots + 10 * headDim + 48) << 2) + fusedScratchBytes(headDim) + 5 * headDim + 48 + q8ScratchBytes(headDim) + q8wScratchBytes() + 16;
}

// @ts-ignore: decorator
@inline
function align16(p: usize): usize {
  return (p + 15) & ~(<usize>15);
}

/** Softmax weights in place: e_j = exp(s_j - max) (0 where masked); returns their sum (0 if none visible). */
// @ts-ignore: decorator
@inline
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
    const s = v128.load(sp);
    // Masked slots hold -Inf: exp4 of -Inf is 0 (its underflow branch).
    const e = exp4(f32x4.sub(s, vmax));
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

// @ts-ignore: decorator
@inline
function invOf(sum: f32): f32 {
  return sum > 0 ? <f32>1 / sum : 0;
}

/**
 * Attention of nRows query rows q (nRows, headDim) over nSlots encoded K/V rows.
 * kDesc/vDesc: codec descriptors (see variant). probs (nRows, nSlots) is written when nonzero.
 * scratch: attendScratchBytes(nSlots, headDim) bytes, 16-aligned, private to the calling thread.
 * Rows go four at a time (a last group of 3 padded to four): keys and values that are f32, f16,
 * int8 or int4 through attend-fused.ts (a group of 2 or a single row runs as a 2- or 1-row block
 * when both are), others through attend-block.ts; a single row of other codecs widens keys and
 * values in registers here. The fused f16 path gives up on Inf/NaN codes (or |q| >= 2^16): the
 * call is then redone with f16 on the exact generic paths.
 */
export function attend(
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
  qc: usize,
  qs: usize,
): void {
  if (!attendRows(true, kDesc, vDesc, d, q, qPos, nRows, kPay, kSc, kZe, vPay, vSc, vZe, slotPos, nSlots, scale, out, probs, scratch, 0, qc, qs))
    attendRows(false, kDesc, vDesc, d, q, qPos, nRows, kPay, kSc, kZe, vPay, vSc, vZe, slotPos, nSlots, scale, out, probs, scratch, 0, qc, qs);
}

/** Bytes of one stored row of variant v (attend.ts variant()) with head size d. */
// @ts-ignore: decorator
@inline
function rowBytesOf(v: i32, G: i32, d: i32): usize {
  if (v == V_TURBO) return turboRowBytes(G & 15, G >> 4, d);
  if (v < 4) return <usize>d << (v == 0 ? 2 : v == 3 ? 0 : 1);
  const bits = v < 6 ? 8 : v < 8 ? 4 : 2;
  return <usize>((d * bits + 7) >> 3);
}

/** Bytes of one stored row's group scales (or zero-points) of variant v: 2 per group, none for floats. */
// @ts-ignore: decorator
@inline
function groupBytesOf(v: i32, G: i32, d: i32): usize {
  return v < 4 ? 0 : <usize>(((d + G - 1) / G) << 1);
}

/** Bytes of one stored row's scales: a TurboQuant row has one f16 norm. */
// @ts-ignore: decorator
@inline
function scaleBytesOf(v: i32, G: i32, d: i32): usize {
  return v == V_TURBO ? 2 : groupBytesOf(v, G, d);
}

/** Bytes of one stored row's zero-points: none for TurboQuant (its zeros pointer is the codebook table). */
// @ts-ignore: decorator
@inline
function zeroBytesOf(v: i32, G: i32, d: i32): usize {
  return v == V_TURBO ? 0 : groupBytesOf(v, G, d);
}

/** Floats of one part written by attendPart: out (nRows, d), then (max, sum) per row. */
export function attendPartFloats(nRows: i32, d: i32): i32 {
  return nRows * d + 2 * nRows;
}

/**
 * Attention of all nRows query rows over slots [j0, j1) only (a split of the slot range across
 * threads: flash-decoding). Writes, at part: the rows' outputs over those slots (normalised by
 * their own softmax sum), then per row the max score and the sum of exp(s - max) (0 and -Inf
 * when no slot of the range is visible). attendMerge combines the parts. Other arguments as
 * attend; no probabilities (they need the global sums).
 */
export function attendPart(
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
  j0: i32,
  j1: i32,
  scale: f32,
  part: usize,
  scratch: usize,
  qc: usize,
  qs: usize,
): void {
  if (isGgml(kDesc) || isGgml(vDesc)) {
    // ggml block types on either side (attend-ggml.ts)
    const g = <usize>j0;
    ggmlAttendRows(kDesc, vDesc, d, q, qPos, nRows,
      kPay + g * rowBytesAny(kDesc, d), kSc + g * scaleBytesAny(kDesc, d), kZe + g * zeroBytesAny(kDesc, d),
      vPay + g * rowBytesAny(vDesc, d), vSc + g * scaleBytesAny(vDesc, d), vZe + g * zeroBytesAny(vDesc, d),
      slotPos + (g << 2), j1 - j0, scale, part, 0, scratch, part + ((<usize>nRows * <usize>d) << 2), qc, qs);
    return;
  }
  const kv = variant(kDesc);
  const vv = variant(vDesc);
  const kG = kDesc >>> 16;
  const vG = vDesc >>> 16;
  const n = j1 - j0;
  const j = <usize>j0;
  const kp = kPay + j * rowBytesOf(kv, kG, d);
  const ks = kSc + j * scaleBytesOf(kv, kG, d);
  const kz = kZe + j * zeroBytesOf(kv, kG, d);
  const vp = vPay + j * rowBytesOf(vv, vG, d);
  const vs = vSc + j * scaleBytesOf(vv, vG, d);
  const vz = vZe + j * zeroBytesOf(vv, vG, d);
  const sp = slotPos + (j << 2);
  const ms = part + ((<usize>nRows * <usize>d) << 2);
  if (!attendRows(true, kDesc, vDesc, d, q, qPos, nRows, kp, ks, kz, vp, vs, vz, sp, n, scale, part, 0, scratch, ms, qc, qs))
    attendRows(false, kDesc, vDesc, d, q, qPos, nRows, kp, ks, kz, vp, vs, vz, sp, n, scale, part, 0, scratch, ms, qc, qs);
}

/**
 * out (nRows, d) = the attention over all slots from nParts attendPart results at parts (each
 * attendPartFloats(nRows, d) floats): part t weighs sum_t * exp(max_t - max), normalised.
 */
export function attendMerge(parts: usize, nParts: i32, nRows: i32, d: i32, out: usize): void {
  const stride = <usize>attendPartFloats(nRows, d) << 2;
  const msOff = (<usize>nRows * <usize>d) << 2;
  for (let r = 0; r < nRows; r++) {
    let m: f32 = -Infinity;
    for (let t = 0; t < nParts; t++) m = max(m, load<f32>(parts + <usize>t * stride + msOff + (<usize>r << 3)));
    const o = out + ((<usize>r * <usize>d) << 2);
    memory.fill(o, 0, <usize>d << 2);
    if (m == -Infinity) continue; // no part saw a slot: zeros, as attend
    let total: f32 = 0;
    for (let t = 0; t < nParts; t++) {
      const pm = parts + <usize>t * stride + msOff + (<usize>r << 3);
      const sum = load<f32>(pm, 4);
      if (sum == 0) continue;
      const w = sum * Mathf.exp(load<f32>(pm) - m);
      total += w;
      const po = parts + <usize>t * stride + ((<usize>r * <usize>d) << 2);
      const vw = f32x4.splat(w);
      for (let i = 0; i < d; i += 4) {
        if (i + 4 <= d) v128.store(o + (<usize>i << 2), madd(vw, v128.load(po + (<usize>i << 2)), v128.load(o + (<usize>i << 2))));
        else for (let k = i; k < d; k++) store<f32>(o + (<usize>k << 2), load<f32>(o + (<usize>k << 2)) + w * load<f32>(po + (<usize>k << 2)));
      }
    }
    const inv = f32x4.splat(<f32>1 / total);
    for (let i = 0; i < d; i += 4) {
      if (i + 4 <= d) v128.store(o + (<usize>i << 2), f32x4.mul(inv, v128.load(o + (<usize>i << 2))));
      else for (let k = i; k < d; k++) store<f32>(o + (<usize>k << 2), load<f32>(o + (<usize>k << 2)) * f32x4.extract_lane(inv, 0));
    }
  }
}

function attendRows(
  fusedF16: bool,
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
): bool {
  if (isGgml(kDesc) || isGgml(vDesc)) {
    // ggml block types on either side (attend-ggml.ts)
    ggmlAttendRows(kDesc, vDesc, d, q, qPos, nRows, kPay, kSc, kZe, vPay, vSc, vZe, slotPos, nSlots, scale, out, probs, scratch, ms, qc, qs);
    return true;
  }
  const kv = variant(kDesc);
  const vv = variant(vDesc);
  const kG = kDesc >>> 16;
  const vG = vDesc >>> 16;
  const rb = <usize>d << 2;
  const scores = scratch; // (4, nSlots)
  const acc = align16(scores + (<usize>nSlots << 4)); // (4, d)
  const buf = align16(acc + 4 * rb); // (d) decoded K or V row
  const qsum = align16(buf + rb); // (nGroups) per-group sums of q
  const stat = align16(qsum + rb); // 4 maxima, 4 inverse sums
  const padQ = align16(stat + 32); // (4, d) a last block of 2-3 rows, padded by repeating its last row
  const padPos = padQ + 4 * rb; // (4) their positions
  // attend-fused.ts work areas: score (q sums, permuted q: 20d bytes), mix (zero terms, staged weights)
  const fusedK = align16(padPos + 16);
  const fusedV = align16(fusedK + 5 * rb);
  // query: q8 (qc, qs nonzero: the rows' int8 codes and block scales): a last block of 2-3 rows
  // padded like padQ, and the integer path's work area (attend-q8.ts)
  const padQc = align16(fusedV + <usize>fusedScratchBytes(d) - 5 * rb);
  const padQs = align16(padQc + 4 * <usize>d);
  const q8Work = align16(padQs + (<usize>d >> 1) + 16);
  const q8wWork = align16(q8Work + <usize>q8ScratchBytes(d)); // attend-q8w.ts
  // f32, f16, int8 and int4 rows (int groups of whole 16s) take the fused path of attend-fused.ts.
  const kKind = kv == 0 ? FUSED_F32 : kv == 1 && fusedF16 ? FUSED_F16 : kv >= 4 && kv < 8 ? (kv < 6 ? 8 : 4) : 0;
  const vKind = vv == 0 ? FUSED_F32 : vv == 1 && fusedF16 ? FUSED_F16 : vv >= 4 && vv < 8 ? (vv < 6 ? 8 : 4) : 0;
  const kFused = kKind != 0 && fusedOk(kKind, kG, d);
  const vFused = vKind != 0 && fusedOk(vKind, vG, d);
  const kSym = (kv & 1) == 1;
  const vSym = (vv & 1) == 1;
  const both = kFused && vFused;
  // Single rows over f32 keys and values: the in-register path below measured faster.
  // q8 query rows over int8/int4 keys: scores by integer dot products (attend-q8.ts)
  const kQ8 = qc != 0 && kFused && q8Ok(kKind, kG, d);
  // query: q8w over int8/int4 values: the weighted sum with q8_0 weights (attend-q8w.ts)
  const vQ8w = (vDesc & Q8W_FLAG) != 0 && vFused && (vKind == 8 || vKind == 4);
  const nB = d >> 5;
  const one = (both || ((kQ8 || vQ8w) && vFused)) && !(kKind == FUSED_F32 && vKind == FUSED_F32);
  // TurboQuant rows have no in-register single-row path: every block of rows goes through
  // attend-block.ts (padded to four), which decodes each stored row once through the codebook.
  const turbo = kv == V_TURBO || vv == V_TURBO;
  let r = 0;
  while (r < nRows) {
    const rows = min(4, nRows - r);
    if (rows == 1 && !one && !turbo) break; // the single-row loop below
    // A pair of rows (GQA groups of 2) or a single row runs as a 2- or 1-row block when both
    // paths are fused.
    // (a single row over keys without a fused path is padded to four: score4Any reads four)
    const R = turbo || (vQ8w && !kFused) ? 4 : rows == 1 ? 1 : rows == 2 && both ? 2 : 4;
    let qb = q + <usize>r * rb;
    let pb = qPos + (<usize>r << 2);
    let qcb = qc + <usize>r * <usize>d;
    let qsb = qs + ((<usize>r * <usize>nB) << 2);
    if (rows < R) {
      for (let i = 0; i < 4; i++) {
        const src = <usize>min(i, rows - 1);
        memory.copy(padQ + <usize>i * rb, qb + src * rb, rb);
        store<i32>(padPos + (<usize>i << 2), load<i32>(pb + (src << 2)));
        if (kQ8) {
          memory.copy(padQc + <usize>i * <usize>d, qcb + src * <usize>d, <usize>d);
          memory.copy(padQs + ((<usize>i * <usize>nB) << 2), qsb + ((src * <usize>nB) << 2), <usize>nB << 2);
        }
      }
      qb = padQ;
      pb = padPos;
      qcb = padQc;
      qsb = padQs;
    }
    if (kQ8) q8Scores(R, kKind, kSym, kG, d, qcb, qsb, pb, kPay, kSc, kZe, slotPos, nSlots, scale, scores, stat, q8Work);
    else if (kFused) {
      if (score4Fused(R, kKind, kSym, kG, d, qb, pb, kPay, kSc, kZe, slotPos, nSlots, scale, scores, stat, fusedK))
        return false;
    } else score4Any(kv, kG, d, qb, pb, kPay, kSc, kZe, slotPos, nSlots, scale, scores, buf, stat);
    v128.store(stat + 16, f32x4.splat(0)); // inverse sums of rows R..3 stay 0
    for (let i = 0; i < R; i++) {
      const m = load<f32>(stat + (<usize>i << 2));
      const sum = expRow(scores + ((<usize>i * <usize>nSlots) << 2), nSlots, m);
      store<f32>(stat + 16 + (<usize>i << 2), invOf(sum));
      if (ms && i < rows) {
        store<f32>(ms + (<usize>(r + i) << 3), m);
        store<f32>(ms + (<usize>(r + i) << 3), sum, 4);
      }
    }
    const probRow = probs ? probs + ((<usize>r * <usize>nSlots) << 2) : 0;
    const pr4 = rows == R ? probRow : 0;
    if (vQ8w) mixQ8w(R, vKind, vSym, vG, d, vPay, vSc, vZe, nSlots, scores, stat + 16, pr4, acc, q8wWork);
    else if (vFused) {
      if (mix4Fused(R, vKind, vSym, vG, d, vPay, vSc, vZe, nSlots, scores, stat + 16, pr4, acc, fusedV)) return false;
    } else {
      memory.fill(acc, 0, 4 * rb);
      mix4Any(vv, vG, d, vPay, vSc, vZe, nSlots, scores, stat + 16, pr4, acc, buf);
    }
    memory.copy(out + <usize>r * rb, acc, <usize>rows * rb);
    if (probRow && rows < R) {
      // Probabilities of the real rows only (the caller's probs has no room for padding rows).
      for (let i = 0; i < rows; i++) {
        const inv = load<f32>(stat + 16 + (<usize>i << 2));
        const e = scores + ((<usize>i * <usize>nSlots) << 2);
        const pr = probRow + ((<usize>i * <usize>nSlots) << 2);
        for (let j = 0; j < nSlots; j++) store<f32>(pr + (<usize>j << 2), load<f32>(e + (<usize>j << 2)) * inv);
      }
    }
    r += rows;
  }
  for (; r < nRows; r++) {
    const qRow = q + <usize>r * rb;
    if (kv >= 4 && (kv & 1) == 0) {
      // Asymmetric keys: q . (u * s + m) = s * (q . u) + m * sum(q) per group.
      for (let g = 0, start = 0; start < d; g++, start += kG) {
        const end = min(start + kG, d);
        let t: f32 = 0;
        for (let i = start; i < end; i++) t += load<f32>(qRow + (<usize>i << 2));
        store<f32>(qsum + (<usize>g << 2), t);
      }
    }
    const qp = load<i32>(qPos + (<usize>r << 2));
    const max = scoreRowAny(kv, kG, d, qRow, qsum, kPay, kSc, kZe, slotPos, nSlots, qp, scale, scores);
    const sum = expRow(scores, nSlots, max);
    const inv = invOf(sum);
    if (ms) {
      store<f32>(ms + (<usize>r << 3), max);
      store<f32>(ms + (<usize>r << 3), sum, 4);
    }
    memory.fill(acc, 0, rb);
    const probRow = probs ? probs + ((<usize>r * <usize>nSlots) << 2) : 0;
    mixRowAny(vv, vG, d, vPay, vSc, vZe, nSlots, scores, inv, probRow, acc);
    memory.copy(out + <usize>r * rb, acc, rb);
  }
  return true;
}
