// Scores of 1, 2 or 4 query rows in q8_0 form (cache option query: q8, src/quant/q8-query.ts)
// over int8 / int4 keys with integer dot products, as llama.cpp's ggml_vec_dot_q8_0_q8_0 and
// ggml_vec_dot_q4_0_q8_0 do (ggml-cpu/arch/x86/quants.c): per block b of 32 elements,
//   q . k = sum_b d_b * s_g(b) * (sum_{i in b} c_i u_i  -  off * sum_{i in b} c_i)  +  m_g(b) * sum_{i in b} qHat_i
// with c the query's int8 codes and d_b its block scale, u the stored unsigned key codes,
// s_g / m_g the key group's scale / zero-point (m = 0, off = 2^(bits-1) when symmetric; off = 0
// when asymmetric). The integer sums are exact (|sum| <= 32 * 127 * 255 < 2^24, so also exact
// in f32); the result differs from q̂ . k in f32 rounding only (the block and group products).
//
// Baseline SIMD: key codes split into i16 parts, i32x4.dot_i16x8_s (8 products per instruction)
// against the codes of q widened once per call. Relaxed SIMD (build/kvlab-relaxed.wasm,
// ASC_FEATURE_RELAXED_SIMD): i32x4.relaxed_dot_i8x16_i7x16_add_s (16 products and the add per
// instruction). Its second operand must be in [0, 127] for the result to be defined the same on
// every engine (x86's pmaddubsw reads it unsigned; also then no i16 pair sum saturates:
// 2 * 127 * 127 < 2^15): it is always a key code that is made so here, the 4-bit code itself
// (0..15) or a nibble of the 8-bit one (u = 16 hi + lo, two dots); q's codes (-127..127) are the
// first, signed operand. So both builds give bit-identical integer sums.
//
// Both builds read a slot's key row in chunks of blocks transposed so that each lane sums one
// block (blocks in lanes, below); int4 is read in storage order (low nibbles = even elements,
// high = odd) and q's codes are laid out once per call in the order the dots read them.
import { f16x4ToF32 } from "./half";
import { hsum4, madd } from "./simd";

/** Whether keys of this kind (8 or 4 bits) and group size take the integer path (blocks of 32 inside groups). */
// @ts-ignore: decorator
@inline
export function q8Ok(kind: i32, G: i32, d: i32): bool {
  return (kind == 8 || kind == 4) && G >= 32 && (G & 31) == 0 && d % G == 0;
}

/**
 * Scratch bytes of q8Scores: per chunk of blocks and row, q's codes in the chunk's operand
 * order (2d bytes per row in all in the baseline build as i16, d in the relaxed one) and three
 * vectors (48 bytes; at most d / 128 + 2 chunks).
 */
export function q8ScratchBytes(d: i32): i32 {
  return 10 * d + 48 * ((d + 31) >> 5) + 448;
}

// ---- Relaxed build: blocks in lanes ----
//
// The slot's key row is read in chunks of 4 blocks (then 2, then 1 for the rest of d / 32),
// each chunk's 16-byte vectors transposed in 32-bit units so that every lane holds bytes of one
// block (4 blocks: lane L = block L; 2 blocks: lanes 0-1 the first, 2-3 the second; 1 block: all
// lanes). The relaxed dot sums 4 adjacent byte products per lane, so a chunk's dots leave each
// block's integer sum in its own lanes with no horizontal sum per block; the chunk's f16 key
// scales convert as one vector, and a row's combination with its block scales is one vector
// multiply-add per chunk. The rows' partial vectors are summed across lanes once per slot. q's
// codes are laid out once per call in the order the chunk's dots read them, with three vectors
// per chunk and row: d_b * scale, off * sum c (i32), d_b * sum c * scale (the zero-point term),
// the last two in the block's first lane only. Against the per-block version (4 rows' block
// sums transposed per block, f16 scales converted one by one) this drops ~half the non-dot
// work per slot; int8 codes are split into nibbles (the i7 operand must be 0..127) and the
// high nibbles' sums are shifted once per chunk, not once per block; where the engine's dot
// takes an unsigned 8-bit second operand exactly (u8DotOk), whole int8 codes go in instead.

/** Byte (within its block) of byte t of lane L of key vector w of a chunk of nb blocks; block offset in bits 8+. */
// @ts-ignore: decorator
@inline
function chunkByte(nb: i32, w: i32, L: i32, t: i32): i32 {
  if (nb == 4) return (L << 8) | (((w >> 2) << 4) + ((w & 3) << 2) + t);
  if (nb == 2) return ((L >> 1) << 8) | (((w >> 1) << 4) + ((w & 1) << 3) + ((L & 1) << 2) + t);
  return (w << 4) + (L << 2) + t;
}

/** Lay out the R rows' q codes (qc (R, d) i8, qs (R, d / 32) f32) per chunk at work (see above). */
// @ts-ignore: decorator
@inline
function prepQx(R: i32, kind: i32, off: i32, d: i32, qc: usize, qs: usize, scale: f32, work: usize): void {
  const nB = d >> 5;
  const BB = kind == 8 ? 32 : 16;
  const wq = kind == 8 ? 16 : 32;
  let p = work;
  for (let b0 = 0; b0 < nB; ) {
    const nb = nB - b0 >= 4 ? 4 : nB - b0 >= 2 ? 2 : 1;
    const nW = (nb * BB) >> 4;
    const rs = nW * wq + 48;
    for (let r = 0; r < R; r++) {
      const base = p + <usize>(r * rs);
      const src = qc + <usize>r * <usize>d;
      for (let w = 0; w < nW; w++)
        for (let L = 0; L < 4; L++)
          for (let t = 0; t < 4; t++) {
            const x = chunkByte(nb, w, L, t);
            const e = (b0 + (x >> 8)) * 32 + (x & 255) * (kind == 8 ? 1 : 2);
            const o = base + <usize>(w * wq + (L << 2) + t);
            store<i8>(o, load<i8>(src + <usize>e));
            if (kind == 4) store<i8>(o, load<i8>(src + <usize>(e + 1)), 16);
          }
      const m = base + <usize>(nW * wq);
      for (let L = 0; L < 4; L++) {
        const bo = nb == 4 ? L : nb == 2 ? L >> 1 : 0;
        const first = nb == 4 || (nb == 2 ? (L & 1) == 0 : L == 0);
        const b = b0 + bo;
        let sum = 0;
        for (let k = 0; k < 32; k++) sum += <i32>load<i8>(src + <usize>(b * 32 + k));
        const db = load<f32>(qs + (<usize>(r * nB + b) << 2));
        store<f32>(m + (<usize>L << 2), db * scale);
        store<i32>(m + (<usize>L << 2), first ? off * sum : 0, 16);
        store<f32>(m + (<usize>L << 2), first ? db * <f32>sum * scale : 0, 32);
      }
    }
    p += <usize>(R * rs);
    b0 += nb;
  }
}

/** The f16 fields (scales or zero-points, at base + 2 g for group g) of a chunk's lanes as f32. */
// @ts-ignore: decorator
@inline
function chunkF16(base: usize, b0: i32, nb: i32, bPerG: i32): v128 {
  let h: v128;
  if (bPerG == 1) {
    if (nb == 4) h = i32x4.extend_low_i16x8_u(v128.load64_zero(base + (<usize>b0 << 1)));
    else if (nb == 2)
      h = i32x4.shuffle(i32x4.extend_low_i16x8_u(v128.load32_zero(base + (<usize>b0 << 1))), i32x4.splat(0), 0, 0, 1, 1);
    else h = i32x4.splat(<i32>load<u16>(base + (<usize>b0 << 1)));
  } else {
    const g0 = <usize>(b0 / bPerG);
    if (nb == 1) h = i32x4.splat(<i32>load<u16>(base + (g0 << 1)));
    else {
      const g1 = <usize>((b0 + 1) / bPerG);
      if (nb == 2) {
        h = i32x4.splat(<i32>load<u16>(base + (g0 << 1)));
        h = i32x4.replace_lane(h, 2, <i32>load<u16>(base + (g1 << 1)));
        h = i32x4.replace_lane(h, 3, <i32>load<u16>(base + (g1 << 1)));
      } else {
        h = i32x4.splat(<i32>load<u16>(base + (g0 << 1)));
        h = i32x4.replace_lane(h, 1, <i32>load<u16>(base + (g1 << 1)));
        h = i32x4.replace_lane(h, 2, <i32>load<u16>(base + (<usize>((b0 + 2) / bPerG) << 1)));
        h = i32x4.replace_lane(h, 3, <i32>load<u16>(base + (<usize>((b0 + 3) / bPerG) << 1)));
      }
    }
  }
  return f16x4ToF32(h);
}

/** c (its product with 4 i8 codes of q at q, added in each lane) for one key vector's nibbles. */
// @ts-ignore: decorator
@inline
function qdot(q: usize, k: v128, c: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(q), k, c);
}

/**
 * S + one row's chunk: its integer sums (lo + 16 hi for int8 nibbles, lo + hi for int4 and for
 * whole int8 codes) times d_b scale s_g, plus m_g d_b sum c scale.
 */
// @ts-ignore: decorator
@inline
function combine(kind: i32, u8: bool, sym: bool, lo: v128, hi: v128, sv: v128, mv: v128, m: usize, S: v128): v128 {
  let t = kind == 8 && !u8 ? i32x4.add(lo, i32x4.shl(hi, 4)) : i32x4.add(lo, hi);
  if (sym) t = i32x4.sub(t, v128.load(m, 16));
  S = madd(f32x4.convert_i32x4_s(t), f32x4.mul(v128.load(m), sv), S);
  if (!sym) S = madd(mv, v128.load(m, 32), S);
  return S;
}

/**
 * Whether this engine's relaxed dot multiplies a second operand of 128..255 as unsigned, with
 * exact i32 sums (x64 with AVX-VNNI: vpdpbusd): then whole int8 key codes can be that operand,
 * one dot per 16 codes instead of two over their nibbles. The standard leaves it
 * implementation-defined (ARM's sdot reads it signed; x64 without VNNI saturates i16 pair sums),
 * so it is probed on operands loaded from memory (not constants a compiler could fold), inside
 * the kernel function itself, so that the probe and the loop run the same compiled code. Either
 * path gives the same exact integer sums, so the same scores.
 */
// @ts-ignore: decorator
@inline
function u8DotOk(work: usize): bool {
  v128.store(work, i32x4(0x7f7f7f7f, 0x80808080, 0, 0));
  v128.store(work, i8x16.splat(-1), 16);
  const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(work), v128.load(work, 16), i32x4.splat(0));
  return i32x4.extract_lane(r, 0) == 4 * 127 * 255 && i32x4.extract_lane(r, 1) == -4 * 128 * 255;
}

/** q8ScoresB for the relaxed build (blocks in lanes, above); u8: whole int8 codes as the dot's second operand (u8DotOk). */
// @ts-ignore: decorator
@inline
function q8ScoresX(
  R: i32,
  kind: i32,
  sym: bool,
  u8: bool,
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
  prepQx(R, kind, off, d, qc, qs, scale, work);
  const nB = d >> 5;
  const nG = d / G;
  const bPerG = G >> 5;
  const BB: usize = kind == 8 ? 32 : 16; // key bytes per block
  const nH = kind == 8 ? 2 : 1; // 16-byte vectors per block
  const wq: usize = kind == 8 ? 16 : 32; // q bytes per key vector (int4: even, then odd elements)
  const hq: usize = kind == 8 ? 0 : 16; // offset of the high nibbles' q codes
  const rowBytes: usize = kind == 8 ? <usize>d : <usize>d >> 1;
  const m0f = i8x16.splat(0x0f);
  const vNegInf = f32x4.splat(-Infinity);
  const qp = R == 4 ? v128.load(qPos) : R == 2 ? v128.load64_zero(qPos) : i32x4.splat(load<i32>(qPos));
  let vmax = vNegInf;
  const zero = i32x4.splat(0);
  for (let j = 0; j < nSlots; j++) {
    const row = pay + <usize>j * rowBytes;
    const scj = (<usize>j * <usize>nG) << 1;
    let S0 = zero, S1 = zero, S2 = zero, S3 = zero;
    let p = work;
    let b0 = 0;
    if (u8) {
      for (; b0 + 4 <= nB; b0 += 4) {
        const nW: usize = (<usize>4 * BB) >> 4;
        const rs: usize = nW * wq + 48; // bytes per row of this chunk's q data
        let l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero, l3 = zero, h3 = zero;
        for (let h = 0; h < nH; h++) {
          const kb = row + <usize>b0 * BB + (<usize>h << 4);
          const A = v128.load(kb);
          const B = v128.load(kb + BB);
          const C = v128.load(kb + 2 * BB);
          const D = v128.load(kb + 3 * BB);
          // 4x4 transpose in 32-bit units: W_l = [A_l, B_l, C_l, D_l]
          const t0 = i32x4.shuffle(A, B, 0, 4, 1, 5);
          const t1 = i32x4.shuffle(A, B, 2, 6, 3, 7);
          const t2 = i32x4.shuffle(C, D, 0, 4, 1, 5);
          const t3 = i32x4.shuffle(C, D, 2, 6, 3, 7);
          const W0 = i32x4.shuffle(t0, t2, 0, 1, 4, 5);
          const W1 = i32x4.shuffle(t0, t2, 2, 3, 6, 7);
          const W2 = i32x4.shuffle(t1, t3, 0, 1, 4, 5);
          const W3 = i32x4.shuffle(t1, t3, 2, 3, 6, 7);
          const qv = p + <usize>h * 4 * wq;
          {
            const q = qv;
            l0 = qdot(q, W0, l0);
            if (R > 1) {
              l1 = qdot(q + rs, W0, l1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, W0, l2);
              l3 = qdot(q + 3 * rs, W0, l3);
            }
          }
          {
            const q = qv + wq;
            h0 = qdot(q, W1, h0);
            if (R > 1) {
              h1 = qdot(q + rs, W1, h1);
            }
            if (R > 2) {
              h2 = qdot(q + 2 * rs, W1, h2);
              h3 = qdot(q + 3 * rs, W1, h3);
            }
          }
          {
            const q = qv + 2 * wq;
            l0 = qdot(q, W2, l0);
            if (R > 1) {
              l1 = qdot(q + rs, W2, l1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, W2, l2);
              l3 = qdot(q + 3 * rs, W2, l3);
            }
          }
          {
            const q = qv + 3 * wq;
            h0 = qdot(q, W3, h0);
            if (R > 1) {
              h1 = qdot(q + rs, W3, h1);
            }
            if (R > 2) {
              h2 = qdot(q + 2 * rs, W3, h2);
              h3 = qdot(q + 3 * rs, W3, h3);
            }
          }
        }
        const sv = chunkF16(sc + scj, b0, 4, bPerG);
        const mv = sym ? zero : chunkF16(ze + scj, b0, 4, bPerG);
        const m = p + nW * wq;
        S0 = combine(kind, u8, sym, l0, h0, sv, mv, m, S0);
        if (R > 1) S1 = combine(kind, u8, sym, l1, h1, sv, mv, m + rs, S1);
        if (R > 2) {
          S2 = combine(kind, u8, sym, l2, h2, sv, mv, m + 2 * rs, S2);
          S3 = combine(kind, u8, sym, l3, h3, sv, mv, m + 3 * rs, S3);
        }
        p += <usize>R * rs;
      }
      if (b0 + 2 <= nB) {
        const nW: usize = (<usize>2 * BB) >> 4;
        const rs: usize = nW * wq + 48; // bytes per row of this chunk's q data
        let l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero, l3 = zero, h3 = zero;
        for (let h = 0; h < nH; h++) {
          const kb = row + <usize>b0 * BB + (<usize>h << 4);
          const A = v128.load(kb);
          const B = v128.load(kb + BB);
          // lanes 0-1 from the first block, 2-3 from the second
          const W0 = i32x4.shuffle(A, B, 0, 1, 4, 5);
          const W1 = i32x4.shuffle(A, B, 2, 3, 6, 7);
          const qv = p + <usize>h * 2 * wq;
          {
            const q = qv;
            l0 = qdot(q, W0, l0);
            if (R > 1) {
              l1 = qdot(q + rs, W0, l1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, W0, l2);
              l3 = qdot(q + 3 * rs, W0, l3);
            }
          }
          {
            const q = qv + wq;
            h0 = qdot(q, W1, h0);
            if (R > 1) {
              h1 = qdot(q + rs, W1, h1);
            }
            if (R > 2) {
              h2 = qdot(q + 2 * rs, W1, h2);
              h3 = qdot(q + 3 * rs, W1, h3);
            }
          }
        }
        const sv = chunkF16(sc + scj, b0, 2, bPerG);
        const mv = sym ? zero : chunkF16(ze + scj, b0, 2, bPerG);
        const m = p + nW * wq;
        S0 = combine(kind, u8, sym, l0, h0, sv, mv, m, S0);
        if (R > 1) S1 = combine(kind, u8, sym, l1, h1, sv, mv, m + rs, S1);
        if (R > 2) {
          S2 = combine(kind, u8, sym, l2, h2, sv, mv, m + 2 * rs, S2);
          S3 = combine(kind, u8, sym, l3, h3, sv, mv, m + 3 * rs, S3);
        }
        p += <usize>R * rs;
        b0 += 2;
      }
      if (b0 < nB) {
        const nW: usize = (<usize>1 * BB) >> 4;
        const rs: usize = nW * wq + 48; // bytes per row of this chunk's q data
        let l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero, l3 = zero, h3 = zero;
        for (let h = 0; h < nH; h++) {
          const kb = row + <usize>b0 * BB + (<usize>h << 4);
          const W0 = v128.load(kb);
          const qv = p + <usize>h * wq;
          {
            const q = qv;
            l0 = qdot(q, W0, l0);
            if (R > 1) {
              l1 = qdot(q + rs, W0, l1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, W0, l2);
              l3 = qdot(q + 3 * rs, W0, l3);
            }
          }
        }
        const sv = chunkF16(sc + scj, b0, 1, bPerG);
        const mv = sym ? zero : chunkF16(ze + scj, b0, 1, bPerG);
        const m = p + nW * wq;
        S0 = combine(kind, u8, sym, l0, h0, sv, mv, m, S0);
        if (R > 1) S1 = combine(kind, u8, sym, l1, h1, sv, mv, m + rs, S1);
        if (R > 2) {
          S2 = combine(kind, u8, sym, l2, h2, sv, mv, m + 2 * rs, S2);
          S3 = combine(kind, u8, sym, l3, h3, sv, mv, m + 3 * rs, S3);
        }
        p += <usize>R * rs;
      }
    } else {
      for (; b0 + 4 <= nB; b0 += 4) {
        const nW: usize = (<usize>4 * BB) >> 4;
        const rs: usize = nW * wq + 48; // bytes per row of this chunk's q data
        let l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero, l3 = zero, h3 = zero;
        for (let h = 0; h < nH; h++) {
          const kb = row + <usize>b0 * BB + (<usize>h << 4);
          const A = v128.load(kb);
          const B = v128.load(kb + BB);
          const C = v128.load(kb + 2 * BB);
          const D = v128.load(kb + 3 * BB);
          // 4x4 transpose in 32-bit units: W_l = [A_l, B_l, C_l, D_l]
          const t0 = i32x4.shuffle(A, B, 0, 4, 1, 5);
          const t1 = i32x4.shuffle(A, B, 2, 6, 3, 7);
          const t2 = i32x4.shuffle(C, D, 0, 4, 1, 5);
          const t3 = i32x4.shuffle(C, D, 2, 6, 3, 7);
          const W0 = i32x4.shuffle(t0, t2, 0, 1, 4, 5);
          const W1 = i32x4.shuffle(t0, t2, 2, 3, 6, 7);
          const W2 = i32x4.shuffle(t1, t3, 0, 1, 4, 5);
          const W3 = i32x4.shuffle(t1, t3, 2, 3, 6, 7);
          const qv = p + <usize>h * 4 * wq;
          {
            const lo = v128.and(W0, m0f);
            const hi = i8x16.shr_u(W0, 4);
            const q = qv;
            l0 = qdot(q, lo, l0);
            h0 = qdot(q + hq, hi, h0);
            if (R > 1) {
              l1 = qdot(q + rs, lo, l1);
              h1 = qdot(q + rs + hq, hi, h1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, lo, l2);
              h2 = qdot(q + 2 * rs + hq, hi, h2);
              l3 = qdot(q + 3 * rs, lo, l3);
              h3 = qdot(q + 3 * rs + hq, hi, h3);
            }
          }
          {
            const lo = v128.and(W1, m0f);
            const hi = i8x16.shr_u(W1, 4);
            const q = qv + wq;
            l0 = qdot(q, lo, l0);
            h0 = qdot(q + hq, hi, h0);
            if (R > 1) {
              l1 = qdot(q + rs, lo, l1);
              h1 = qdot(q + rs + hq, hi, h1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, lo, l2);
              h2 = qdot(q + 2 * rs + hq, hi, h2);
              l3 = qdot(q + 3 * rs, lo, l3);
              h3 = qdot(q + 3 * rs + hq, hi, h3);
            }
          }
          {
            const lo = v128.and(W2, m0f);
            const hi = i8x16.shr_u(W2, 4);
            const q = qv + 2 * wq;
            l0 = qdot(q, lo, l0);
            h0 = qdot(q + hq, hi, h0);
            if (R > 1) {
              l1 = qdot(q + rs, lo, l1);
              h1 = qdot(q + rs + hq, hi, h1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, lo, l2);
              h2 = qdot(q + 2 * rs + hq, hi, h2);
              l3 = qdot(q + 3 * rs, lo, l3);
              h3 = qdot(q + 3 * rs + hq, hi, h3);
            }
          }
          {
            const lo = v128.and(W3, m0f);
            const hi = i8x16.shr_u(W3, 4);
            const q = qv + 3 * wq;
            l0 = qdot(q, lo, l0);
            h0 = qdot(q + hq, hi, h0);
            if (R > 1) {
              l1 = qdot(q + rs, lo, l1);
              h1 = qdot(q + rs + hq, hi, h1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, lo, l2);
              h2 = qdot(q + 2 * rs + hq, hi, h2);
              l3 = qdot(q + 3 * rs, lo, l3);
              h3 = qdot(q + 3 * rs + hq, hi, h3);
            }
          }
        }
        const sv = chunkF16(sc + scj, b0, 4, bPerG);
        const mv = sym ? zero : chunkF16(ze + scj, b0, 4, bPerG);
        const m = p + nW * wq;
        S0 = combine(kind, u8, sym, l0, h0, sv, mv, m, S0);
        if (R > 1) S1 = combine(kind, u8, sym, l1, h1, sv, mv, m + rs, S1);
        if (R > 2) {
          S2 = combine(kind, u8, sym, l2, h2, sv, mv, m + 2 * rs, S2);
          S3 = combine(kind, u8, sym, l3, h3, sv, mv, m + 3 * rs, S3);
        }
        p += <usize>R * rs;
      }
      if (b0 + 2 <= nB) {
        const nW: usize = (<usize>2 * BB) >> 4;
        const rs: usize = nW * wq + 48; // bytes per row of this chunk's q data
        let l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero, l3 = zero, h3 = zero;
        for (let h = 0; h < nH; h++) {
          const kb = row + <usize>b0 * BB + (<usize>h << 4);
          const A = v128.load(kb);
          const B = v128.load(kb + BB);
          // lanes 0-1 from the first block, 2-3 from the second
          const W0 = i32x4.shuffle(A, B, 0, 1, 4, 5);
          const W1 = i32x4.shuffle(A, B, 2, 3, 6, 7);
          const qv = p + <usize>h * 2 * wq;
          {
            const lo = v128.and(W0, m0f);
            const hi = i8x16.shr_u(W0, 4);
            const q = qv;
            l0 = qdot(q, lo, l0);
            h0 = qdot(q + hq, hi, h0);
            if (R > 1) {
              l1 = qdot(q + rs, lo, l1);
              h1 = qdot(q + rs + hq, hi, h1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, lo, l2);
              h2 = qdot(q + 2 * rs + hq, hi, h2);
              l3 = qdot(q + 3 * rs, lo, l3);
              h3 = qdot(q + 3 * rs + hq, hi, h3);
            }
          }
          {
            const lo = v128.and(W1, m0f);
            const hi = i8x16.shr_u(W1, 4);
            const q = qv + wq;
            l0 = qdot(q, lo, l0);
            h0 = qdot(q + hq, hi, h0);
            if (R > 1) {
              l1 = qdot(q + rs, lo, l1);
              h1 = qdot(q + rs + hq, hi, h1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, lo, l2);
              h2 = qdot(q + 2 * rs + hq, hi, h2);
              l3 = qdot(q + 3 * rs, lo, l3);
              h3 = qdot(q + 3 * rs + hq, hi, h3);
            }
          }
        }
        const sv = chunkF16(sc + scj, b0, 2, bPerG);
        const mv = sym ? zero : chunkF16(ze + scj, b0, 2, bPerG);
        const m = p + nW * wq;
        S0 = combine(kind, u8, sym, l0, h0, sv, mv, m, S0);
        if (R > 1) S1 = combine(kind, u8, sym, l1, h1, sv, mv, m + rs, S1);
        if (R > 2) {
          S2 = combine(kind, u8, sym, l2, h2, sv, mv, m + 2 * rs, S2);
          S3 = combine(kind, u8, sym, l3, h3, sv, mv, m + 3 * rs, S3);
        }
        p += <usize>R * rs;
        b0 += 2;
      }
      if (b0 < nB) {
        const nW: usize = (<usize>1 * BB) >> 4;
        const rs: usize = nW * wq + 48; // bytes per row of this chunk's q data
        let l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero, l3 = zero, h3 = zero;
        for (let h = 0; h < nH; h++) {
          const kb = row + <usize>b0 * BB + (<usize>h << 4);
          const W0 = v128.load(kb);
          const qv = p + <usize>h * wq;
          {
            const lo = v128.and(W0, m0f);
            const hi = i8x16.shr_u(W0, 4);
            const q = qv;
            l0 = qdot(q, lo, l0);
            h0 = qdot(q + hq, hi, h0);
            if (R > 1) {
              l1 = qdot(q + rs, lo, l1);
              h1 = qdot(q + rs + hq, hi, h1);
            }
            if (R > 2) {
              l2 = qdot(q + 2 * rs, lo, l2);
              h2 = qdot(q + 2 * rs + hq, hi, h2);
              l3 = qdot(q + 3 * rs, lo, l3);
              h3 = qdot(q + 3 * rs + hq, hi, h3);
            }
          }
        }
        const sv = chunkF16(sc + scj, b0, 1, bPerG);
        const mv = sym ? zero : chunkF16(ze + scj, b0, 1, bPerG);
        const m = p + nW * wq;
        S0 = combine(kind, u8, sym, l0, h0, sv, mv, m, S0);
        if (R > 1) S1 = combine(kind, u8, sym, l1, h1, sv, mv, m + rs, S1);
        if (R > 2) {
          S2 = combine(kind, u8, sym, l2, h2, sv, mv, m + 2 * rs, S2);
          S3 = combine(kind, u8, sym, l3, h3, sv, mv, m + 3 * rs, S3);
        }
        p += <usize>R * rs;
      }
    }
    let S: v128;
    if (R == 4) S = hsum4(S0, S1, S2, S3);
    else if (R == 2) {
      const t = f32x4.add(i32x4.shuffle(S0, S1, 0, 1, 4, 5), i32x4.shuffle(S0, S1, 2, 3, 6, 7));
      S = f32x4.add(i32x4.shuffle(t, t, 0, 2, 0, 2), i32x4.shuffle(t, t, 1, 3, 1, 3));
    } else {
      const t = f32x4.add(S0, i32x4.shuffle(S0, S0, 2, 3, 0, 1));
      S = f32x4.add(t, i32x4.shuffle(t, t, 1, 0, 3, 2));
    }
    const vis = i32x4.le_s(i32x4.splat(load<i32>(slotPos + (<usize>j << 2))), qp);
    S = v128.bitselect(S, vNegInf, vis);
    vmax = f32x4.pmax(vmax, S);
    const sp = scores + (<usize>j << 2);
    const rsc = <usize>nSlots << 2;
    v128.store32_lane(sp, S, 0);
    if (R > 1) v128.store32_lane(sp + rsc, S, 1);
    if (R > 2) v128.store32_lane(sp + 2 * rsc, S, 2);
    if (R > 3) v128.store32_lane(sp + 3 * rsc, S, 3);
  }
  store<f32>(maxes, f32x4.extract_lane(vmax, 0));
  if (R > 1) store<f32>(maxes, f32x4.extract_lane(vmax, 1), 4);
  if (R > 2) store<f32>(maxes, f32x4.extract_lane(vmax, 2), 8);
  if (R > 3) store<f32>(maxes, f32x4.extract_lane(vmax, 3), 12);
}

// ---- Baseline build: blocks in lanes ----
//
// The same chunks of 4 blocks (then 2, then 1) as the relaxed build below, transposed in 32-bit
// units so that each lane holds bytes of one block. i32x4.dot_i16x8_s needs i16 operands; the
// codes are split into i16 parts without leaving their 32-bit lane: int8 as the even bytes
// (and 0x00ff) and the odd bytes (shr_u 8), int4 as the four nibbles of each 16-bit unit
// (and 0x000f after shr_u 0, 4, 8, 12). Each dot then adds 2 products of one block into that
// block's lane, so a chunk's dots leave its blocks' integer sums in their lanes with no
// horizontal sum per block (the per-block version transposed 4 rows' block sums per block:
// 6 shuffles and 3 adds), and the chunk's f16 key scales convert as one vector, not one by one
// per group. q's codes are laid out once per call as i16 in the order the dots read them,
// with three vectors per chunk and row: d_b, off * sum c (i32), d_b * sum c (in the block's
// first lane only); the score's scale multiplies once per slot (folding it into d_b, as
// the relaxed build does, would add a rounding per block). A chunk's rows are summed across
// lanes once (tsumF): the f32 order differs from the per-block version (integer sums equal).

/**
 * Lay out the R rows' q codes (qc (R, d) i8, qs (R, d / 32) f32) per chunk at work for
 * q8ScoresB: per chunk and row, for each transposed key vector v (h nb + w: half h of int8's
 * blocks, w of the chunk's transposed vectors) and each of its i16 parts s, 8 i16 codes
 * (lane 2 L + k: the element whose key code that part holds there), then the three vectors.
 */
// @ts-ignore: decorator
@inline
function prepQb(R: i32, kind: i32, off: i32, d: i32, qc: usize, qs: usize, work: usize): void {
  const nB = d >> 5;
  const nS = kind == 8 ? 2 : 4; // i16 parts per key vector
  const nH = kind == 8 ? 2 : 1; // 16-byte vectors per block
  let p = work;
  for (let b0 = 0; b0 < nB; ) {
    const nb = nB - b0 >= 4 ? 4 : nB - b0 >= 2 ? 2 : 1;
    const rs = nb * 64 + 48;
    for (let r = 0; r < R; r++) {
      const base = p + <usize>(r * rs);
      const src = qc + <usize>r * <usize>d;
      for (let v = 0; v < nb * nH; v++)
        for (let s = 0; s < nS; s++)
          for (let L = 0; L < 4; L++)
            for (let k = 0; k < 2; k++) {
              // int8: part s holds byte 2k + s of the lane; int4: nibble s & 1 of byte 2k + (s >> 1)
              const x = chunkByte(nb, v, L, kind == 8 ? 2 * k + s : 2 * k + (s >> 1));
              const e = (b0 + (x >> 8)) * 32 + (kind == 8 ? x & 255 : 2 * (x & 255) + (s & 1));
              store<i16>(base + <usize>(((v * nS + s) << 4) + (((L << 1) + k) << 1)), <i16>load<i8>(src + <usize>e));
            }
      const m = base + <usize>(nb * 64);
      for (let L = 0; L < 4; L++) {
        const bo = nb == 4 ? L : nb == 2 ? L >> 1 : 0;
        const first = nb == 4 || (nb == 2 ? (L & 1) == 0 : L == 0);
        const b = b0 + bo;
        let sum = 0;
        for (let k = 0; k < 32; k++) sum += <i32>load<i8>(src + <usize>(b * 32 + k));
        const db = load<f32>(qs + (<usize>(r * nB + b) << 2));
        store<f32>(m + (<usize>L << 2), first ? db : 0);
        store<i32>(m + (<usize>L << 2), first ? off * sum : 0, 16);
        store<f32>(m + (<usize>L << 2), first ? db * <f32>sum : 0, 32);
      }
    }
    p += <usize>(R * rs);
    b0 += nb;
  }
}

/** i16 part s of a transposed key vector W (see above). */
// @ts-ignore: decorator
@inline
function kPart(kind: i32, W: v128, s: i32): v128 {
  if (kind == 8) return s == 0 ? v128.and(W, i16x8.splat(0xff)) : i16x8.shr_u(W, 8);
  if (s == 3) return i16x8.shr_u(W, 12);
  const m = i16x8.splat(0x0f);
  return s == 0 ? v128.and(W, m) : v128.and(i16x8.shr_u(W, <i32>(s << 2)), m);
}

/** acc plus one row's dots (its i16 codes at q) with a key vector's parts k0, k1 (int4: also k2, k3). */
// @ts-ignore: decorator
@inline
function rdotB(kind: i32, q: usize, k0: v128, k1: v128, k2: v128, k3: v128, acc: v128): v128 {
  acc = i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(q), k0));
  acc = i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(q, 16), k1));
  if (kind == 4) {
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(q, 32), k2));
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(q, 48), k3));
  }
  return acc;
}

/**
 * One row's chunk: its integer sums t (less off sum c) times d_b s_g, plus m_g d_b sum c. A block
 * that spans 2 or 4 lanes (chunks of 2 or 1 blocks) has its lanes' integer sums added first
 * (exact), so that it takes one product, as in a 4-block chunk (d_b is 0 in its other lanes).
 */
// @ts-ignore: decorator
@inline
function combineB(nb: i32, sym: bool, t: v128, sv: v128, mv: v128, m: usize): v128 {
  if (nb < 4) t = i32x4.add(t, i32x4.shuffle(t, t, 1, 0, 3, 2));
  if (nb < 2) t = i32x4.add(t, i32x4.shuffle(t, t, 2, 3, 0, 1));
  if (sym) t = i32x4.sub(t, v128.load(m, 16));
  const S = f32x4.mul(f32x4.convert_i32x4_s(t), f32x4.mul(v128.load(m), sv));
  return sym ? S : madd(mv, v128.load(m, 32), S);
}

/**
 * The R rows' scores over one chunk of nb blocks (first block b0) of the slot's key row (row)
 * with q's chunk data at p: rows in lanes (lanes R..3 unused).
 */
// @ts-ignore: decorator
@inline
function chunkB(R: i32, kind: i32, sym: bool, nb: i32, bPerG: i32, row: usize, scs: usize, zes: usize, b0: i32, p: usize): v128 {
  const BB: usize = kind == 8 ? 32 : 16; // key bytes per block
  const nH = kind == 8 ? 2 : 1;
  const vq: usize = kind == 8 ? 32 : 64; // q bytes per key vector and row
  const rs: usize = <usize>(nb * 64 + 48); // q bytes per row of this chunk
  const zero = i32x4.splat(0);
  // int4, 4 blocks: two passes over 8 bytes of each block, so that only two transposed vectors'
  // parts (8 vectors) are live at a time (the compiler orders the dots row by row; with all four
  // vectors' 16 parts live, V8 spilled 18 of them per slot)
  const halves = kind == 4 && nb == 4;
  const nPass = halves ? 2 : nH;
  const wPer = halves ? 2 : nb; // transposed key vectors per pass
  let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
  for (let h = 0; h < nPass; h++) {
    const kb = row + <usize>b0 * BB + (<usize>h << (halves ? 3 : 4));
    const A = halves ? v128.load64_zero(kb) : v128.load(kb);
    let W0 = A, W1 = A, W2 = A, W3 = A;
    if (halves) {
      // W_l = [A_2h+l, B_2h+l, C_2h+l, D_2h+l] in 32-bit units
      const t0 = i32x4.shuffle(A, v128.load64_zero(kb + BB), 0, 4, 1, 5);
      const t2 = i32x4.shuffle(v128.load64_zero(kb + 2 * BB), v128.load64_zero(kb + 3 * BB), 0, 4, 1, 5);
      W0 = i32x4.shuffle(t0, t2, 0, 1, 4, 5);
      W1 = i32x4.shuffle(t0, t2, 2, 3, 6, 7);
    } else if (nb == 4) {
      const B = v128.load(kb + BB);
      const C = v128.load(kb + 2 * BB);
      const D = v128.load(kb + 3 * BB);
      // 4x4 transpose in 32-bit units: W_l = [A_l, B_l, C_l, D_l]
      const t0 = i32x4.shuffle(A, B, 0, 4, 1, 5);
      const t1 = i32x4.shuffle(A, B, 2, 6, 3, 7);
      const t2 = i32x4.shuffle(C, D, 0, 4, 1, 5);
      const t3 = i32x4.shuffle(C, D, 2, 6, 3, 7);
      W0 = i32x4.shuffle(t0, t2, 0, 1, 4, 5);
      W1 = i32x4.shuffle(t0, t2, 2, 3, 6, 7);
      W2 = i32x4.shuffle(t1, t3, 0, 1, 4, 5);
      W3 = i32x4.shuffle(t1, t3, 2, 3, 6, 7);
    } else if (nb == 2) {
      // lanes 0-1 from the first block, 2-3 from the second
      const B = v128.load(kb + BB);
      W0 = i32x4.shuffle(A, B, 0, 1, 4, 5);
      W1 = i32x4.shuffle(A, B, 2, 3, 6, 7);
    }
    const qv = p + <usize>(h * wPer) * vq;
    {
      const k0 = kPart(kind, W0, 0), k1 = kPart(kind, W0, 1);
      const k2 = kind == 4 ? kPart(kind, W0, 2) : zero, k3 = kind == 4 ? kPart(kind, W0, 3) : zero;
      a0 = rdotB(kind, qv, k0, k1, k2, k3, a0);
      if (R > 1) a1 = rdotB(kind, qv + rs, k0, k1, k2, k3, a1);
      if (R > 2) {
        a2 = rdotB(kind, qv + 2 * rs, k0, k1, k2, k3, a2);
        a3 = rdotB(kind, qv + 3 * rs, k0, k1, k2, k3, a3);
      }
    }
    if (wPer > 1) {
      const q = qv + vq;
      const k0 = kPart(kind, W1, 0), k1 = kPart(kind, W1, 1);
      const k2 = kind == 4 ? kPart(kind, W1, 2) : zero, k3 = kind == 4 ? kPart(kind, W1, 3) : zero;
      a0 = rdotB(kind, q, k0, k1, k2, k3, a0);
      if (R > 1) a1 = rdotB(kind, q + rs, k0, k1, k2, k3, a1);
      if (R > 2) {
        a2 = rdotB(kind, q + 2 * rs, k0, k1, k2, k3, a2);
        a3 = rdotB(kind, q + 3 * rs, k0, k1, k2, k3, a3);
      }
    }
    if (wPer > 2) {
      {
        const q = qv + 2 * vq;
        const k0 = kPart(kind, W2, 0), k1 = kPart(kind, W2, 1);
        const k2 = kind == 4 ? kPart(kind, W2, 2) : zero, k3 = kind == 4 ? kPart(kind, W2, 3) : zero;
        a0 = rdotB(kind, q, k0, k1, k2, k3, a0);
        if (R > 1) a1 = rdotB(kind, q + rs, k0, k1, k2, k3, a1);
        if (R > 2) {
          a2 = rdotB(kind, q + 2 * rs, k0, k1, k2, k3, a2);
          a3 = rdotB(kind, q + 3 * rs, k0, k1, k2, k3, a3);
        }
      }
      {
        const q = qv + 3 * vq;
        const k0 = kPart(kind, W3, 0), k1 = kPart(kind, W3, 1);
        const k2 = kind == 4 ? kPart(kind, W3, 2) : zero, k3 = kind == 4 ? kPart(kind, W3, 3) : zero;
        a0 = rdotB(kind, q, k0, k1, k2, k3, a0);
        if (R > 1) a1 = rdotB(kind, q + rs, k0, k1, k2, k3, a1);
        if (R > 2) {
          a2 = rdotB(kind, q + 2 * rs, k0, k1, k2, k3, a2);
          a3 = rdotB(kind, q + 3 * rs, k0, k1, k2, k3, a3);
        }
      }
    }
  }
  const sv = chunkF16(scs, b0, nb, bPerG);
  const mv = sym ? zero : chunkF16(zes, b0, nb, bPerG);
  const m = p + <usize>(nb * 64);
  const S0 = combineB(nb, sym, a0, sv, mv, m);
  if (R == 1) {
    const t = f32x4.add(S0, i32x4.shuffle(S0, S0, 2, 3, 0, 1));
    return f32x4.add(t, i32x4.shuffle(t, t, 1, 0, 3, 2));
  }
  const S1 = combineB(nb, sym, a1, sv, mv, m + rs);
  if (R == 2) {
    const t = f32x4.add(i32x4.shuffle(S0, S1, 0, 1, 4, 5), i32x4.shuffle(S0, S1, 2, 3, 6, 7));
    return f32x4.add(i32x4.shuffle(t, t, 0, 2, 0, 2), i32x4.shuffle(t, t, 1, 3, 1, 3));
  }
  return hsum4(S0, S1, combineB(nb, sym, a2, sv, mv, m + 2 * rs), combineB(nb, sym, a3, sv, mv, m + 3 * rs));
}

/**
 * scores (R, nSlots) = scale * qHat_r . k_j (-Inf where slotPos[j] > qPos_r); row maxima to
 * maxes (R floats); baseline build (blocks in lanes, above). R, kind, sym constant after inlining.
 */
// @ts-ignore: decorator
@inline
function q8ScoresB(
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
  prepQb(R, kind, off, d, qc, qs, work);
  const nB = d >> 5;
  const nG = d / G;
  const bPerG = G >> 5;
  const rowBytes: usize = kind == 8 ? <usize>d : <usize>d >> 1;
  const vNegInf = f32x4.splat(-Infinity);
  // rows' positions in lanes (lanes R..3 are never read)
  const qp = R == 4 ? v128.load(qPos) : R == 2 ? v128.load64_zero(qPos) : i32x4.splat(load<i32>(qPos));
  let vmax = vNegInf;
  const vscale = f32x4.splat(scale);
  for (let j = 0; j < nSlots; j++) {
    const row = pay + <usize>j * rowBytes;
    const scj = (<usize>j * <usize>nG) << 1;
    let S = f32x4.splat(0);
    let p = work;
    let b0 = 0;
    for (; b0 + 4 <= nB; b0 += 4) {
      S = f32x4.add(S, chunkB(R, kind, sym, 4, bPerG, row, sc + scj, ze + scj, b0, p));
      p += <usize>(R * (4 * 64 + 48));
    }
    if (b0 + 2 <= nB) {
      S = f32x4.add(S, chunkB(R, kind, sym, 2, bPerG, row, sc + scj, ze + scj, b0, p));
      p += <usize>(R * (2 * 64 + 48));
      b0 += 2;
    }
    if (b0 < nB) S = f32x4.add(S, chunkB(R, kind, sym, 1, bPerG, row, sc + scj, ze + scj, b0, p));
    S = f32x4.mul(S, vscale);
    const vis = i32x4.le_s(i32x4.splat(load<i32>(slotPos + (<usize>j << 2))), qp);
    S = v128.bitselect(S, vNegInf, vis);
    vmax = f32x4.pmax(vmax, S);
    const sp = scores + (<usize>j << 2);
    const rsc = <usize>nSlots << 2;
    v128.store32_lane(sp, S, 0);
    if (R > 1) v128.store32_lane(sp + rsc, S, 1);
    if (R > 2) v128.store32_lane(sp + 2 * rsc, S, 2);
    if (R > 3) v128.store32_lane(sp + 3 * rsc, S, 3);
  }
  store<f32>(maxes, f32x4.extract_lane(vmax, 0));
  if (R > 1) store<f32>(maxes, f32x4.extract_lane(vmax, 1), 4);
  if (R > 2) store<f32>(maxes, f32x4.extract_lane(vmax, 2), 8);
  if (R > 3) store<f32>(maxes, f32x4.extract_lane(vmax, 3), 12);
}

// One function per (rows, kind, symmetry): each a small function for the optimising compiler.
function q8S1_8s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (u8DotOk(work)) q8ScoresX(1, 8, true, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8ScoresX(1, 8, true, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else q8ScoresB(1, 8, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S1_8a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (u8DotOk(work)) q8ScoresX(1, 8, false, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8ScoresX(1, 8, false, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else q8ScoresB(1, 8, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S1_4s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) q8ScoresX(1, 4, true, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  else q8ScoresB(1, 4, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S1_4a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) q8ScoresX(1, 4, false, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  else q8ScoresB(1, 4, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_8s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (u8DotOk(work)) q8ScoresX(2, 8, true, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8ScoresX(2, 8, true, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else q8ScoresB(2, 8, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_8a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (u8DotOk(work)) q8ScoresX(2, 8, false, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8ScoresX(2, 8, false, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else q8ScoresB(2, 8, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_4s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) q8ScoresX(2, 4, true, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  else q8ScoresB(2, 4, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S2_4a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) q8ScoresX(2, 4, false, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  else q8ScoresB(2, 4, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_8s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (u8DotOk(work)) q8ScoresX(4, 8, true, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8ScoresX(4, 8, true, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else q8ScoresB(4, 8, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_8a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (u8DotOk(work)) q8ScoresX(4, 8, false, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
    else q8ScoresX(4, 8, false, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  } else q8ScoresB(4, 8, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_4s(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) q8ScoresX(4, 4, true, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  else q8ScoresB(4, 4, true, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
}
function q8S4_4a(G: i32, d: i32, qc: usize, qs: usize, qPos: usize, pay: usize, sc: usize, ze: usize, slotPos: usize, nSlots: i32, scale: f32, scores: usize, maxes: usize, work: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) q8ScoresX(4, 4, false, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
  else q8ScoresB(4, 4, false, G, d, qc, qs, qPos, pay, sc, ze, slotPos, nSlots, scale, scores, maxes, work);
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
