// Blocks of 4, 2 or 1 query rows (a GQA group of heads over one KV head; 1 row: decoding without
// GQA) over f32, f16, int8 and int4 rows, without widening each row into an f32 buffer first
// (attend-block.ts does that for the other codecs). Codes are converted to f32 in registers
// (symmetric ones centred first in the integer domain, so no large offset cancels in f32) and
// everything that is per group is folded out of the per-element loops (u: the code, minus the
// offset when symmetric; m_g: the asymmetric zero-point, 0 when symmetric):
//   q . k            = sum_g s_g * (q_g . u_g) + m_g * sum(q_g)
//   sum_j p_j v_j[i] = sum_j (p_j s_jg) u_ji + sum_j p_j m_jg      (i in group g)
// So an element costs a convert and, per query row, one multiply and one add; a group costs one
// scale multiply per row. The weighted sum is register-blocked: a block of slots is applied to 8
// output columns of all 4 rows held in registers, so accumulators are not reloaded per slot.
// int4 is used in storage order: each byte's low nibbles (even elements) and high nibbles (odd
// elements) are widened as they lie, without interleaving them back; q is permuted once per call
// to match (a dot product does not care about order) and the weighted sum is un-permuted once at
// the end. q stays f32: the attention tolerances (~1e-5 relative) are tighter than int16 q gives.
// f16 is widened with integer ops only (cvH: sign and exponent-mantissa moved into f32 bits),
// which gives value * 2^-112 exactly for every finite f16 (normal or subnormal); the 2^112 is
// folded into q (scores) and into the staged weights (weighted sum), both exact power-of-two
// scalings, so every product equals the one on decoded rows. Inf/NaN codes (exponent 31) would
// widen to wrong finite values: they are tracked per call (hMark) and the caller reruns the call
// on the exact generic path when any was read (or when |q| >= 2^16 would overflow the scaled q).
import { f16ToF32, f16x4ToF32 } from "./half";
import { hsum, hsum4, madd } from "./simd";

/** Row kinds of this file: f32 rows, f16 rows, or int codes of 8 or 4 bits. */
export const FUSED_F32: i32 = 32;
export const FUSED_F16: i32 = 16;

/** Slots per block of the weighted sum (their per-group weights are staged in scratch). */
const JB = 8;

/**
 * f32 loops touch the rows they will read next from inside their multiply-add loops (one 32-byte
 * step per iteration) rather than in a burst before them: only in the relaxed build, whose
 * multiply-adds are FMAs. In the baseline build mul + add needs a register for the product, and
 * the touch vector and pointer made Node 20's V8 spill an accumulator (score) or the touch
 * vector (weighted sum) inside the loop: 1.2x the call time there.
 */
const TOUCH_IN_LOOP: bool = ASC_FEATURE_RELAXED_SIMD;

/**
 * Whether the fused path handles rows of this kind (FUSED_F32, FUSED_F16, 8 or 4) with group
 * size G: int groups must be whole multiples of 16 elements; float rows need headDim % 16 == 0.
 */
// @ts-ignore: decorator
@inline
export function fusedOk(kind: i32, G: i32, d: i32): bool {
  if (kind == FUSED_F32 || kind == FUSED_F16) return (d & 15) == 0 && d > 0;
  return (kind == 8 || kind == 4) && G >= 16 && (G & 15) == 0 && d % G == 0;
}

/**
 * Scratch bytes the fused path needs beyond attend.ts's own: a permuted copy of the q block
 * (16d), per-group q sums (4d), per-group zero terms (4d), staged weight splats
 * (JB * nG * 64 <= 4 * JB * d), the block's zero-term splats (nG * 64 <= 4d)
 * and the block's slot indices.
 */
export function fusedScratchBytes(d: i32): i32 {
  return (28 + 4 * JB) * d + 4 * JB + 128;
}

// @ts-ignore: decorator
@inline
function f16At(p: usize): f32 {
  return f16ToF32(<u32>load<u16>(p));
}

/**
 * The nG f16 values at p (one row's group scales or zero-points) as f32 at dst: four at a time
 * in SIMD (f16x4ToF32 is f16ToF32 lane-wise), reading exactly nG * 2 bytes.
 */
// @ts-ignore: decorator
@inline
function f16Row(p: usize, nG: i32, dst: usize): void {
  let g = 0;
  for (; g + 4 <= nG; g += 4)
    v128.store(dst + (<usize>g << 2), f16x4ToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(p + (<usize>g << 1)))));
  if (g + 2 <= nG) {
    const h = i32x4.extend_low_i16x8_u(v128.load32_zero(p + (<usize>g << 1)));
    v128.store64_lane(dst + (<usize>g << 2), f16x4ToF32(h), 0);
    g += 2;
  }
  for (; g < nG; g++) store<f32>(dst + (<usize>g << 2), f16At(p + (<usize>g << 1)));
}

/**
 * i16 lanes (each one code, centred when sym) 0-3 or 4-7 -> f32x4. Always the signed convert:
 * the codes fit in i32 either way, and x86 before AVX-512 has no unsigned one (V8 emulates it).
 */
// @ts-ignore: decorator
@inline
function cvLo(sym: bool, w: v128): v128 {
  return f32x4.convert_i32x4_s(sym ? i32x4.extend_low_i16x8_s(w) : i32x4.extend_low_i16x8_u(w));
}
// @ts-ignore: decorator
@inline
function cvHi(sym: bool, w: v128): v128 {
  return f32x4.convert_i32x4_s(sym ? i32x4.extend_high_i16x8_s(w) : i32x4.extend_high_i16x8_u(w));
}

/** 8 int8 codes at p -> i16 lanes (code - 128 when symmetric). */
// @ts-ignore: decorator
@inline
function w8(sym: bool, p: usize, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  const c = v128.load64_zero(p);
  return sym ? i16x8.extend_low_i8x16_s(v128.xor(c, c80)) : i16x8.extend_low_i8x16_u(c);
}

/** Low / high nibbles of the bytes in u16 lanes b -> i16 lanes (code - 8 when symmetric). */
// @ts-ignore: decorator
@inline
function nibLo(sym: bool, b: v128, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  const l = v128.and(b, c0f);
  return sym ? i16x8.sub(l, c08) : l;
}
// @ts-ignore: decorator
@inline
function nibHi(sym: bool, b: v128, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  const h = i16x8.shr_u(b, 4);
  return sym ? i16x8.sub(h, c08) : h;
}

/**
 * q block (4, d) permuted to int4 storage order into dst: per 16 elements, the 8 even ones then
 * the 8 odd ones (the low and high nibbles of 8 bytes).
 */
// @ts-ignore: decorator
@inline
function permuteQ(q: usize, R: i32, d: i32, dst: usize): void {
  for (let i = 0; i < R * d; i += 16) {
    const o = <usize>i << 2;
    const a = v128.load(q + o);
    const b = v128.load(q + o, 16);
    const c = v128.load(q + o, 32);
    const e = v128.load(q + o, 48);
    v128.store(dst + o, i32x4.shuffle(a, b, 0, 2, 4, 6));
    v128.store(dst + o, i32x4.shuffle(c, e, 0, 2, 4, 6), 16);
    v128.store(dst + o, i32x4.shuffle(a, b, 1, 3, 5, 7), 32);
    v128.store(dst + o, i32x4.shuffle(c, e, 1, 3, 5, 7), 48);
  }
}

/** Lanes 0..R-1 of w, each splat to a vector, at p (R vectors). */
// @ts-ignore: decorator
@inline
function stageSplats(R: i32, p: usize, w: v128): void {
  v128.store(p, i32x4.shuffle(w, w, 0, 0, 0, 0));
  v128.store(p, i32x4.shuffle(w, w, 1, 1, 1, 1), 16);
  if (R == 4) {
    v128.store(p, i32x4.shuffle(w, w, 2, 2, 2, 2), 32);
    v128.store(p, i32x4.shuffle(w, w, 3, 3, 3, 3), 48);
  }
}

// Splatted constants of the inner loops, loaded from memory once per call into locals: V8
// rebuilds a v128.const from immediates (several instructions) at every use inside a loop.
const AK: usize = memory.data<u32>(
  [
    0x80808080, 0x80808080, 0x80808080, 0x80808080, // 0: i8 -128 (int8 centring)
    0x000f000f, 0x000f000f, 0x000f000f, 0x000f000f, // 16: i16 15 (int4 nibble mask)
    0x00080008, 0x00080008, 0x00080008, 0x00080008, // 32: i16 8 (int4 centring)
    0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, // 48: f16 sign and exponent-mantissa (cvH)
    0xff800000, 0xff800000, 0xff800000, 0xff800000, // 64: f32 -Infinity (masked scores)
  ],
  16,
);

/** 2^112: f16 bits moved into f32 position (cvH) read as value * 2^-112. */
// @ts-ignore: decorator
@inline
function two112(): v128 {
  return i32x4.splat(0x77800000);
}

/**
 * f16 codes sign-extended to i32 lanes -> f32 lanes holding value * 2^-112, exactly: sign to bit
 * 31, exponent and mantissa to bits 27..13 (the sign copies in bits 30..28 masked off). Finite
 * f16 only (exponent 31 comes out finite and wrong: see hMark).
 */
// @ts-ignore: decorator
@inline
function cvH(w: v128, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  return v128.and(i32x4.shl(w, 13), cH);
}

/** Tracks Inf/NaN among 8 f16 codes h: their exponent field is all ones iff (h << 1) >= 0xf800. */
// @ts-ignore: decorator
@inline
function hMark(m: v128, h: v128): v128 {
  return i16x8.max_u(m, i16x8.shl(h, 1));
}

// @ts-ignore: decorator
@inline
function hBad(m: v128): bool {
  return v128.any_true(i16x8.ge_u(m, i16x8.splat(<i16>0xf800)));
}

/** dst (R, d) = q * 2^112 (exact); false when some |q| >= 2^16 (or is NaN), which could overflow. */
// @ts-ignore: decorator
@inline
function scaleQ(q: usize, R: i32, d: i32, dst: usize): bool {
  const s = two112();
  const lim = f32x4.splat(65536);
  let ok = i32x4.splat(-1);
  for (let i = 0; i < R * d; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(q + o);
    ok = v128.and(ok, f32x4.lt(f32x4.abs(x), lim));
    v128.store(dst + o, f32x4.mul(x, s));
  }
  return i32x4.all_true(ok);
}

/**
 * Columns i..i+7 of a stored row, packed: f16 (8 codes), int8 (i16 lanes, centred when sym),
 * int4 (4 bytes widened to u16 lanes). Not for f32 (colsLo/colsHi load those directly).
 */
// @ts-ignore: decorator
@inline
function colsRaw(kind: i32, sym: bool, row: usize, i: i32, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  if (kind == FUSED_F16) return v128.load(row + (<usize>i << 1));
  if (kind == 8) return w8(sym, row + <usize>i, c80, c0f, c08, cH);
  // 4 bytes: elements i, i+2, i+4, i+6 (low nibbles) and i+1, .., i+7 (high nibbles).
  return i16x8.extend_low_i8x16_u(v128.load32_zero(row + (<usize>i >> 1)));
}

/** The first / second f32x4 of columns i..i+7 (int4: the even / odd elements). */
// @ts-ignore: decorator
@inline
function colsLo(kind: i32, sym: bool, row: usize, i: i32, raw: v128, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  if (kind == FUSED_F32) return v128.load(row + (<usize>i << 2));
  if (kind == FUSED_F16) return cvH(i32x4.extend_low_i16x8_s(raw), c80, c0f, c08, cH);
  if (kind == 8) return cvLo(sym, raw);
  return cvLo(sym, nibLo(sym, raw, c80, c0f, c08, cH));
}
// @ts-ignore: decorator
@inline
function colsHi(kind: i32, sym: bool, row: usize, i: i32, raw: v128, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  if (kind == FUSED_F32) return v128.load(row + (<usize>i << 2), 16);
  if (kind == FUSED_F16) return cvH(i32x4.extend_high_i16x8_s(raw), c80, c0f, c08, cH);
  if (kind == 8) return cvHi(sym, raw);
  return cvLo(sym, nibHi(sym, raw, c80, c0f, c08, cH));
}

/**
 * Quarter k (0..3, a constant after unrolling) of 16 elements whose halves are packed in lo and
 * hi (colsRaw of columns i and i+8 for f16 and int8; for int4, lo / hi are the low / high nibbles
 * of 8 bytes in i16 lanes). f32 loads it from the row.
 */
// @ts-ignore: decorator
@inline
function quarter(kind: i32, sym: bool, row: usize, o: usize, k: i32, lo: v128, hi: v128, c80: v128, c0f: v128, c08: v128, cH: v128): v128 {
  if (kind == FUSED_F32) return v128.load(row + o + (<usize>k << 4));
  if (kind == FUSED_F16) {
    if (k == 0) return cvH(i32x4.extend_low_i16x8_s(lo), c80, c0f, c08, cH);
    if (k == 1) return cvH(i32x4.extend_high_i16x8_s(lo), c80, c0f, c08, cH);
    if (k == 2) return cvH(i32x4.extend_low_i16x8_s(hi), c80, c0f, c08, cH);
    return cvH(i32x4.extend_high_i16x8_s(hi), c80, c0f, c08, cH);
  }
  if (k == 0) return cvLo(sym, lo);
  if (k == 1) return cvHi(sym, lo);
  if (k == 2) return cvLo(sym, hi);
  return cvHi(sym, hi);
}

/**
 * scores (R, nSlots) = scale * q_r . k_j (-Inf where slotPos[j] > qPos_r) for q (R, d); row maxima
 * to maxes. qs: scratch for the per-group q sums; qp: scratch for the permuted (int4) or scaled
 * (f16) q. Returns 1 when the call must be redone on the exact path (f16 Inf/NaN or large q).
 */
// @ts-ignore: decorator
@inline
function score4F(
  R: i32,
  kind: i32,
  sym: bool,
  G: i32,
  d: i32,
  qIn: usize,
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
  qp: usize,
): i32 {
  const c80 = v128.load(AK);
  const c0f = v128.load(AK, 16);
  const c08 = v128.load(AK, 32);
  const cH = v128.load(AK, 48);
  const isF = kind == FUSED_F32;
  const isH = kind == FUSED_F16;
  const flt = isF || isH; // one group spanning the row, no scales
  const sf = qs + (<usize>d << 1); // (nG) f32 scales of the current row (qs uses at most d bytes)
  const zf = qs + (<usize>d << 1) + (<usize>d >> 1); // (nG) f32 zero-points
  const sfB = qs + <usize>d; // the same for the second slot of a pair
  const zfB = qs + <usize>d + (<usize>d >> 1);
  const rb = <usize>d << 2;
  let q = qIn;
  if (kind == 4) {
    permuteQ(qIn, R, d, qp);
    q = qp;
  } else if (isH) {
    if (!scaleQ(qIn, R, d, qp)) return 1;
    q = qp;
  }
  const q1 = q + rb; // rows 1..3 only when R > 1 / R == 4
  const q2 = q1 + rb;
  const q3 = q2 + rb;
  const gs = flt ? d : G;
  const nG = flt ? 1 : d / gs; // 1 as a constant for float rows: V8 does not fold d / d
  const rowBytes = <usize>((d * kind) >> 3);
  // qs[g] = (sum q_0g, sum q_1g, sum q_2g, sum q_3g), for the asymmetric zero-point term.
  const nQs = flt || sym ? 0 : nG;
  for (let g = 0; g < nQs; g++) {
    let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), e = f32x4.splat(0);
    for (let i = g * gs; i < (g + 1) * gs; i += 4) {
      const o = <usize>i << 2;
      a = f32x4.add(a, v128.load(q + o));
      if (R >= 2) b = f32x4.add(b, v128.load(q1 + o));
      if (R == 4) {
        c = f32x4.add(c, v128.load(q2 + o));
        e = f32x4.add(e, v128.load(q3 + o));
      }
    }
    let v = f32x4.splat(hsum(a));
    v = f32x4.replace_lane(v, 1, hsum(b));
    v = f32x4.replace_lane(v, 2, hsum(c));
    v = f32x4.replace_lane(v, 3, hsum(e));
    v128.store(qs + (<usize>g << 4), v);
  }
  const p0 = load<i32>(qPos);
  const p1 = R >= 2 ? load<i32>(qPos, 4) : p0;
  const p2 = R == 4 ? load<i32>(qPos, 8) : p0;
  const p3 = R == 4 ? load<i32>(qPos, 12) : p0;
  const pmax = max(max(p0, p1), max(p2, p3));
  const sb = <usize>nSlots << 2;
  let m0: f32 = -Infinity, m1: f32 = -Infinity, m2: f32 = -Infinity, m3: f32 = -Infinity;
  // R == 4: the row sums, masks and maxima as vectors (see score4Flt); R < 4 stays scalar.
  const P = R == 4 ? v128.load(qPos) : i32x4.splat(0);
  const vScale = f32x4.splat(scale);
  const ninf = v128.load(AK, 64); // from memory: V8 rebuilds a v128 constant at each use in a loop
  let M = ninf;
  let hm = i16x8.splat(0);
  // Slot pairs: measured faster for int and f16 rows with 2 or 4 rows and for f32 with 2 rows.
  // f32 with 4 rows (16 live accumulators) and single rows (caches beyond L2) measured slower
  // with pairs, so they take one slot at a time.
  const pair = R >= 2 && !(isF && R == 4);
  let j = 0;
  while (j < nSlots) {
    const sp = load<i32>(slotPos + (<usize>j << 2));
    const spB = j + 1 < nSlots ? load<i32>(slotPos + (<usize>(j + 1) << 2)) : i32.MAX_VALUE;
    if (pair && sp <= pmax && spB <= pmax) {
      // Two visible slots at once: each q vector loaded feeds both (half the q loads).
      const rowA = pay + <usize>j * rowBytes;
      const rowB = rowA + rowBytes;
      const giA = <usize>(j * nG) << 1;
      const giB = giA + (<usize>nG << 1);
      if (!flt) {
        f16Row(sc + giA, nG, sf);
        f16Row(sc + giB, nG, sfB);
        if (!sym) {
          f16Row(ze + giA, nG, zf);
          f16Row(ze + giB, nG, zfB);
        }
      }
      let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
      let u0 = f32x4.splat(0), u1 = f32x4.splat(0), u2 = f32x4.splat(0), u3 = f32x4.splat(0);
      let ztA = f32x4.splat(0), ztB = f32x4.splat(0);
      for (let g = 0; g < nG; g++) {
        // R == 1: a1 / c1 are a second accumulator of row 0 (odd quarters), halving add chains.
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
        for (let i = g * gs; i < (g + 1) * gs; i += 16) {
          const o = <usize>i << 2;
          let loA = f32x4.splat(0), hiA = loA, loB = loA, hiB = loA;
          if (kind == 8 || isH) {
            loA = colsRaw(kind, sym, rowA, i, c80, c0f, c08, cH);
            hiA = colsRaw(kind, sym, rowA, i + 8, c80, c0f, c08, cH);
            loB = colsRaw(kind, sym, rowB, i, c80, c0f, c08, cH);
            hiB = colsRaw(kind, sym, rowB, i + 8, c80, c0f, c08, cH);
            if (isH) hm = hMark(hMark(hMark(hMark(hm, loA), hiA), loB), hiB);
          } else if (kind == 4) {
            const bA = i16x8.extend_low_i8x16_u(v128.load64_zero(rowA + (<usize>i >> 1)));
            const bB = i16x8.extend_low_i8x16_u(v128.load64_zero(rowB + (<usize>i >> 1)));
            loA = nibLo(sym, bA, c80, c0f, c08, cH);
            hiA = nibHi(sym, bA, c80, c0f, c08, cH);
            loB = nibLo(sym, bB, c80, c0f, c08, cH);
            hiB = nibHi(sym, bB, c80, c0f, c08, cH);
          }
          for (let k = 0; k < 4; k++) {
            // k is a constant after unrolling: quarter k of the 16 elements of both slots.
            const x = quarter(kind, sym, rowA, o, k, loA, hiA, c80, c0f, c08, cH);
            const y = quarter(kind, sym, rowB, o, k, loB, hiB, c80, c0f, c08, cH);
            const ok = o + (<usize>k << 4);
            let qv = v128.load(q + ok);
            if (R == 1 && (k & 1) == 1) {
              a1 = madd(qv, x, a1);
              c1 = madd(qv, y, c1);
            } else {
              a0 = madd(qv, x, a0);
              c0 = madd(qv, y, c0);
            }
            if (R >= 2) {
              qv = v128.load(q1 + ok);
              a1 = madd(qv, x, a1);
              c1 = madd(qv, y, c1);
            }
            if (R == 4) {
              qv = v128.load(q2 + ok);
              a2 = madd(qv, x, a2);
              c2 = madd(qv, y, c2);
              qv = v128.load(q3 + ok);
              a3 = madd(qv, x, a3);
              c3 = madd(qv, y, c3);
            }
          }
        }
        if (R == 1) {
          a0 = f32x4.add(a0, a1);
          c0 = f32x4.add(c0, c1);
        }
        if (flt) {
          t0 = a0; t1 = a1; t2 = a2; t3 = a3;
          u0 = c0; u1 = c1; u2 = c2; u3 = c3;
        } else {
          const vs = v128.load32_splat(sf + (<usize>g << 2));
          const vt = v128.load32_splat(sfB + (<usize>g << 2));
          t0 = madd(a0, vs, t0);
          u0 = madd(c0, vt, u0);
          if (R >= 2) {
            t1 = madd(a1, vs, t1);
            u1 = madd(c1, vt, u1);
          }
          if (R == 4) {
            t2 = madd(a2, vs, t2);
            t3 = madd(a3, vs, t3);
            u2 = madd(c2, vt, u2);
            u3 = madd(c3, vt, u3);
          }
          if (!sym) {
            const qsg = v128.load(qs + (<usize>g << 4));
            ztA = madd(qsg, v128.load32_splat(zf + (<usize>g << 2)), ztA);
            ztB = madd(qsg, v128.load32_splat(zfB + (<usize>g << 2)), ztB);
          }
        }
      }
      const oA = scores + (<usize>j << 2);
      if (R == 4) {
        let sA = f32x4.mul(f32x4.add(hsum4(t0, t1, t2, t3), ztA), vScale);
        let sB = f32x4.mul(f32x4.add(hsum4(u0, u1, u2, u3), ztB), vScale);
        sA = v128.bitselect(sA, ninf, i32x4.le_s(i32x4.splat(sp), P));
        sB = v128.bitselect(sB, ninf, i32x4.le_s(i32x4.splat(spB), P));
        M = f32x4.pmax(f32x4.pmax(M, sA), sB);
        const lo = i32x4.shuffle(sA, sB, 0, 4, 1, 5); // rows 0, 1: (A, B)
        const hi = i32x4.shuffle(sA, sB, 2, 6, 3, 7); // rows 2, 3
        v128.store64_lane(oA, lo, 0);
        v128.store64_lane(oA + sb, lo, 1);
        v128.store64_lane(oA + 2 * sb, hi, 0);
        v128.store64_lane(oA + 3 * sb, hi, 1);
        j += 2;
        continue;
      }
      let s: f32 = -Infinity;
      s = sp <= p0 ? (hsum(t0) + f32x4.extract_lane(ztA, 0)) * scale : -Infinity;
      if (s > m0) m0 = s;
      store<f32>(oA, s);
      s = spB <= p0 ? (hsum(u0) + f32x4.extract_lane(ztB, 0)) * scale : -Infinity;
      if (s > m0) m0 = s;
      store<f32>(oA, s, 4);
      if (R >= 2) {
        s = sp <= p1 ? (hsum(t1) + f32x4.extract_lane(ztA, 1)) * scale : -Infinity;
        if (s > m1) m1 = s;
        store<f32>(oA + sb, s);
        s = spB <= p1 ? (hsum(u1) + f32x4.extract_lane(ztB, 1)) * scale : -Infinity;
        if (s > m1) m1 = s;
        store<f32>(oA + sb, s, 4);
      }
      if (R == 4) {
        s = sp <= p2 ? (hsum(t2) + f32x4.extract_lane(ztA, 2)) * scale : -Infinity;
        if (s > m2) m2 = s;
        store<f32>(oA + 2 * sb, s);
        s = spB <= p2 ? (hsum(u2) + f32x4.extract_lane(ztB, 2)) * scale : -Infinity;
        if (s > m2) m2 = s;
        store<f32>(oA + 2 * sb, s, 4);
        s = sp <= p3 ? (hsum(t3) + f32x4.extract_lane(ztA, 3)) * scale : -Infinity;
        if (s > m3) m3 = s;
        store<f32>(oA + 3 * sb, s);
        s = spB <= p3 ? (hsum(u3) + f32x4.extract_lane(ztB, 3)) * scale : -Infinity;
        if (s > m3) m3 = s;
        store<f32>(oA + 3 * sb, s, 4);
      }
      j += 2;
      continue;
    }
    let s0: f32 = -Infinity, s1: f32 = -Infinity, s2: f32 = -Infinity, s3: f32 = -Infinity;
    let S4 = ninf;
    if (sp <= pmax) {
      const row = pay + <usize>j * rowBytes;
      const gi = <usize>(j * nG) << 1;
      if (!flt) {
        f16Row(sc + gi, nG, sf);
        if (!sym) {
          f16Row(ze + gi, nG, zf);
        }
      }
      let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
      let zt = f32x4.splat(0);
      for (let g = 0; g < nG; g++) {
        // Two accumulators per row (alternate quarters of each 16 elements) to halve add chains.
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
        for (let i = g * gs; i < (g + 1) * gs; i += 16) {
          const o = <usize>i << 2;
          let lo = f32x4.splat(0), hi = lo;
          if (kind == 8 || isH) {
            lo = colsRaw(kind, sym, row, i, c80, c0f, c08, cH);
            hi = colsRaw(kind, sym, row, i + 8, c80, c0f, c08, cH);
            if (isH) hm = hMark(hMark(hm, lo), hi);
          } else if (kind == 4) {
            // 8 bytes: even elements in the low nibbles, odd ones in the high nibbles.
            const b = i16x8.extend_low_i8x16_u(v128.load64_zero(row + (<usize>i >> 1)));
            lo = nibLo(sym, b, c80, c0f, c08, cH);
            hi = nibHi(sym, b, c80, c0f, c08, cH);
          }
          const x0 = quarter(kind, sym, row, o, 0, lo, hi, c80, c0f, c08, cH);
          const x1 = quarter(kind, sym, row, o, 1, lo, hi, c80, c0f, c08, cH);
          const x2 = quarter(kind, sym, row, o, 2, lo, hi, c80, c0f, c08, cH);
          const x3 = quarter(kind, sym, row, o, 3, lo, hi, c80, c0f, c08, cH);
          a0 = madd(v128.load(q + o), x0, a0);
          if (R >= 2) a1 = madd(v128.load(q1 + o), x0, a1);
          if (R == 4) {
            a2 = madd(v128.load(q2 + o), x0, a2);
            a3 = madd(v128.load(q3 + o), x0, a3);
          }
          b0 = madd(v128.load(q + o, 16), x1, b0);
          if (R >= 2) b1 = madd(v128.load(q1 + o, 16), x1, b1);
          if (R == 4) {
            b2 = madd(v128.load(q2 + o, 16), x1, b2);
            b3 = madd(v128.load(q3 + o, 16), x1, b3);
          }
          a0 = madd(v128.load(q + o, 32), x2, a0);
          if (R >= 2) a1 = madd(v128.load(q1 + o, 32), x2, a1);
          if (R == 4) {
            a2 = madd(v128.load(q2 + o, 32), x2, a2);
            a3 = madd(v128.load(q3 + o, 32), x2, a3);
          }
          b0 = madd(v128.load(q + o, 48), x3, b0);
          if (R >= 2) b1 = madd(v128.load(q1 + o, 48), x3, b1);
          if (R == 4) {
            b2 = madd(v128.load(q2 + o, 48), x3, b2);
            b3 = madd(v128.load(q3 + o, 48), x3, b3);
          }
        }
        if (flt) {
          t0 = f32x4.add(a0, b0);
          t1 = f32x4.add(a1, b1);
          t2 = f32x4.add(a2, b2);
          t3 = f32x4.add(a3, b3);
        } else {
          const vs = v128.load32_splat(sf + (<usize>g << 2));
          t0 = madd(f32x4.add(a0, b0), vs, t0);
          t1 = madd(f32x4.add(a1, b1), vs, t1);
          t2 = madd(f32x4.add(a2, b2), vs, t2);
          t3 = madd(f32x4.add(a3, b3), vs, t3);
          if (!sym) {
            zt = madd(v128.load(qs + (<usize>g << 4)), v128.load32_splat(zf + (<usize>g << 2)), zt);
          }
        }
      }
      if (R == 4) {
        S4 = f32x4.mul(f32x4.add(hsum4(t0, t1, t2, t3), zt), vScale);
        S4 = v128.bitselect(S4, ninf, i32x4.le_s(i32x4.splat(sp), P));
        M = f32x4.pmax(M, S4);
      } else {
        if (sp <= p0) { s0 = (hsum(t0) + f32x4.extract_lane(zt, 0)) * scale; if (s0 > m0) m0 = s0; }
        if (R >= 2 && sp <= p1) { s1 = (hsum(t1) + f32x4.extract_lane(zt, 1)) * scale; if (s1 > m1) m1 = s1; }
      }
    }
    const o = scores + (<usize>j << 2);
    if (R == 4) {
      v128.store32_lane(o, S4, 0);
      v128.store32_lane(o + sb, S4, 1);
      v128.store32_lane(o + 2 * sb, S4, 2);
      v128.store32_lane(o + 3 * sb, S4, 3);
    } else {
      store<f32>(o, s0);
      if (R >= 2) store<f32>(o + sb, s1);
    }
    j++;
  }
  if (R == 4) v128.store(maxes, M);
  else {
    store<f32>(maxes, m0);
    store<f32>(maxes, m1, 4);
    store<f32>(maxes, m2, 8);
    store<f32>(maxes, m3, 12);
  }
  return isH && hBad(hm) ? 1 : 0;
}

/**
 * acc (R, d) = sum_j p_rj v_j, p = e * inv per row (e: (R, nSlots)); writes probs (R rows, stride
 * nSlots) when nonzero. A slot whose R weights are all zero is skipped, as in attend-block.ts.
 * ws: scratch for JB * nG * 4 staged weight splats; corr: nG per-group zero terms; idx: JB row
 * addresses. Returns 1 when the call must be redone on the exact path (f16 Inf/NaN read).
 */
// @ts-ignore: decorator
@inline
function mix4F(
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
  ws: usize,
  corr: usize,
  idx: usize,
): i32 {
  const c80 = v128.load(AK);
  const c0f = v128.load(AK, 16);
  const c08 = v128.load(AK, 32);
  const cH = v128.load(AK, 48);
  const isF = kind == FUSED_F32;
  const isH = kind == FUSED_F16;
  const flt = isF || isH;
  const sf = corr + (<usize>d << 1); // (nG) f32 scales of the current row (corr uses at most d bytes)
  const zf = corr + (<usize>d << 1) + (<usize>d >> 1); // (nG) f32 zero-points
  const sb = <usize>nSlots << 2;
  const rb = <usize>d << 2;
  const gs = flt ? d : G;
  const nG = flt ? 1 : d / gs; // 1 as a constant for float rows: V8 does not fold d / d
  const rowBytes = <usize>((d * kind) >> 3);
  // f16: weights carry the 2^112 that cvH leaves out (exact: w <= 1).
  const inv = isH ? f32x4.mul(v128.load(invs), two112()) : v128.load(invs);
  const zero = f32x4.splat(0);
  let hm = i16x8.splat(0);
  memory.fill(acc, 0, <usize>R * rb);
  let touch = i32x4.splat(0);
  const zc = !flt && !sym; // asymmetric int rows: zero-point terms
  const cs = ws + <usize>(JB * nG) * 64; // (nG, 4) splats of the block's zero-point terms
  let pre = false; // f32: this block's rows were touched by the previous block's slot loop
  for (let j0 = 0; j0 < nSlots; j0 += JB) {
    const jEnd = min(j0 + JB, nSlots);
    if (zc) memory.fill(corr, 0, <usize>nG << 4);
    // Stage ws[n][g] = (p_0j s_jg, .., p_3j s_jg) for the block's n-th slot with a nonzero weight,
    // and corr[g] += p_j m_jg (the R rows as one vector).
    let n = 0;
    for (let j = j0; j < jEnd; j++) {
      const eo = e + (<usize>j << 2);
      let w = f32x4.replace_lane(f32x4.splat(0), 0, load<f32>(eo));
      if (R >= 2) w = f32x4.replace_lane(w, 1, load<f32>(eo + sb));
      if (R == 4) {
        w = f32x4.replace_lane(w, 2, load<f32>(eo + 2 * sb));
        w = f32x4.replace_lane(w, 3, load<f32>(eo + 3 * sb));
      }
      w = f32x4.mul(w, inv); // lanes R..3 stay 0
      if (probs) {
        // f16: inv holds 2^112 too; the probabilities are the weights without it.
        const pw = isH ? f32x4.mul(w, f32x4.splat(reinterpret<f32>(<u32>0x07800000))) : w;
        const po = probs + (<usize>j << 2);
        store<f32>(po, f32x4.extract_lane(pw, 0));
        if (R >= 2) store<f32>(po + sb, f32x4.extract_lane(pw, 1));
        if (R == 4) {
          store<f32>(po + 2 * sb, f32x4.extract_lane(pw, 2));
          store<f32>(po + 3 * sb, f32x4.extract_lane(pw, 3));
        }
      }
      const nz = f32x4.ne(w, zero);
      if (!v128.any_true(nz)) continue;
      const rowAt = pay + <usize>j * rowBytes;
      store<u32>(idx + (<usize>n << 2), <u32>rowAt); // the row's address
      // f32 rows: touch the row's cache lines in address order now. The column loop below walks
      // the block's rows 32 bytes at a time with a stride of rowBytes (512 at headDim 128),
      // which the hardware prefetcher does not follow; touched here, the block's lines are
      // requested together (Llama shape, 16K tokens: 0.63x the time). Smaller rows (f16, int)
      // measured no change.
      if (isF && !pre) for (let o: usize = 0; o < rowBytes; o += 64) touch = v128.or(touch, v128.load32_zero(rowAt + o));
      if (flt) stageSplats(R, ws + (<usize>n << 6), w);
      else {
        // A row with zero weight must add exactly nothing, even where a group's f16 scale is
        // Inf (0 * Inf is NaN): its staged weights are forced to zero.
        const gi = <usize>(j * nG) << 1;
        f16Row(sc + gi, nG, sf);
        if (!sym) f16Row(ze + gi, nG, zf);
        for (let g = 0; g < nG; g++) {
          const s = v128.load32_splat(sf + (<usize>g << 2));
          stageSplats(R, ws + (<usize>(n * nG + g) << 6), v128.and(f32x4.mul(w, s), nz));
          if (!sym) {
            const co = corr + (<usize>g << 4);
            const z = v128.load32_splat(zf + (<usize>g << 2));
            v128.store(co, f32x4.add(v128.load(co), v128.and(f32x4.mul(w, z), nz)));
          }
        }
      }
      n++;
    }
    if (n == 0) {
      pre = false;
      continue;
    }
    // f32, 4 rows, relaxed build (TOUCH_IN_LOOP), a fully staged block with a whole block after
    // it: the slot loop below touches that next block's rows, 32 bytes per step (n * d / 8 steps
    // of 32 bytes = n rows), spread among the multiply-adds (0.94-0.97x the call time of touching
    // them in the staging loop, Node 24, Llama 16K); the next block then skips its own touching.
    // Otherwise the pointer walks this block's rows (in bounds) and the next block touches its
    // rows while staging.
    const nextFull = TOUCH_IN_LOOP && isF && R == 4 && n == jEnd - j0 && jEnd + JB <= nSlots;
    let nxp = pay + <usize>(nextFull ? jEnd : j0) * rowBytes;
    pre = nextFull;
    // The block's zero-point terms are added with its slots (below), so the running sums stay
    // near the output's size: added once at the end, sum_j p_j s_j u_j and sum_j p_j m_j would
    // each be about the value range and cancel (f32 rounding of the large terms).
    if (zc) for (let g = 0; g < nG; g++) stageSplats(R, cs + (<usize>g << 6), v128.load(corr + (<usize>g << 4)));
    // Output columns in registers (R == 1: 16 columns of the row; else 8 columns of each row);
    // the block's slots applied to them.
    // R <= 2: 16 columns per pass (8 accumulators); R == 4: 8 columns of the 4 rows.
    const step = R <= 2 ? 16 : 8;
    let g = 0; // group of column i (no division in the loop)
    let gEnd = gs;
    for (let i = 0; i < d; i += step) {
      if (i == gEnd) {
        g++;
        gEnd += gs;
      }
      const a = acc + (<usize>i << 2);
      // a0/b0: row 0, columns i..i+7. R == 1: a1/b1 columns i+8..i+15. R == 2: a1/b1 row 1,
      // a2/b2 row 0 columns i+8.., a3/b3 row 1 columns i+8... R == 4: rows 0..3, columns i..i+7.
      let a0 = v128.load(a), b0 = v128.load(a, 16);
      let a1 = a0, b1 = a0, a2 = a0, a3 = a0, b2 = a0, b3 = a0;
      if (R == 1) {
        a1 = v128.load(a, 32);
        b1 = v128.load(a, 48);
      } else {
        a1 = v128.load(a + rb);
        b1 = v128.load(a + rb, 16);
      }
      if (R == 2) {
        a2 = v128.load(a, 32);
        b2 = v128.load(a, 48);
        a3 = v128.load(a + rb, 32);
        b3 = v128.load(a + rb, 48);
      }
      if (R == 4) {
        a2 = v128.load(a + 2 * rb);
        a3 = v128.load(a + 3 * rb);
        b2 = v128.load(a + 2 * rb, 16);
        b3 = v128.load(a + 3 * rb, 16);
      }
      let wp = ws + (<usize>g << 6);
      // f32 rows, 4 rows, every slot of the block staged (no zero weight): the rows are
      // consecutive, so the row pointer steps by rowBytes instead of being loaded from idx and
      // offset (3 instructions); the same operations in the same order as the loop below.
      const nt = isF && R == 4 && n == jEnd - j0 ? 0 : n;
      if (nt == 0) {
        let rp = pay + <usize>j0 * rowBytes + (<usize>i << 2);
        const wEnd = wp + (<usize>n << 6);
        for (; wp < wEnd; wp += 64) {
          if (TOUCH_IN_LOOP) {
            touch = v128.or(touch, v128.load32_zero(nxp));
            nxp += 32;
          }
          const lo = v128.load(rp);
          const hi = v128.load(rp, 16);
          let vw = v128.load(wp);
          a0 = madd(vw, lo, a0);
          b0 = madd(vw, hi, b0);
          vw = v128.load(wp, 16);
          a1 = madd(vw, lo, a1);
          b1 = madd(vw, hi, b1);
          vw = v128.load(wp, 32);
          a2 = madd(vw, lo, a2);
          b2 = madd(vw, hi, b2);
          vw = v128.load(wp, 48);
          a3 = madd(vw, lo, a3);
          b3 = madd(vw, hi, b3);
          rp += rowBytes;
        }
      }
      for (let t = 0; t < nt; t++) {
        const row = <usize>load<u32>(idx + (<usize>t << 2));
        if (R <= 2) {
          let lo = zero, hi = zero, lo2 = zero, hi2 = zero;
          if (kind == 4) {
            // 16 columns from 8 bytes in full vectors: the low / high nibbles are the even / odd
            // elements; their low halves are columns i..i+7, their high halves i+8..i+15.
            const b = i16x8.extend_low_i8x16_u(v128.load64_zero(row + (<usize>i >> 1)));
            const ev = nibLo(sym, b, c80, c0f, c08, cH);
            const od = nibHi(sym, b, c80, c0f, c08, cH);
            lo = cvLo(sym, ev);
            hi = cvLo(sym, od);
            lo2 = cvHi(sym, ev);
            hi2 = cvHi(sym, od);
          } else {
            let raw = zero, raw2 = zero;
            if (!isF) {
              raw = colsRaw(kind, sym, row, i, c80, c0f, c08, cH);
              raw2 = colsRaw(kind, sym, row, i + 8, c80, c0f, c08, cH);
              if (isH) hm = hMark(hMark(hm, raw), raw2);
            }
            lo = colsLo(kind, sym, row, i, raw, c80, c0f, c08, cH);
            hi = colsHi(kind, sym, row, i, raw, c80, c0f, c08, cH);
            lo2 = colsLo(kind, sym, row, i + 8, raw2, c80, c0f, c08, cH);
            hi2 = colsHi(kind, sym, row, i + 8, raw2, c80, c0f, c08, cH);
          }
          // Columns i+8..i+15 are in the same group (groups are whole 16s): same weights.
          const w0 = v128.load(wp);
          a0 = madd(w0, lo, a0);
          b0 = madd(w0, hi, b0);
          if (R == 1) {
            a1 = madd(w0, lo2, a1);
            b1 = madd(w0, hi2, b1);
          } else {
            const w1 = v128.load(wp, 16);
            a1 = madd(w1, lo, a1);
            b1 = madd(w1, hi, b1);
            a2 = madd(w0, lo2, a2);
            b2 = madd(w0, hi2, b2);
            a3 = madd(w1, lo2, a3);
            b3 = madd(w1, hi2, b3);
          }
          wp += <usize>nG << 6;
          continue;
        }
        let raw = zero;
        if (!isF) {
          raw = colsRaw(kind, sym, row, i, c80, c0f, c08, cH);
          if (isH) hm = hMark(hm, raw);
        }
        const lo = colsLo(kind, sym, row, i, raw, c80, c0f, c08, cH);
        const hi = colsHi(kind, sym, row, i, raw, c80, c0f, c08, cH);
        let vw = v128.load(wp);
        a0 = madd(vw, lo, a0);
        b0 = madd(vw, hi, b0);
        vw = v128.load(wp, 16);
        a1 = madd(vw, lo, a1);
        b1 = madd(vw, hi, b1);
        vw = v128.load(wp, 32);
        a2 = madd(vw, lo, a2);
        b2 = madd(vw, hi, b2);
        vw = v128.load(wp, 48);
        a3 = madd(vw, lo, a3);
        b3 = madd(vw, hi, b3);
        wp += <usize>nG << 6;
      }
      if (zc) {
        const cp = cs + (<usize>g << 6);
        const c0 = v128.load(cp);
        a0 = f32x4.add(a0, c0);
        b0 = f32x4.add(b0, c0);
        if (R == 1) {
          a1 = f32x4.add(a1, c0);
          b1 = f32x4.add(b1, c0);
        } else {
          const c1 = v128.load(cp, 16);
          a1 = f32x4.add(a1, c1);
          b1 = f32x4.add(b1, c1);
          if (R == 2) {
            a2 = f32x4.add(a2, c0);
            b2 = f32x4.add(b2, c0);
            a3 = f32x4.add(a3, c1);
            b3 = f32x4.add(b3, c1);
          } else {
            const c2 = v128.load(cp, 32);
            const c3 = v128.load(cp, 48);
            a2 = f32x4.add(a2, c2);
            b2 = f32x4.add(b2, c2);
            a3 = f32x4.add(a3, c3);
            b3 = f32x4.add(b3, c3);
          }
        }
      }
      v128.store(a, a0);
      v128.store(a, b0, 16);
      if (R == 1) {
        v128.store(a, a1, 32);
        v128.store(a, b1, 48);
      } else {
        v128.store(a + rb, a1);
        v128.store(a + rb, b1, 16);
      }
      if (R == 2) {
        v128.store(a, a2, 32);
        v128.store(a, b2, 48);
        v128.store(a + rb, a3, 32);
        v128.store(a + rb, b3, 48);
      }
      if (R == 4) {
        v128.store(a + 2 * rb, a2);
        v128.store(a + 3 * rb, a3);
        v128.store(a + 2 * rb, b2, 16);
        v128.store(a + 3 * rb, b3, 16);
      }
    }
  }
  // int4: each 8 columns hold elements 0,2,4,6 then 1,3,5,7; interleave them back.
  if (kind == 4) {
    for (let i = 0; i < R * d; i += 8) {
      const a = acc + (<usize>i << 2);
      const ev = v128.load(a);
      const od = v128.load(a, 16);
      v128.store(a, i32x4.shuffle(ev, od, 0, 4, 1, 5));
      v128.store(a, i32x4.shuffle(ev, od, 2, 6, 3, 7), 16);
    }
  }
  v128.store(corr, touch); // keeps the touching loads (corr is scratch, no longer read here)
  return isH && hBad(hm) ? 1 : 0;
}

/**
 * One query row over int8 / int4 keys with integer dot products (i32x4.dot_i16x8_s, 8
 * multiply-adds per instruction): q is split once per call into two int16 parts, q ~= sq * (qh +
 * ql / 2^15) (qh = round(q / sq), sq = max|q| / 32767; ql = the remainder in 2^-15 steps), which
 * represents q to max|q| * 2^-31, finer than f32 itself, so the scores match the f32 path's
 * precision. Codes are widened to i16 only (no convert to f32 per element); per group the two
 * exact i32 sums are converted once and scaled. Group sums stay below 2^31 for groups up to 256
 * (intDotOk). Same outputs as score4F with R = 1.
 */
// @ts-ignore: decorator
@inline
function score1I(
  kind: i32,
  sym: bool,
  G: i32,
  d: i32,
  qIn: usize,
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
  qp: usize,
): i32 {
  const c80 = v128.load(AK);
  const c0f = v128.load(AK, 16);
  const c08 = v128.load(AK, 32);
  const cH = v128.load(AK, 48);
  const sf = qs + (<usize>d << 1); // (nG) f32 scales of the current row
  const zf = qs + (<usize>d << 1) + (<usize>d >> 1); // (nG) f32 zero-points
  let q = qIn;
  if (kind == 4) {
    permuteQ(qIn, 1, d, qp);
    q = qp;
  }
  const qh = qp + (<usize>d << 2); // (d) i16
  const ql = qh + (<usize>d << 1); // (d) i16
  const nG = d / G;
  const rowBytes = <usize>((d * kind) >> 3);
  // q sums per group (zero-point term), from the f32 q.
  if (!sym) {
    for (let g = 0; g < nG; g++) {
      let a = f32x4.splat(0);
      for (let i = g * G; i < (g + 1) * G; i += 4) a = f32x4.add(a, v128.load(q + (<usize>i << 2)));
      store<f32>(qs + (<usize>g << 4), hsum(a));
    }
  }
  // Split q into qh + ql / 2^15 (units of sq).
  let mx = f32x4.splat(0);
  for (let i = 0; i < d; i += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(q + (<usize>i << 2))));
  const qmax = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
  // Non-finite q: the f32 path (its NaN/Inf propagate as the reference's do).
  if (!(qmax < Infinity)) return 2;
  const sq: f32 = qmax / 32767;
  const inv = f32x4.splat(qmax > 0 ? <f32>32767 / qmax : 0);
  const two15 = f32x4.splat(32768);
  for (let i = 0; i < d; i += 8) {
    const o = <usize>i << 2;
    const x0 = f32x4.mul(v128.load(q + o), inv);
    const x1 = f32x4.mul(v128.load(q + o, 16), inv);
    const h0 = f32x4.nearest(x0);
    const h1 = f32x4.nearest(x1);
    const l0 = f32x4.nearest(f32x4.mul(f32x4.sub(x0, h0), two15));
    const l1 = f32x4.nearest(f32x4.mul(f32x4.sub(x1, h1), two15));
    v128.store(qh + (<usize>i << 1), i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(h0), i32x4.trunc_sat_f32x4_s(h1)));
    v128.store(ql + (<usize>i << 1), i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(l0), i32x4.trunc_sat_f32x4_s(l1)));
  }
  const lowW = f32x4.splat(<f32>1 / 32768);
  const p0 = load<i32>(qPos);
  let m0: f32 = -Infinity;
  const ss = scale * sq;
  for (let j = 0; j < nSlots; j++) {
    const sp = load<i32>(slotPos + (<usize>j << 2));
    let s0: f32 = -Infinity;
    if (sp <= p0) {
      const row = pay + <usize>j * rowBytes;
      const gi = <usize>(j * nG) << 1;
      f16Row(sc + gi, nG, sf);
      if (!sym) f16Row(ze + gi, nG, zf);
      let tot = f32x4.splat(0);
      let zt: f32 = 0;
      for (let g = 0; g < nG; g++) {
        let ah = i32x4.splat(0), al = i32x4.splat(0), bh = i32x4.splat(0), bl = i32x4.splat(0);
        for (let i = g * G; i < (g + 1) * G; i += 16) {
          let u0: v128, u1: v128;
          if (kind == 8) {
            const c = v128.load(row + <usize>i);
            const cc = sym ? v128.xor(c, c80) : c;
            u0 = sym ? i16x8.extend_low_i8x16_s(cc) : i16x8.extend_low_i8x16_u(cc);
            u1 = sym ? i16x8.extend_high_i8x16_s(cc) : i16x8.extend_high_i8x16_u(cc);
          } else {
            const b = i16x8.extend_low_i8x16_u(v128.load64_zero(row + (<usize>i >> 1)));
            u0 = nibLo(sym, b, c80, c0f, c08, cH);
            u1 = nibHi(sym, b, c80, c0f, c08, cH);
          }
          const o = <usize>i << 1;
          ah = i32x4.add(ah, i32x4.dot_i16x8_s(u0, v128.load(qh + o)));
          al = i32x4.add(al, i32x4.dot_i16x8_s(u0, v128.load(ql + o)));
          bh = i32x4.add(bh, i32x4.dot_i16x8_s(u1, v128.load(qh + o, 16)));
          bl = i32x4.add(bl, i32x4.dot_i16x8_s(u1, v128.load(ql + o, 16)));
        }
        const hi = f32x4.convert_i32x4_s(i32x4.add(ah, bh));
        const lo = f32x4.convert_i32x4_s(i32x4.add(al, bl));
        const v = madd(lo, lowW, hi);
        tot = madd(v, v128.load32_splat(sf + (<usize>g << 2)), tot);
        if (!sym) zt += load<f32>(zf + (<usize>g << 2)) * load<f32>(qs + (<usize>g << 4));
      }
      s0 = hsum(tot) * ss + zt * scale;
      if (s0 > m0) m0 = s0;
    }
    store<f32>(scores + (<usize>j << 2), s0);
  }
  store<f32>(maxes, m0);
  store<f32>(maxes, <f32>-Infinity, 4);
  store<f32>(maxes, <f32>-Infinity, 8);
  store<f32>(maxes, <f32>-Infinity, 12);
  return 0;
}

/** Whether score1I takes int keys of this kind and group size (group sums fit in i32). */
// @ts-ignore: decorator
@inline
function intDotOk(kind: i32, G: i32): bool {
  return (kind == 8 || kind == 4) && G <= 256;
}

/**
 * q block (4, d) interleaved into dst (d / 4, 4, 4): the 4 rows' vectors of each 4 columns side
 * by side, so the score loop reads them from one pointer with constant offsets. f16 (isH): times
 * 2^112 as in scaleQ; false when some |q| >= 2^16 (or is NaN).
 */
// @ts-ignore: decorator
@inline
function interleaveQ4(isH: bool, q: usize, d: i32, dst: usize): bool {
  const rb = <usize>d << 2;
  const s = two112();
  const lim = f32x4.splat(65536);
  let ok = i32x4.splat(-1);
  for (let r = 0; r < 4; r++) {
    const src = q + <usize>r * rb;
    for (let i = 0; i < d; i += 4) {
      let x = v128.load(src + (<usize>i << 2));
      if (isH) {
        ok = v128.and(ok, f32x4.lt(f32x4.abs(x), lim));
        x = f32x4.mul(x, s);
      }
      v128.store(dst + (<usize>i << 4) + (<usize>r << 4), x);
    }
  }
  return i32x4.all_true(ok);
}

/**
 * score4F for 4 rows over f32 or f16 keys (isH), written so the loop's live vectors fit x64's 16
 * registers: in the generic loop (16 accumulators and per-group sums live across it) V8 spilled
 * accumulators to the stack. Slot pairs keep 8 accumulators (4 rows x 2 slots), the two key
 * vectors and one q vector; q is read from an interleaved L1-resident copy each step (one q
 * vector per row feeds both slots). One accumulator per row and slot: 8 independent add chains.
 */
// @ts-ignore: decorator
@inline
function score4Flt(
  isH: bool,
  d: i32,
  qIn: usize,
  qPos: usize,
  pay: usize,
  slotPos: usize,
  nSlots: i32,
  scale: f32,
  scores: usize,
  maxes: usize,
  qi: usize,
): i32 {
  if (!interleaveQ4(isH, qIn, d, qi)) return 1;
  const cH = v128.load(AK, 48);
  const rowBytes = <usize>d << (isH ? 1 : 2);
  const qEnd = qi + (<usize>d << 4);
  const P = v128.load(qPos); // the 4 rows' positions
  const p01 = max(i32x4.extract_lane(P, 0), i32x4.extract_lane(P, 1));
  const pmax = max(p01, max(i32x4.extract_lane(P, 2), i32x4.extract_lane(P, 3)));
  const sb = <usize>nSlots << 2;
  const vScale = f32x4.splat(scale);
  const ninf = v128.load(AK, 64); // from memory: V8 rebuilds a v128 constant at each use in a loop
  // Row maxima as one vector: pmax(m, s) = m < s ? s : m, i.e. `if (s > m) m = s` per lane.
  let M = ninf;
  let hm = i16x8.splat(0);
  let touch = i32x4.splat(0);
  let j = 0;
  while (j < nSlots) {
    const sp = load<i32>(slotPos + (<usize>j << 2));
    const spB = j + 1 < nSlots ? load<i32>(slotPos + (<usize>(j + 1) << 2)) : i32.MAX_VALUE;
    const o = scores + (<usize>j << 2);
    if (sp <= pmax && spB <= pmax) {
      let pA = pay + <usize>j * rowBytes;
      let pB = pA + rowBytes;
      // The loop below reads the two rows interleaved (16 bytes of one, then of the other), which
      // the hardware prefetcher did not follow: the key loads stalled on memory and pairs ran
      // slower than single slots. The next pair's lines are touched in address order: f32 in the
      // relaxed build (TOUCH_IN_LOOP), one 32-byte step per iteration of the loop (the pair's 8d
      // bytes over its d / 4 iterations), spread among the multiply-adds, which measured
      // 0.89-0.95x the call time of touching all 16 lines in a burst before the loop (Node 24,
      // Llama 16K); f16 and the baseline build keep the burst. Without a next pair the pointer
      // walks the current pair (in bounds).
      let nxp = j + 3 < nSlots ? pA + (rowBytes << 1) : pA;
      if ((isH || !TOUCH_IN_LOOP) && j + 3 < nSlots)
        for (let b: usize = 0; b < rowBytes << 1; b += 64) touch = v128.or(touch, v128.load32_zero(nxp + b));
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      if (isH) {
        for (let qq = qi; qq < qEnd; qq += 128) {
          // 8 columns of both slots: two halves of 4, each row's q vector shared by the slots.
          const rA = v128.load(pA);
          const rB = v128.load(pB);
          hm = hMark(hMark(hm, rA), rB);
          let xA = cvH(i32x4.extend_low_i16x8_s(rA), cH, cH, cH, cH);
          let xB = cvH(i32x4.extend_low_i16x8_s(rB), cH, cH, cH, cH);
          let qv = v128.load(qq);
          a0 = madd(qv, xA, a0);
          c0 = madd(qv, xB, c0);
          qv = v128.load(qq, 16);
          a1 = madd(qv, xA, a1);
          c1 = madd(qv, xB, c1);
          qv = v128.load(qq, 32);
          a2 = madd(qv, xA, a2);
          c2 = madd(qv, xB, c2);
          qv = v128.load(qq, 48);
          a3 = madd(qv, xA, a3);
          c3 = madd(qv, xB, c3);
          xA = cvH(i32x4.extend_high_i16x8_s(rA), cH, cH, cH, cH);
          xB = cvH(i32x4.extend_high_i16x8_s(rB), cH, cH, cH, cH);
          pA += 16;
          pB += 16;
          qv = v128.load(qq, 64);
          a0 = madd(qv, xA, a0);
          c0 = madd(qv, xB, c0);
          qv = v128.load(qq, 80);
          a1 = madd(qv, xA, a1);
          c1 = madd(qv, xB, c1);
          qv = v128.load(qq, 96);
          a2 = madd(qv, xA, a2);
          c2 = madd(qv, xB, c2);
          qv = v128.load(qq, 112);
          a3 = madd(qv, xA, a3);
          c3 = madd(qv, xB, c3);
        }
      } else {
        // 4 columns per iteration: V8 issues every load of an iteration first, so a longer body
        // (8 columns) held 12 loaded vectors beside the 8 accumulators and spilled; this one
        // holds 6 (2 keys, 4 q) + 8 + a product, within the 15 registers V8 allocates.
        for (let qq = qi; qq < qEnd; qq += 64) {
          if (TOUCH_IN_LOOP) {
            touch = v128.or(touch, v128.load32_zero(nxp));
            nxp += 32;
          }
          const xA = v128.load(pA);
          const xB = v128.load(pB);
          let qv = v128.load(qq);
          a0 = madd(qv, xA, a0);
          c0 = madd(qv, xB, c0);
          qv = v128.load(qq, 16);
          a1 = madd(qv, xA, a1);
          c1 = madd(qv, xB, c1);
          qv = v128.load(qq, 32);
          a2 = madd(qv, xA, a2);
          c2 = madd(qv, xB, c2);
          qv = v128.load(qq, 48);
          a3 = madd(qv, xA, a3);
          c3 = madd(qv, xB, c3);
          pA += 16;
          pB += 16;
        }
      }
      // The 8 sums (hsum4: hsum's order, same bits), scaled, masked where the slot is after a
      // row's position, folded into the maxima, and stored as (A, B) pairs per row: about 30
      // instructions where 8 scalar hsums with their branches took about 100.
      let sA = f32x4.mul(hsum4(a0, a1, a2, a3), vScale);
      let sB = f32x4.mul(hsum4(c0, c1, c2, c3), vScale);
      sA = v128.bitselect(sA, ninf, i32x4.le_s(i32x4.splat(sp), P));
      sB = v128.bitselect(sB, ninf, i32x4.le_s(i32x4.splat(spB), P));
      M = f32x4.pmax(f32x4.pmax(M, sA), sB);
      const lo = i32x4.shuffle(sA, sB, 0, 4, 1, 5); // rows 0, 1: (A, B)
      const hi = i32x4.shuffle(sA, sB, 2, 6, 3, 7); // rows 2, 3
      v128.store64_lane(o, lo, 0);
      v128.store64_lane(o + sb, lo, 1);
      v128.store64_lane(o + 2 * sb, hi, 0);
      v128.store64_lane(o + 3 * sb, hi, 1);
      j += 2;
      continue;
    }
    let S = ninf;
    if (sp <= pmax) {
      // One slot (the last one, or the neighbour is not visible): two accumulators per row.
      let p = pay + <usize>j * rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let qq = qi; qq < qEnd; qq += 128) {
        let x: v128, y: v128;
        if (isH) {
          const r = v128.load(p);
          hm = hMark(hm, r);
          x = cvH(i32x4.extend_low_i16x8_s(r), cH, cH, cH, cH);
          y = cvH(i32x4.extend_high_i16x8_s(r), cH, cH, cH, cH);
          p += 16;
        } else {
          x = v128.load(p);
          y = v128.load(p, 16);
          p += 32;
        }
        a0 = madd(v128.load(qq), x, a0);
        a1 = madd(v128.load(qq, 16), x, a1);
        a2 = madd(v128.load(qq, 32), x, a2);
        a3 = madd(v128.load(qq, 48), x, a3);
        b0 = madd(v128.load(qq, 64), y, b0);
        b1 = madd(v128.load(qq, 80), y, b1);
        b2 = madd(v128.load(qq, 96), y, b2);
        b3 = madd(v128.load(qq, 112), y, b3);
      }
      S = f32x4.mul(hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3)), vScale);
      S = v128.bitselect(S, ninf, i32x4.le_s(i32x4.splat(sp), P));
      M = f32x4.pmax(M, S);
    }
    v128.store32_lane(o, S, 0);
    v128.store32_lane(o + sb, S, 1);
    v128.store32_lane(o + 2 * sb, S, 2);
    v128.store32_lane(o + 3 * sb, S, 3);
    j++;
  }
  v128.store(maxes, M);
  v128.store(qi - 16, touch); // keeps the touching loads (the q-sum scratch, unused here)
  return isH && hBad(hm) ? 1 : 0;
}

// Own functions, so that the engine allocates their registers apart from the other kinds'.
function score4Flt32(d: i32, q: usize, qPos: usize, pay: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, qi: usize): i32 {
  return score4Flt(false, d, q, qPos, pay, slotPos, nSlots, scale, scores, maxes, qi);
}
function score4Flt16(d: i32, q: usize, qPos: usize, pay: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, qi: usize): i32 {
  return score4Flt(true, d, q, qPos, pay, slotPos, nSlots, scale, scores, maxes, qi);
}

// @ts-ignore: decorator
@inline
function score4KI(
  R: i32,
  kind: i32,
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
  work: usize,
): i32 {
  const qs = work; // (nG) vectors
  const qp = work + (<usize>d << 2); // (R, d) permuted q
  if (R == 1 && intDotOk(kind, G)) {
    let r = 2;
    if (kind == 8) r = sym ? score1I(8, true, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp) : score1I(8, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
    else r = sym ? score1I(4, true, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp) : score1I(4, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
    if (r == 0) return 0;
  }
  if (R == 4 && kind == FUSED_F32) return score4Flt32(d, q, qPos, pay, slotPos, nSlots, scale, scores, maxes, qp);
  if (R == 4 && kind == FUSED_F16) return score4Flt16(d, q, qPos, pay, slotPos, nSlots, scale, scores, maxes, qp);
  if (kind == FUSED_F32) return score4F(R, FUSED_F32, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
  if (kind == FUSED_F16) return score4F(R, FUSED_F16, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
  if (kind == 8) {
    if (sym) return score4F(R, 8, true, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
    return score4F(R, 8, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
  }
  if (sym) return score4F(R, 4, true, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
  return score4F(R, 4, false, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, qs, qp);
}

// The 4-row f32 weighted sum in its own function, its registers allocated apart from the other kinds'.
function mix4Flt32(d: i32, pay: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, ws: usize, corr: usize, idx: usize): i32 {
  return mix4F(4, FUSED_F32, false, d, d, pay, 0, 0, nSlots, e, invs, probs, acc, ws, corr, idx);
}

// @ts-ignore: decorator
@inline
function mix4KI(
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
): i32 {
  const corr = work; // (nG) vectors
  const idx = corr + (<usize>d << 2); // (JB) i32
  const ws = (idx + (JB << 2) + 15) & ~(<usize>15); // (JB, nG) vectors
  if (R == 4 && kind == FUSED_F32) return mix4Flt32(d, pay, nSlots, e, invs, probs, acc, ws, corr, idx);
  if (kind == FUSED_F32) return mix4F(R, FUSED_F32, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr, idx);
  if (kind == FUSED_F16) return mix4F(R, FUSED_F16, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr, idx);
  if (kind == 8) {
    if (sym) return mix4F(R, 8, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr, idx);
    return mix4F(R, 8, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr, idx);
  }
  if (sym) return mix4F(R, 4, true, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr, idx);
  return mix4F(R, 4, false, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, ws, corr, idx);
}

// One function per row count, each holding its kind specialisations: smaller functions for the
// engine's optimising compiler than one holding all of them.
function score4K1(kind: i32, sym: bool, G: i32, d: i32, q: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): i32 {
  return score4KI(1, kind, sym, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function score4K2(kind: i32, sym: bool, G: i32, d: i32, q: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): i32 {
  return score4KI(2, kind, sym, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function score4K4(kind: i32, sym: bool, G: i32, d: i32, q: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): i32 {
  return score4KI(4, kind, sym, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function mix4K1(kind: i32, sym: bool, G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): i32 {
  return mix4KI(1, kind, sym, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mix4K2(kind: i32, sym: bool, G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): i32 {
  return mix4KI(2, kind, sym, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
function mix4K4(kind: i32, sym: bool, G: i32, d: i32, pay: usize, sc: usize, ze: usize, nSlots: i32, e: usize, invs: usize, probs: usize, acc: usize, work: usize): i32 {
  return mix4KI(4, kind, sym, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}

/**
 * Scores of a block of `rows` (1, 2 or 4) query rows over f32 / f16 / int8 / int4 keys (kind
 * FUSED_F32, FUSED_F16, 8 or 4; see fusedOk): scores (rows, nSlots), row maxima to maxes.
 * work: fusedScratchBytes / 2. Returns 1 when the call must be redone on the exact path (f16).
 */
export function score4Fused(
  rows: i32,
  kind: i32,
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
  work: usize,
): i32 {
  if (rows == 1) return score4K1(kind, sym, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  if (rows == 2) return score4K2(kind, sym, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  return score4K4(kind, sym, G, d, q, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}

/**
 * Weighted sum of a block of `rows` (1, 2 or 4) over f32 / f16 / int8 / int4 values into acc
 * (rows, d), which it zeroes itself; probabilities to probs (rows, nSlots) when nonzero.
 * Returns 1 when the call must be redone on the exact path (f16 Inf/NaN).
 */
export function mix4Fused(
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
): i32 {
  if (rows == 1) return mix4K1(kind, sym, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
  if (rows == 2) return mix4K2(kind, sym, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
  return mix4K4(kind, sym, G, d, pay, sc, ze, nSlots, e, invs, probs, acc, work);
}
