// Channel-axis integer quantization of keys (KIVI / KVQuant): a group is G tokens of one KV head
// and every channel (element of head_dim) has its own f16 scale (and zero-point) over them.
// Bit-exact port of src/quant/channel.ts (the specification): f32 arithmetic at each step,
// round half to even, scale rounded UP and asymmetric minimum rounded DOWN to f16, non-finite
// elements left out of min/max (NaN -> 0, +-Inf -> the channel's finite max/min).
// SIMD runs across 4 channels at a time: a token row is contiguous in channels, so one v128
// load gives 4 channels of one token and the per-channel reductions stay in lanes.
import { decodeIntLoop, getCode, putCode, unpack16 } from "./codec-int";
import { exp4 } from "./exp";
import { f16ToF32, f16x4ToF32, f32ToF16Down, f32ToF16Up } from "./half";
import { hsum, hsum4, madd } from "./simd";

/**
 * Scale (and zero) of one channel from its finite range [lo, hi], written as f16 bits at
 * scaleAt / zeroAt (channel.ts: symmetric s = up(amax / qmax); asymmetric m = down(lo),
 * s = up((hi - m) / levels); a nonzero range never gets scale 0).
 */
function channelParams(bits: i32, sym: bool, lo: f32, hi: f32, scaleAt: usize, zeroAt: usize): void {
  const qmax = <f32>((1 << (bits - 1)) - 1);
  const levels = <f32>((1 << bits) - 1);
  if (sym) {
    const amax = Mathf.max(Mathf.abs(lo), Mathf.abs(hi));
    let sBits = f32ToF16Up(amax / qmax);
    if (sBits == 0 && amax > 0) sBits = 1;
    store<u16>(scaleAt, <u16>sBits);
  } else {
    const mBits = f32ToF16Down(lo);
    const m = f16ToF32(mBits);
    let sBits = f32ToF16Up((hi - m) / levels);
    if (sBits == 0 && hi > m) sBits = 1;
    store<u16>(scaleAt, <u16>sBits);
    store<u16>(zeroAt, <u16>mBits);
  }
}

/**
 * Quantize a group of nTok tokens per channel.
 * src: (nTok, headDim) f32; codeOffs: (nTok) i32 byte offset (from `codes`) of each token's row;
 * scales, zeros: (headDim) f16 written in place (zeros untouched when symmetric);
 * stats: i32 pair {nonFinite, saturated} (overwritten).
 */
export function channelQuantize(
  bits: i32,
  sym: i32,
  src: usize,
  nTok: i32,
  headDim: i32,
  codes: usize,
  codeOffs: usize,
  scales: usize,
  zeros: usize,
  stats: usize,
): void {
  const isSym = sym != 0;
  const qmax = <f32>((1 << (bits - 1)) - 1);
  const levels = <f32>((1 << bits) - 1);
  const qlo: f32 = isSym ? -qmax : 0;
  const qhi: f32 = isSym ? qmax : levels;
  const off: f32 = isSym ? <f32>(1 << (bits - 1)) : 0;
  const rowStride = <usize>headDim << 2;
  let nonFinite = 0;
  let saturated = 0;
  let c = 0;
  for (; c + 4 <= headDim; c += 4) {
    const col = src + (<usize>c << 2);
    // pmin/pmax keep the first of equal extremes, like the reference's strict compares
    // (only +0 vs -0 differ in bits, and the sign reaches the f16 zero-point).
    let vlo = f32x4.splat(Infinity);
    let vhi = f32x4.splat(-Infinity);
    for (let t = 0; t < nTok; t++) {
      const x = v128.load(col + <usize>t * rowStride);
      const fin = f32x4.lt(f32x4.abs(x), f32x4.splat(Infinity));
      nonFinite += 4 - <i32>popcnt<u32>(<u32>i32x4.bitmask(fin));
      vlo = f32x4.pmin(vlo, v128.bitselect(x, f32x4.splat(Infinity), fin));
      vhi = f32x4.pmax(vhi, v128.bitselect(x, f32x4.splat(-Infinity), fin));
    }
    // A channel with no finite element has range [0, 0].
    const empty = f32x4.gt(vlo, vhi);
    vlo = v128.andnot(vlo, empty);
    vhi = v128.andnot(vhi, empty);
    const sAt = scales + (<usize>c << 1);
    const zAt = zeros + (<usize>c << 1);
    channelParams(bits, isSym, f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vhi, 0), sAt, zAt);
    channelParams(bits, isSym, f32x4.extract_lane(vlo, 1), f32x4.extract_lane(vhi, 1), sAt + 2, zAt + 2);
    channelParams(bits, isSym, f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vhi, 2), sAt + 4, zAt + 4);
    channelParams(bits, isSym, f32x4.extract_lane(vlo, 3), f32x4.extract_lane(vhi, 3), sAt + 6, zAt + 6);
    const s = f16x4ToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(sAt)));
    const m = isSym ? f32x4.splat(0) : f16x4ToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(zAt)));
    const positive = f32x4.gt(s, f32x4.splat(0));
    const inv = v128.and(f32x4.div(f32x4.splat(1), s), positive);
    for (let t = 0; t < nTok; t++) {
      let x = v128.load(col + <usize>t * rowStride);
      x = v128.bitselect(f32x4.splat(0), x, f32x4.ne(x, x));
      x = v128.bitselect(vhi, x, f32x4.eq(x, f32x4.splat(Infinity)));
      x = v128.bitselect(vlo, x, f32x4.eq(x, f32x4.splat(-Infinity)));
      if (!isSym) x = f32x4.sub(x, m);
      let q = f32x4.nearest(f32x4.mul(x, inv));
      const sat = isSym
        ? f32x4.gt(f32x4.abs(q), f32x4.splat(qmax))
        : v128.or(f32x4.gt(q, f32x4.splat(levels)), f32x4.lt(q, f32x4.splat(0)));
      saturated += <i32>popcnt<u32>(<u32>i32x4.bitmask(sat));
      q = f32x4.min(f32x4.max(q, f32x4.splat(qlo)), f32x4.splat(qhi));
      const u = i32x4.trunc_sat_f32x4_s(f32x4.add(q, f32x4.splat(off)));
      // 4 channels starting at a multiple of 4 fill whole bytes: 4 (int8), 2 (int4) or 1 (int2).
      const b = <u32>bits;
      const packed =
        <u32>i32x4.extract_lane(u, 0) |
        (<u32>i32x4.extract_lane(u, 1) << b) |
        (<u32>i32x4.extract_lane(u, 2) << (2 * b)) |
        (<u32>i32x4.extract_lane(u, 3) << (3 * b));
      const row = codes + <usize>load<i32>(codeOffs + (<usize>t << 2));
      const at = row + ((<usize>c * <usize>bits) >> 3);
      if (bits == 8) store<u32>(at, packed);
      else if (bits == 4) store<u16>(at, <u16>packed);
      else store<u8>(at, <u8>packed);
    }
  }
  // Channels past the last multiple of 4: the reference's scalar loop.
  for (; c < headDim; c++) {
    const col = src + (<usize>c << 2);
    let lo: f32 = Infinity;
    let hi: f32 = -Infinity;
    for (let t = 0; t < nTok; t++) {
      const x = load<f32>(col + <usize>t * rowStride);
      if (isFinite<f32>(x)) {
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      } else nonFinite++;
    }
    if (lo > hi) lo = hi = 0;
    const sAt = scales + (<usize>c << 1);
    const zAt = zeros + (<usize>c << 1);
    channelParams(bits, isSym, lo, hi, sAt, zAt);
    const s = f16ToF32(<u32>load<u16>(sAt));
    const m: f32 = isSym ? 0 : f16ToF32(<u32>load<u16>(zAt));
    const inv: f32 = s > 0 ? <f32>1 / s : 0;
    for (let t = 0; t < nTok; t++) {
      let x = load<f32>(col + <usize>t * rowStride);
      if (isNaN<f32>(x)) x = 0;
      else if (x == Infinity) x = hi;
      else if (x == -Infinity) x = lo;
      if (!isSym) x = x - m;
      const q = nearest<f32>(x * inv);
      if (isSym ? Mathf.abs(q) > qmax : q > levels || q < 0) saturated++;
      const u = <u32>(<i32>(Mathf.min(Mathf.max(q, qlo), qhi) + off));
      putCode(bits, codes + <usize>load<i32>(codeOffs + (<usize>t << 2)), <usize>c, u);
    }
  }
  store<i32>(stats, nonFinite);
  store<i32>(stats, saturated, 4);
}

/** Bytes of scratch channelDecode needs: one group's f32 scales and zeros. */
export function channelDecodeScratchBytes(headDim: i32): i32 {
  return headDim * 8 + 16;
}

/** f32 scales (and zeros) of group g at tab: (headDim) each. */
function loadGroup(sym: bool, headDim: i32, scales: usize, zeros: usize, g: i32, tab: usize): void {
  const sp = scales + ((<usize>g * <usize>headDim) << 1);
  const zp = zeros + ((<usize>g * <usize>headDim) << 1);
  const zt = tab + (<usize>headDim << 2);
  let c = 0;
  for (; c + 4 <= headDim; c += 4) {
    const o = <usize>c;
    v128.store(tab + (o << 2), f16x4ToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(sp + (o << 1)))));
    if (!sym)
      v128.store(zt + (o << 2), f16x4ToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(zp + (o << 1)))));
  }
  for (; c < headDim; c++) {
    const o = <usize>c;
    store<f32>(tab + (o << 2), f16ToF32(<u32>load<u16>(sp + (o << 1))));
    if (!sym) store<f32>(zt + (o << 2), f16ToF32(<u32>load<u16>(zp + (o << 1))));
  }
}

/** 4 codes (u32 lanes) -> decoded f32x4 with the channel's scale s and zero z (channel.ts dequantizeChannelRow). */
// @ts-ignore: decorator
@inline
function dequant4(sym: bool, u: v128, off: v128, s: v128, z: v128): v128 {
  if (sym) return f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(u, off)), s);
  // not madd: channelDecode equals the reference decode bit for bit (two roundings)
  return f32x4.add(f32x4.mul(f32x4.convert_i32x4_u(u), s), z);
}

/**
 * Decode slots [first, first + n) of one KV head's channel-axis keys into dst (n, headDim):
 * residual slots (groupOf -1) copied from resid (capacity, headDim), quantized slots decoded
 * from their code row (codes + slot * codeBytes) with their group's scales/zeros (groups, headDim).
 * scratch: channelDecodeScratchBytes(headDim) bytes.
 */
export function channelDecode(
  bits: i32,
  sym: i32,
  headDim: i32,
  codes: usize,
  codeBytes: i32,
  groupOf: usize,
  scales: usize,
  zeros: usize,
  resid: usize,
  first: i32,
  n: i32,
  dst: usize,
  scratch: usize,
): void {
  const isSym = sym != 0;
  const d = <usize>headDim;
  const tab = (scratch + 15) & ~(<usize>15);
  const ztab = tab + (d << 2);
  const offV = i32x4.splat(1 << (bits - 1));
  const offS = <i32>(1 << (bits - 1));
  let cur = -1;
  for (let t = 0; t < n; t++) {
    const slot = <usize>(first + t);
    const g = load<i32>(groupOf + (slot << 2));
    const out = dst + ((<usize>t * d) << 2);
    if (g < 0) {
      memory.copy(out, resid + ((slot * d) << 2), d << 2);
      continue;
    }
    if (g != cur) {
      loadGroup(isSym, headDim, scales, zeros, g, tab);
      cur = g;
    }
    const row = codes + slot * <usize>codeBytes;
    let i: usize = 0;
    for (; i + 16 <= d; i += 16) {
      const c8 = unpack16(bits, row, i);
      const lo16 = i16x8.extend_low_i8x16_u(c8);
      const hi16 = i16x8.extend_high_i8x16_u(c8);
      const o = out + (i << 2);
      const st = tab + (i << 2);
      const zt = ztab + (i << 2);
      const z0 = isSym ? offV : v128.load(zt);
      const z1 = isSym ? offV : v128.load(zt + 16);
      const z2 = isSym ? offV : v128.load(zt + 32);
      const z3 = isSym ? offV : v128.load(zt + 48);
      v128.store(o, dequant4(isSym, i32x4.extend_low_i16x8_u(lo16), offV, v128.load(st), z0));
      v128.store(o + 16, dequant4(isSym, i32x4.extend_high_i16x8_u(lo16), offV, v128.load(st + 16), z1));
      v128.store(o + 32, dequant4(isSym, i32x4.extend_low_i16x8_u(hi16), offV, v128.load(st + 32), z2));
      v128.store(o + 48, dequant4(isSym, i32x4.extend_high_i16x8_u(hi16), offV, v128.load(st + 48), z3));
    }
    for (; i < d; i++) {
      const u = <i32>getCode(bits, row, i);
      const s = load<f32>(tab + (i << 2));
      store<f32>(out + (i << 2), isSym ? <f32>(u - offS) * s : <f32>u * s + load<f32>(ztab + (i << 2)));
    }
  }
}

// ---- attention straight from channel-axis keys ----
//
// q . k for a quantized key row needs no decoded key: with k_c = s_c * u_c + z_c (asymmetric) or
// s_c * (u_c - offset) (symmetric), q . k = sum_c (q_c s_c) u_c + sum_c q_c z_c. Per group (G
// tokens share s and z) every query row gets qs = q * s and qz = q . z once; per token the work
// is widening the codes and one dot with qs per row. Rows go in blocks of 4 so that one widened
// code vector serves 4 rows from registers.

/** qs (nRows, d) = q * s and qz (nRows) = q . z for the group whose f32 scales/zeros are at tab/ztab. */
function groupQuery(sym: bool, q: usize, nRows: usize, d: usize, tab: usize, ztab: usize, qs: usize, qz: usize): void {
  for (let r: usize = 0; r < nRows; r++) {
    const qr = q + ((r * d) << 2);
    const out = qs + ((r * d) << 2);
    let z = f32x4.splat(0);
    let i: usize = 0;
    for (; i + 4 <= d; i += 4) {
      const x = v128.load(qr + (i << 2));
      v128.store(out + (i << 2), f32x4.mul(x, v128.load(tab + (i << 2))));
      if (!sym) z = madd(x, v128.load(ztab + (i << 2)), z);
    }
    let zs = hsum(z);
    for (; i < d; i++) {
      const x = load<f32>(qr + (i << 2));
      store<f32>(out + (i << 2), x * load<f32>(tab + (i << 2)));
      if (!sym) zs += x * load<f32>(ztab + (i << 2));
    }
    store<f32>(qz + (r << 2), zs);
  }
}

/**
 * Scores of rows [r0, r0 + nr) (nr <= 4) against one key. codes: row pointer of a quantized key
 * (qv = qs, qz added) or 0 for an f32 key at k (qv = q). Writes S[r * ns + j], masked rows -Inf.
 */
// @ts-ignore: decorator
@inline
function score4(
  bits: i32,
  sym: bool,
  d: usize,
  qv: usize,
  qz: usize,
  r0: usize,
  nr: usize,
  codes: usize,
  k: usize,
  pj: i32,
  qPos: usize,
  scale: f32,
  S: usize,
  ns: usize,
  j: usize,
): void {
  const off = i32x4.splat(sym ? 1 << (bits - 1) : 0);
  const stride = d << 2;
  const q0 = qv + r0 * stride;
  const q1 = q0 + stride;
  const q2 = q1 + stride;
  const q3 = q2 + stride;
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let i: usize = 0;
  for (; i + 16 <= d; i += 16) {
    let k0: v128, k1: v128, k2: v128, k3: v128;
    const o = i << 2;
    if (codes) {
      const c8 = unpack16(bits, codes, i);
      const lo16 = i16x8.extend_low_i8x16_u(c8);
      const hi16 = i16x8.extend_high_i8x16_u(c8);
      k0 = f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_low_i16x8_u(lo16), off));
      k1 = f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_high_i16x8_u(lo16), off));
      k2 = f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_low_i16x8_u(hi16), off));
      k3 = f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_high_i16x8_u(hi16), off));
    } else {
      k0 = v128.load(k + o);
      k1 = v128.load(k + o, 16);
      k2 = v128.load(k + o, 32);
      k3 = v128.load(k + o, 48);
    }
    a0 = f32x4.add(a0, f32x4.add(
      madd(v128.load(q0 + o, 16), k1, f32x4.mul(v128.load(q0 + o), k0)),
      madd(v128.load(q0 + o, 48), k3, f32x4.mul(v128.load(q0 + o, 32), k2)),
    ));
    if (nr > 1)
      a1 = f32x4.add(a1, f32x4.add(
        madd(v128.load(q1 + o, 16), k1, f32x4.mul(v128.load(q1 + o), k0)),
        madd(v128.load(q1 + o, 48), k3, f32x4.mul(v128.load(q1 + o, 32), k2)),
      ));
    if (nr > 2)
      a2 = f32x4.add(a2, f32x4.add(
        madd(v128.load(q2 + o, 16), k1, f32x4.mul(v128.load(q2 + o), k0)),
        madd(v128.load(q2 + o, 48), k3, f32x4.mul(v128.load(q2 + o, 32), k2)),
      ));
    if (nr > 3)
      a3 = f32x4.add(a3, f32x4.add(
        madd(v128.load(q3 + o, 16), k1, f32x4.mul(v128.load(q3 + o), k0)),
        madd(v128.load(q3 + o, 48), k3, f32x4.mul(v128.load(q3 + o, 32), k2)),
      ));
  }
  const offS = sym ? <i32>(1 << (bits - 1)) : 0;
  for (let r: usize = 0; r < nr; r++) {
    const a = r == 0 ? a0 : r == 1 ? a1 : r == 2 ? a2 : a3;
    const qr = q0 + r * stride;
    let t = hsum(a);
    for (let c = i; c < d; c++) {
      const kc: f32 = codes ? <f32>(<i32>getCode(bits, codes, c) - offS) : load<f32>(k + (c << 2));
      t += load<f32>(qr + (c << 2)) * kc;
    }
    if (codes && !sym) t += load<f32>(qz + ((r0 + r) << 2));
    const visible = pj <= load<i32>(qPos + ((r0 + r) << 2));
    store<f32>(S + (((r0 + r) * ns + j) << 2), visible ? t * scale : -Infinity);
  }
}

/**
 * Constants of assembly/exp.ts exp4 (Cephes expf), one f32x4 each, read from memory: as v128
 * constants V8 rebuilds each of them (several instructions) at every use inside the loop.
 */
const EXP_C = memory.data<f32>([
  -87.33654, -87.33654, -87.33654, -87.33654,
  1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341,
  0.693359375, 0.693359375, 0.693359375, 0.693359375,
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4,
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4,
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1, 1, 1, 1,
], 16);

/**
 * exp4 (assembly/exp.ts) for x <= 0, the same operations in the same order (so the same bits),
 * with its constants loaded from EXP_C and the upper clamp (x <= 88.7) left out.
 */
// @ts-ignore: decorator
@inline
function expNeg4(x: v128): v128 {
  const lo = v128.load(EXP_C);
  const under = f32x4.lt(x, lo);
  x = f32x4.pmax(x, lo); // one maxps (f32x4.max's NaN and -0 rules cost V8 a sequence); a NaN x stays NaN
  const n = f32x4.nearest(f32x4.mul(x, v128.load(EXP_C, 16)));
  let r = f32x4.sub(x, f32x4.mul(n, v128.load(EXP_C, 32)));
  r = f32x4.sub(r, f32x4.mul(n, v128.load(EXP_C, 48)));
  let p = v128.load(EXP_C, 64);
  p = madd(p, r, v128.load(EXP_C, 80));
  p = madd(p, r, v128.load(EXP_C, 96));
  p = madd(p, r, v128.load(EXP_C, 112));
  p = madd(p, r, v128.load(EXP_C, 128));
  p = madd(p, r, v128.load(EXP_C, 144));
  p = f32x4.add(madd(p, f32x4.mul(r, r), r), v128.load(EXP_C, 160));
  // 2^n for n in [-126, 0]: n = 128 cannot occur for x <= 0, but the split is kept for the same bits.
  const n1 = i32x4.trunc_sat_f32x4_s(n);
  const half = i32x4.shr_s(n1, 1);
  const bias = i32x4.shr_u(v128.load(EXP_C, 160), 23); // 127 from the bits of 1.0f
  const e1 = i32x4.shl(i32x4.add(half, bias), 23);
  const e2 = i32x4.shl(i32x4.add(i32x4.sub(n1, half), bias), 23);
  const y = f32x4.mul(f32x4.mul(p, e1), e2);
  return v128.andnot(y, under);
}

/** Softmax of each row of S (nRows, ns) in place (two-pass, stable); a row with no visible slot becomes zeros. */
function softmaxRows(S: usize, nRows: usize, ns: usize, probs: usize): void {
  for (let r: usize = 0; r < nRows; r++) {
    const row = S + ((r * ns) << 2);
    let vmax = f32x4.splat(-Infinity);
    let j: usize = 0;
    for (; j + 4 <= ns; j += 4) vmax = f32x4.max(vmax, v128.load(row + (j << 2)));
    let mx = Mathf.max(
      Mathf.max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)),
      Mathf.max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)),
    );
    for (; j < ns; j++) mx = Mathf.max(mx, load<f32>(row + (j << 2)));
    if (mx == -Infinity) {
      memory.fill(row, 0, ns << 2); // no visible slot: zeros
    } else {
      const m4 = f32x4.splat(mx);
      let vsum = f32x4.splat(0);
      j = 0;
      for (; j + 4 <= ns; j += 4) {
        const e = expNeg4(f32x4.sub(v128.load(row + (j << 2)), m4));
        v128.store(row + (j << 2), e);
        vsum = f32x4.add(vsum, e);
      }
      let sum = hsum(vsum);
      for (; j < ns; j++) {
        const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(row + (j << 2)) - mx)), 0);
        store<f32>(row + (j << 2), e);
        sum += e;
      }
      const inv: f32 = <f32>1 / sum;
      const inv4 = f32x4.splat(inv);
      j = 0;
      for (; j + 4 <= ns; j += 4) v128.store(row + (j << 2), f32x4.mul(v128.load(row + (j << 2)), inv4));
      for (; j < ns; j++) store<f32>(row + (j << 2), load<f32>(row + (j << 2)) * inv);
    }
    if (probs) memory.copy(probs + ((r * ns) << 2), row, ns << 2);
  }
}

/** Slots per block of the weighted sum: a block of value rows stays in L1 while every row and chunk use it. */
const MIX_BLOCK: usize = 32;

/**
 * acc (nRows, d) += P[:, j0:j1] @ rows of slots [j0, j1) (value row of slot j at vb + (j - j0) * d
 * floats): 8-float chunks, 4 query rows in registers.
 */
function mixBlock(P: usize, nRows: usize, ns: usize, j0: usize, j1: usize, vb: usize, d: usize, acc: usize): void {
  const stride = d << 2;
  const v = vb - j0 * stride;
  {
    for (let r0: usize = 0; r0 < nRows; r0 += 4) {
      const nr = min(<usize>4, nRows - r0);
      const p0 = P + ((r0 * ns) << 2);
      const p1 = p0 + (ns << 2);
      const p2 = p1 + (ns << 2);
      const p3 = p2 + (ns << 2);
      let c: usize = 0;
      for (; c + 8 <= d; c += 8) {
        let a00 = f32x4.splat(0);
        let a01 = f32x4.splat(0);
        let a10 = f32x4.splat(0);
        let a11 = f32x4.splat(0);
        let a20 = f32x4.splat(0);
        let a21 = f32x4.splat(0);
        let a30 = f32x4.splat(0);
        let a31 = f32x4.splat(0);
        for (let j = j0; j < j1; j++) {
          const vp = v + j * stride + (c << 2);
          const v0 = v128.load(vp);
          const v1 = v128.load(vp, 16);
          const w0 = v128.load32_splat(p0 + (j << 2));
          a00 = madd(w0, v0, a00);
          a01 = madd(w0, v1, a01);
          if (nr > 1) {
            const w1 = v128.load32_splat(p1 + (j << 2));
            a10 = madd(w1, v0, a10);
            a11 = madd(w1, v1, a11);
          }
          if (nr > 2) {
            const w2 = v128.load32_splat(p2 + (j << 2));
            a20 = madd(w2, v0, a20);
            a21 = madd(w2, v1, a21);
          }
          if (nr > 3) {
            const w3 = v128.load32_splat(p3 + (j << 2));
            a30 = madd(w3, v0, a30);
            a31 = madd(w3, v1, a31);
          }
        }
        const ap = acc + r0 * stride + (c << 2);
        v128.store(ap, f32x4.add(v128.load(ap), a00));
        v128.store(ap, f32x4.add(v128.load(ap, 16), a01), 16);
        if (nr > 1) {
          v128.store(ap + stride, f32x4.add(v128.load(ap + stride), a10));
          v128.store(ap + stride, f32x4.add(v128.load(ap + stride, 16), a11), 16);
        }
        if (nr > 2) {
          v128.store(ap + 2 * stride, f32x4.add(v128.load(ap + 2 * stride), a20));
          v128.store(ap + 2 * stride, f32x4.add(v128.load(ap + 2 * stride, 16), a21), 16);
        }
        if (nr > 3) {
          v128.store(ap + 3 * stride, f32x4.add(v128.load(ap + 3 * stride), a30));
          v128.store(ap + 3 * stride, f32x4.add(v128.load(ap + 3 * stride, 16), a31), 16);
        }
      }
      for (; c < d; c++)
        for (let r: usize = 0; r < nr; r++) {
          let t: f32 = 0;
          const pr = P + (((r0 + r) * ns) << 2);
          for (let j = j0; j < j1; j++) t += load<f32>(pr + (j << 2)) * load<f32>(v + j * stride + (c << 2));
          const ap = acc + (r0 + r) * stride + (c << 2);
          store<f32>(ap, load<f32>(ap) + t);
        }
    }
  }
}

/** Bytes of scratch channelAttend needs (the int2 path's tables included: see channelAttend). */
export function channelAttendScratchBytes(nSlots: i32, nRows: i32, headDim: i32): i32 {
  const base = nRows * nSlots + 2 * nRows * headDim + nRows + 2 * headDim + <i32>MIX_BLOCK * headDim;
  const int2 = 5 * nRows * headDim + 12 * headDim + 256;
  return (base + int2) * 4 + 128;
}

/**
 * Values of slots [j0, j1) into tile (j1 - j0, d): rows still in the f32 window (inResid) copied
 * from vResid, the others decoded from the integer codec (decodeIntLoop, bit for bit as decodeRows).
 */
function valueTile(
  bits: i32,
  sym: bool,
  group: i32,
  d: usize,
  pay: usize,
  sc: usize,
  ze: usize,
  inResid: usize,
  vResid: usize,
  j0: usize,
  j1: usize,
  tile: usize,
): void {
  const rowBytes = (d * <usize>bits + 7) >> 3;
  const nG = (d + <usize>group - 1) / <usize>group;
  let j = j0;
  while (j < j1) {
    const out = tile + (((j - j0) * d) << 2);
    if (load<u8>(inResid + j)) {
      memory.copy(out, vResid + ((j * d) << 2), d << 2);
      j++;
      continue;
    }
    let e = j + 1;
    while (e < j1 && !load<u8>(inResid + e)) e++;
    const zp: usize = sym ? 0 : ze + ((j * nG) << 1);
    decodeIntLoop(bits, sym, group, pay + j * rowBytes, sc + ((j * nG) << 1), zp, <i32>(e - j), <i32>d, out);
    j = e;
  }
}

// ---- int2 keys and values read as packed codes (KIVI-2), headDim a multiple of 64 ----
//
// Lane order: 16 code bytes hold 64 channels; as an i32x4, lane l holds channels
// 64h + 16l + j (j = 0..15) at bits 2j. Masking code j in all four lanes (after >> 16 for
// j >= 8) with 3 << 2(j & 7) gives u * 4^(j & 7): exact integers that one convert turns into f32.
// They are the values of positions p = 64h + 4j + l ("lane order") of a row. For keys the power
// of 4 is folded into q (q * s * 4^-(j & 7), exact), for values it is taken out of each output
// at the end (exact): each product with q or a weight is the f32 number it would be without the
// power of 4. Values are summed as sum_t (p s) u + sum_t p z (the zero-point term per group),
// not p (s u + z): a different rounding order, within the attention tolerances (tests).

/** Channel of lane-order position p. */
// @ts-ignore: decorator
@inline
function laneChannel(p: usize): usize {
  return (p & ~(<usize>63)) + ((p & 3) << 4) + ((p >> 2) & 15);
}

/** 4^-(j & 7) for the code of lane-order position p (j = (p >> 2) & 15): folded into q for keys, taken out of the sums at the end for values. */
// @ts-ignore: decorator
@inline
function laneFactor(p: usize): f32 {
  return reinterpret<f32>(<u32>(127 - 2 * <i32>((p >> 2) & 7)) << 23);
}

/** i32x4 masks of code i = 0..7 of a lane: 3 << 2i (read from memory: as constants V8 rebuilds them at every use). */
const MASKS = memory.data<u32>([
  3, 3, 3, 3, 12, 12, 12, 12, 48, 48, 48, 48, 192, 192, 192, 192,
  768, 768, 768, 768, 3072, 3072, 3072, 3072, 12288, 12288, 12288, 12288, 49152, 49152, 49152, 49152,
], 16);

// @ts-ignore: decorator
@inline
function cv(x: v128, mask: v128): v128 {
  return f32x4.convert_i32x4_s(v128.and(x, mask));
}

/** (q[o] k0 + q[o+16] k1) + (q[o+32] k2 + q[o+48] k3): 16 lane-order positions of one row. */
// @ts-ignore: decorator
@inline
function dot16(q: usize, o: usize, k0: v128, k1: v128, k2: v128, k3: v128): v128 {
  return f32x4.add(
    madd(v128.load(q + o, 16), k1, f32x4.mul(v128.load(q + o), k0)),
    madd(v128.load(q + o, 48), k3, f32x4.mul(v128.load(q + o, 32), k2)),
  );
}

/**
 * Scores of every row against the int2 key slots [j, e) of one group: q . k = qs . u + qz, with
 * qs (nRows, d) in lane order (4^-(j & 7) folded in) and qz (nRows). Rows in blocks of 4 (2, 1)
 * share each converted code vector; S[r * ns + t] = visible ? score * scale : -Inf.
 */
function scoreRun2(
  d: usize,
  qs: usize,
  qz: usize,
  nRows: usize,
  codes: usize,
  codeBytes: usize,
  j: usize,
  e: usize,
  slotPos: usize,
  qPos: usize,
  scale: f32,
  S: usize,
  ns: usize,
): void {
  const stride = d << 2;
  for (let r0: usize = 0; r0 < nRows; r0 += 4) {
    const nr = min(<usize>4, nRows - r0);
    // qz and qPos of the block's rows as vectors (lanes past nr are never stored).
    let qzv = f32x4.splat(0);
    let qpv = i32x4.splat(0);
    for (let r: usize = 0; r < nr; r++) {
      qzv = v128.bitselect(f32x4.splat(load<f32>(qz + ((r0 + r) << 2))), qzv, laneMask(r));
      qpv = v128.bitselect(i32x4.splat(load<i32>(qPos + ((r0 + r) << 2))), qpv, laneMask(r));
    }
    const q0 = qs + r0 * stride;
    const s0 = S + ((r0 * ns) << 2);
    // 3 rows run as 4: the fourth reads the scratch after qs and its lane is not stored.
    if (nr >= 3) scoreRows4(d, q0, stride, codes, codeBytes, j, e, slotPos, qpv, qzv, scale, s0, ns, nr);
    else if (nr == 2) scoreRows2(d, q0, stride, codes, codeBytes, j, e, slotPos, qpv, qzv, scale, s0, ns);
    else scoreRows1(d, q0, stride, codes, codeBytes, j, e, slotPos, qpv, qzv, scale, s0, ns, nr);
  }
}

/** scoreRun2 for blocks of 4 query rows: no per-row branches in the loop (they made V8 spill the accumulators); one 16-position step per iteration (unrolled, V8's scheduler keeps all converted codes live at once and spills). */
function scoreRows4(
  d: usize,
  q0: usize,
  stride: usize,
  codes: usize,
  codeBytes: usize,
  j: usize,
  e: usize,
  slotPos: usize,
  qpv: v128,
  qzv: v128,
  scale: f32,
  s0: usize,
  ns: usize,
  nr: usize,
): void {
  const q1 = q0 + stride;
  const q2 = q1 + stride;
  const q3 = q2 + stride;
  const sv = f32x4.splat(scale);
  const rs = ns << 2;
  const nStep = d >> 4;
  for (let t = j; t < e; t++) {
    const row = codes + t * codeBytes;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let g: usize = 0; g < nStep; g++) {
      // Codes j = 4(g & 3) .. + 3 of chunk g >> 2: bits 2j of each lane, or 2j - 16 after >> 16.
      const x = v128.load(row + ((g >> 2) << 4));
      const xs = (g & 2) != 0 ? i32x4.shr_u(x, 16) : x;
      const mk = MASKS + ((g & 1) << 6);
      const k0 = cv(xs, v128.load(mk));
      const k1 = cv(xs, v128.load(mk, 16));
      const k2 = cv(xs, v128.load(mk, 32));
      const k3 = cv(xs, v128.load(mk, 48));
      const o = g << 6;
      a0 = f32x4.add(a0, dot16(q0, o, k0, k1, k2, k3));
      a1 = f32x4.add(a1, dot16(q1, o, k0, k1, k2, k3));
      a2 = f32x4.add(a2, dot16(q2, o, k0, k1, k2, k3));
      a3 = f32x4.add(a3, dot16(q3, o, k0, k1, k2, k3));
    }
    const sum = hsum4(a0, a1, a2, a3);
    const visible = i32x4.le_s(i32x4.splat(load<i32>(slotPos + (t << 2))), qpv);
    const sc = v128.bitselect(f32x4.mul(f32x4.add(sum, qzv), sv), f32x4.splat(-Infinity), visible);
    const st = s0 + (t << 2);
    store<f32>(st, f32x4.extract_lane(sc, 0));
    store<f32>(st + rs, f32x4.extract_lane(sc, 1));
    if (nr > 2) store<f32>(st + 2 * rs, f32x4.extract_lane(sc, 2));
    if (nr > 3) store<f32>(st + 3 * rs, f32x4.extract_lane(sc, 3));
  }
}

/**
 * scoreRun2 for blocks of 2 query rows: two slots per pass (each q vector load serves both, and
 * one horizontal reduction covers 2 rows x 2 slots); 8 positions per step keep the live vectors
 * within V8's registers. An odd last slot runs as a pair with itself (second half not stored).
 */
function scoreRows2(
  d: usize,
  q0: usize,
  stride: usize,
  codes: usize,
  codeBytes: usize,
  j: usize,
  e: usize,
  slotPos: usize,
  qpv: v128,
  qzv: v128,
  scale: f32,
  s0: usize,
  ns: usize,
): void {
  const q1 = q0 + stride;
  const sv = f32x4.splat(scale);
  const rs = ns << 2;
  const nStep = d >> 3;
  // Lanes (row 0, row 1, row 0, row 1) of slots (t, t, t + 1, t + 1).
  const qp2 = i32x4.shuffle(qpv, qpv, 0, 1, 0, 1);
  const qz2 = i32x4.shuffle(qzv, qzv, 0, 1, 0, 1);
  for (let t = j; t < e; t += 2) {
    const pair = t + 1 < e;
    const rowA = codes + t * codeBytes;
    const rowB = pair ? rowA + codeBytes : rowA;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let b0 = f32x4.splat(0);
    let b1 = f32x4.splat(0);
    for (let g: usize = 0; g < nStep; g++) {
      // Codes j = 2(g & 7), + 1 of chunk g >> 3: bits 2j of each lane, or 2j - 16 after >> 16.
      const c = (g >> 3) << 4;
      let xa = v128.load(rowA + c);
      let xb = v128.load(rowB + c);
      if ((g & 4) != 0) {
        xa = i32x4.shr_u(xa, 16);
        xb = i32x4.shr_u(xb, 16);
      }
      const mk = MASKS + ((g & 3) << 5);
      const m0 = v128.load(mk);
      const m1 = v128.load(mk, 16);
      const ka0 = cv(xa, m0);
      const ka1 = cv(xa, m1);
      const kb0 = cv(xb, m0);
      const kb1 = cv(xb, m1);
      const o = g << 5;
      let qa = v128.load(q0 + o);
      let qb = v128.load(q0 + o, 16);
      a0 = f32x4.add(a0, madd(qb, ka1, f32x4.mul(qa, ka0)));
      b0 = f32x4.add(b0, madd(qb, kb1, f32x4.mul(qa, kb0)));
      qa = v128.load(q1 + o);
      qb = v128.load(q1 + o, 16);
      a1 = f32x4.add(a1, madd(qb, ka1, f32x4.mul(qa, ka0)));
      b1 = f32x4.add(b1, madd(qb, kb1, f32x4.mul(qa, kb0)));
    }
    const pa = load<i32>(slotPos + (t << 2));
    const pb = pair ? load<i32>(slotPos + (t << 2), 4) : pa;
    const visible = i32x4.le_s(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(pa), 2, pb), 3, pb), qp2);
    const sum = hsum4(a0, a1, b0, b1);
    const sc = v128.bitselect(f32x4.mul(f32x4.add(sum, qz2), sv), f32x4.splat(-Infinity), visible);
    const st = s0 + (t << 2);
    store<f32>(st, f32x4.extract_lane(sc, 0));
    store<f32>(st + rs, f32x4.extract_lane(sc, 1));
    if (pair) {
      store<f32>(st, f32x4.extract_lane(sc, 2), 4);
      store<f32>(st + rs, f32x4.extract_lane(sc, 3), 4);
    }
  }
}

/** scoreRun2 for blocks of 1 query row: no per-row branches in the loop (they made V8 spill the accumulators); one 16-position step per iteration (unrolled, V8's scheduler keeps all converted codes live at once and spills). */
function scoreRows1(
  d: usize,
  q0: usize,
  stride: usize,
  codes: usize,
  codeBytes: usize,
  j: usize,
  e: usize,
  slotPos: usize,
  qpv: v128,
  qzv: v128,
  scale: f32,
  s0: usize,
  ns: usize,
  nr: usize,
): void {
  const sv = f32x4.splat(scale);
  const rs = ns << 2;
  const nStep = d >> 4;
  for (let t = j; t < e; t++) {
    const row = codes + t * codeBytes;
    let a0 = f32x4.splat(0);
    for (let g: usize = 0; g < nStep; g++) {
      // Codes j = 4(g & 3) .. + 3 of chunk g >> 2: bits 2j of each lane, or 2j - 16 after >> 16.
      const x = v128.load(row + ((g >> 2) << 4));
      const xs = (g & 2) != 0 ? i32x4.shr_u(x, 16) : x;
      const mk = MASKS + ((g & 1) << 6);
      const k0 = cv(xs, v128.load(mk));
      const k1 = cv(xs, v128.load(mk, 16));
      const k2 = cv(xs, v128.load(mk, 32));
      const k3 = cv(xs, v128.load(mk, 48));
      const o = g << 6;
      a0 = f32x4.add(a0, dot16(q0, o, k0, k1, k2, k3));
    }
    const sum = f32x4.splat(hsum(a0));
    const visible = i32x4.le_s(i32x4.splat(load<i32>(slotPos + (t << 2))), qpv);
    const sc = v128.bitselect(f32x4.mul(f32x4.add(sum, qzv), sv), f32x4.splat(-Infinity), visible);
    const st = s0 + (t << 2);
    store<f32>(st, f32x4.extract_lane(sc, 0));
  }
}

/** mixRun2 for a block of 4 query rows: accP rows at ap0 (row stride `stride` bytes), W rows at wr0 (chunk stride hStep bytes). */
function mixRows4(
  d: usize,
  pay: usize,
  rowBytes: usize,
  j0: usize,
  j1: usize,
  wr0: usize,
  hStep: usize,
  ap0: usize,
  stride: usize,
): void {
  const wRow = MIX_BLOCK << 4;
  for (let h: usize = 0; h < d; h += 64) {
    const wh = wr0 + (h >> 6) * hStep;
    // Codes jj, jj + 1 of each lane: bits 2jj .. 2jj + 3 (after >> 16 for jj >= 8), masked in place.
    for (let jj: usize = 0; jj < 16; jj += 2) {
      const hi = jj >= 8;
      const ma = i32x4.splat(<i32>3 << <i32>((jj & 7) << 1));
      const mb = i32x4.splat(<i32>12 << <i32>((jj & 7) << 1));
      let a00 = f32x4.splat(0);
      let a01 = f32x4.splat(0);
      let a10 = f32x4.splat(0);
      let a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0);
      let a21 = f32x4.splat(0);
      let a30 = f32x4.splat(0);
      let a31 = f32x4.splat(0);
      let src = pay + j0 * rowBytes + (h >> 2);
      let w = wh;
      for (let t = j0; t < j1; t++) {
        let x = v128.load(src);
        if (hi) x = i32x4.shr_u(x, 16);
        const ka = f32x4.convert_i32x4_s(v128.and(x, ma));
        const kb = f32x4.convert_i32x4_s(v128.and(x, mb));
        const w0 = v128.load(w);
        a00 = madd(w0, ka, a00);
        a01 = madd(w0, kb, a01);
        const w1 = v128.load(w + wRow);
        a10 = madd(w1, ka, a10);
        a11 = madd(w1, kb, a11);
        const w2 = v128.load(w + 2 * wRow);
        a20 = madd(w2, ka, a20);
        a21 = madd(w2, kb, a21);
        const w3 = v128.load(w + 3 * wRow);
        a30 = madd(w3, ka, a30);
        a31 = madd(w3, kb, a31);
        src += rowBytes;
        w += 16;
      }
      const ap = ap0 + ((h + (jj << 2)) << 2);
      v128.store(ap, f32x4.add(v128.load(ap), a00));
      v128.store(ap, f32x4.add(v128.load(ap, 16), a01), 16);
      v128.store(ap + stride, f32x4.add(v128.load(ap + stride), a10));
      v128.store(ap + stride, f32x4.add(v128.load(ap + stride, 16), a11), 16);
      v128.store(ap + 2 * stride, f32x4.add(v128.load(ap + 2 * stride), a20));
      v128.store(ap + 2 * stride, f32x4.add(v128.load(ap + 2 * stride, 16), a21), 16);
      v128.store(ap + 3 * stride, f32x4.add(v128.load(ap + 3 * stride), a30));
      v128.store(ap + 3 * stride, f32x4.add(v128.load(ap + 3 * stride, 16), a31), 16);
    }
  }
}

/** mixRun2 for a block of 2 query rows: accP rows at ap0 (row stride `stride` bytes), W rows at wr0 (chunk stride hStep bytes). */
function mixRows2(
  d: usize,
  pay: usize,
  rowBytes: usize,
  j0: usize,
  j1: usize,
  wr0: usize,
  hStep: usize,
  ap0: usize,
  stride: usize,
): void {
  const wRow = MIX_BLOCK << 4;
  for (let h: usize = 0; h < d; h += 64) {
    const wh = wr0 + (h >> 6) * hStep;
    // Codes jj, jj + 1 of each lane: bits 2jj .. 2jj + 3 (after >> 16 for jj >= 8), masked in place.
    for (let jj: usize = 0; jj < 16; jj += 2) {
      const hi = jj >= 8;
      const ma = i32x4.splat(<i32>3 << <i32>((jj & 7) << 1));
      const mb = i32x4.splat(<i32>12 << <i32>((jj & 7) << 1));
      let a00 = f32x4.splat(0);
      let a01 = f32x4.splat(0);
      let a10 = f32x4.splat(0);
      let a11 = f32x4.splat(0);
      let src = pay + j0 * rowBytes + (h >> 2);
      let w = wh;
      for (let t = j0; t < j1; t++) {
        let x = v128.load(src);
        if (hi) x = i32x4.shr_u(x, 16);
        const ka = f32x4.convert_i32x4_s(v128.and(x, ma));
        const kb = f32x4.convert_i32x4_s(v128.and(x, mb));
        const w0 = v128.load(w);
        a00 = madd(w0, ka, a00);
        a01 = madd(w0, kb, a01);
        const w1 = v128.load(w + wRow);
        a10 = madd(w1, ka, a10);
        a11 = madd(w1, kb, a11);
        src += rowBytes;
        w += 16;
      }
      const ap = ap0 + ((h + (jj << 2)) << 2);
      v128.store(ap, f32x4.add(v128.load(ap), a00));
      v128.store(ap, f32x4.add(v128.load(ap, 16), a01), 16);
      v128.store(ap + stride, f32x4.add(v128.load(ap + stride), a10));
      v128.store(ap + stride, f32x4.add(v128.load(ap + stride, 16), a11), 16);
    }
  }
}

/** mixRun2 for a block of 1 query row: accP rows at ap0 (row stride `stride` bytes), W rows at wr0 (chunk stride hStep bytes). */
function mixRows1(
  d: usize,
  pay: usize,
  rowBytes: usize,
  j0: usize,
  j1: usize,
  wr0: usize,
  hStep: usize,
  ap0: usize,
  stride: usize,
): void {
  const wRow = MIX_BLOCK << 4;
  for (let h: usize = 0; h < d; h += 64) {
    const wh = wr0 + (h >> 6) * hStep;
    // Codes jj, jj + 1 of each lane: bits 2jj .. 2jj + 3 (after >> 16 for jj >= 8), masked in place.
    for (let jj: usize = 0; jj < 16; jj += 2) {
      const hi = jj >= 8;
      const ma = i32x4.splat(<i32>3 << <i32>((jj & 7) << 1));
      const mb = i32x4.splat(<i32>12 << <i32>((jj & 7) << 1));
      let a00 = f32x4.splat(0);
      let a01 = f32x4.splat(0);
      let src = pay + j0 * rowBytes + (h >> 2);
      let w = wh;
      for (let t = j0; t < j1; t++) {
        let x = v128.load(src);
        if (hi) x = i32x4.shr_u(x, 16);
        const ka = f32x4.convert_i32x4_s(v128.and(x, ma));
        const kb = f32x4.convert_i32x4_s(v128.and(x, mb));
        const w0 = v128.load(w);
        a00 = madd(w0, ka, a00);
        a01 = madd(w0, kb, a01);
        src += rowBytes;
        w += 16;
      }
      const ap = ap0 + ((h + (jj << 2)) << 2);
      v128.store(ap, f32x4.add(v128.load(ap), a00));
      v128.store(ap, f32x4.add(v128.load(ap, 16), a01), 16);
    }
  }
}

/** All ones in lane r (0..3), zeros elsewhere. */
// @ts-ignore: decorator
@inline
function laneMask(r: usize): v128 {
  return i32x4.eq(i32x4(0, 1, 2, 3), i32x4.splat(<i32>r));
}

/**
 * q . s (lane order, 4^-(j & 7) folded in) and q . z of every row for the key group whose f32
 * scales/zeros (channel order) are at tab/ztab. qP: q in lane order times 4^-(j & 7); tabP:
 * scratch (d). Symmetric: k = s (u - 2), so qz = -2 q . s.
 */
function groupQuery2(
  sym: bool,
  q: usize,
  qP: usize,
  nRows: usize,
  d: usize,
  tab: usize,
  ztab: usize,
  tabP: usize,
  qs: usize,
  qz: usize,
): void {
  // tabP[64h + 4j + l] = tab[64h + 16l + j]: 4x4 transposes of (l, j & 3) for each j >> 2.
  for (let h: usize = 0; h < d; h += 64)
    for (let m: usize = 0; m < 16; m += 4) {
      const a = tab + ((h + m) << 2);
      const a0 = v128.load(a);
      const a1 = v128.load(a, 64);
      const a2 = v128.load(a, 128);
      const a3 = v128.load(a, 192);
      const t0 = i32x4.shuffle(a0, a1, 0, 4, 1, 5);
      const t1 = i32x4.shuffle(a2, a3, 0, 4, 1, 5);
      const t2 = i32x4.shuffle(a0, a1, 2, 6, 3, 7);
      const t3 = i32x4.shuffle(a2, a3, 2, 6, 3, 7);
      const o = tabP + ((h + (m << 2)) << 2);
      v128.store(o, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
      v128.store(o, i32x4.shuffle(t0, t1, 2, 3, 6, 7), 16);
      v128.store(o, i32x4.shuffle(t2, t3, 0, 1, 4, 5), 32);
      v128.store(o, i32x4.shuffle(t2, t3, 2, 3, 6, 7), 48);
    }
  for (let r: usize = 0; r < nRows; r++) {
    const qr = q + ((r * d) << 2);
    const pr = qP + ((r * d) << 2);
    const out = qs + ((r * d) << 2);
    let z = f32x4.splat(0);
    for (let i: usize = 0; i < d; i += 4) {
      v128.store(out + (i << 2), f32x4.mul(v128.load(pr + (i << 2)), v128.load(tabP + (i << 2))));
      const x = v128.load(qr + (i << 2));
      z = madd(x, v128.load((sym ? tab : ztab) + (i << 2)), z);
    }
    store<f32>(qz + (r << 2), sym ? -2 * hsum(z) : hsum(z));
  }
}

/**
 * Weighted sum of int2 value rows, slots [j0, j1) (at most MIX_BLOCK): accP (nRows, d) lane
 * order += sum_t W[t] * u[t] with W (d / 64, nRows, MIX_BLOCK) f32x4 weights (p times the scale
 * of each lane's value group, 0 for slots whose value is still f32). 8 positions x 4 rows of
 * accumulators stay in registers while the block's slots stream past.
 */
function mixRun2(nRows: usize, d: usize, pay: usize, rowBytes: usize, j0: usize, j1: usize, W: usize, accP: usize): void {
  const stride = d << 2;
  const wRow = MIX_BLOCK << 4; // bytes per (h, row) of W
  const hStep = nRows * wRow;
  let r0: usize = 0;
  for (; r0 + 4 <= nRows; r0 += 4)
    mixRows4(d, pay, rowBytes, j0, j1, W + r0 * wRow, hStep, accP + r0 * stride, stride);
  for (; r0 + 2 <= nRows; r0 += 2)
    mixRows2(d, pay, rowBytes, j0, j1, W + r0 * wRow, hStep, accP + r0 * stride, stride);
  if (r0 < nRows) mixRows1(d, pay, rowBytes, j0, j1, W + r0 * wRow, hStep, accP + r0 * stride, stride);
}

/** f32 of n f16 values at src into dst (4 at a time). */
function f16Run(src: usize, n: usize, dst: usize): void {
  let i: usize = 0;
  for (; i + 4 <= n; i += 4)
    v128.store(dst + (i << 2), f16x4ToF32(i32x4.extend_low_i16x8_u(v128.load64_zero(src + (i << 1)))));
  for (; i < n; i++) store<f32>(dst + (i << 2), f16ToF32(<u32>load<u16>(src + (i << 1))));
}

/**
 * The f32 group values (gt: one slot's nG values) of the four lanes of chunk h: lane l covers
 * channels 64h + 16l .. + 15, all in group (64h + 16l) / vGroup (vGroup 16, 32 or a multiple of 64).
 */
// @ts-ignore: decorator
@inline
function laneGroups(gt: usize, h: usize, vGroup: usize): v128 {
  if (vGroup == 32) {
    const x = v128.load64_zero(gt + (h << 3));
    return i32x4.shuffle(x, x, 0, 0, 1, 1);
  }
  if (vGroup == 16) return v128.load(gt + (h << 4));
  return v128.load32_splat(gt + (((h << 6) / vGroup) << 2)); // vGroup % 64 == 0
}

/**
 * Weights of the value block [j0, j1) for mixRun2: W (d / 64, nRows, MIX_BLOCK) f32x4 =
 * p[r][t] * scale of each lane's group; and the group offsets BL (nRows, nG4) += p * zero
 * (asymmetric) or -2 p * scale (symmetric), nG4 = nG rounded up to 4. Slots whose value is
 * still f32 get weight 0 and are added to acc2 (nRows, d, channel order) straight from vResid.
 * gs: 2 (MIX_BLOCK nG + 4) f32 (the block's scales and zeros); SL: (MIX_BLOCK, d / 64) f32x4
 * lane scales; ZR: (MIX_BLOCK, nG4) f32 zeros. Rows outer, slots inner: the group offsets stay
 * in a register for the block instead of a load-add-store per slot.
 */
function valueWeights2(
  sym: bool,
  nRows: usize,
  ns: usize,
  d: usize,
  P: usize,
  nG: usize,
  vGroup: usize,
  vScales: usize,
  vZeros: usize,
  inResid: usize,
  vResid: usize,
  j0: usize,
  j1: usize,
  gs: usize,
  SL: usize,
  ZR: usize,
  W: usize,
  BL: usize,
  acc2: usize,
): void {
  const wRow = MIX_BLOCK << 4;
  const hStep = nRows * wRow;
  const nH = d >> 6;
  const nG4 = (nG + 3) & ~(<usize>3);
  const n = j1 - j0;
  const gz = gs + ((MIX_BLOCK * nG + 4) << 2); // zeros after the scales
  const m2 = f32x4.splat(-2);
  f16Run(vScales + ((j0 * nG) << 1), n * nG, gs);
  if (!sym) f16Run(vZeros + ((j0 * nG) << 1), n * nG, gz);
  for (let tt: usize = 0; tt < n; tt++) {
    const t = j0 + tt;
    const sl = SL + ((tt * nH) << 4);
    const zr = ZR + ((tt * nG4) << 2);
    if (load<u8>(inResid + t)) {
      memory.fill(sl, 0, nH << 4);
      memory.fill(zr, 0, nG4 << 2);
      const vr = vResid + ((t * d) << 2);
      for (let r: usize = 0; r < nRows; r++) {
        const p = f32x4.splat(load<f32>(P + ((r * ns + t) << 2)));
        const ar = acc2 + ((r * d) << 2);
        for (let i: usize = 0; i < d; i += 4)
          v128.store(ar + (i << 2), madd(p, v128.load(vr + (i << 2)), v128.load(ar + (i << 2))));
      }
      continue;
    }
    const gt = gs + ((tt * nG) << 2);
    for (let h: usize = 0; h < nH; h++) v128.store(sl + (h << 4), laneGroups(gt, h, vGroup));
    // Lanes past nG read the next slot's values: their sums are never read.
    for (let g: usize = 0; g < nG4; g += 4)
      v128.store(zr + (g << 2), sym ? f32x4.mul(v128.load(gt + (g << 2)), m2) : v128.load(gz + ((tt * nG + g) << 2)));
  }
  for (let r: usize = 0; r < nRows; r++) {
    const pr = P + ((r * ns + j0) << 2);
    const wr = W + r * wRow;
    // headDim 64 and 128 (one or two chunks) without an inner loop.
    if (nH == 1)
      for (let tt: usize = 0; tt < n; tt++)
        v128.store(wr + (tt << 4), f32x4.mul(v128.load32_splat(pr + (tt << 2)), v128.load(SL + (tt << 4))));
    else if (nH == 2)
      for (let tt: usize = 0; tt < n; tt++) {
        const p = v128.load32_splat(pr + (tt << 2));
        const sl = SL + (tt << 5);
        v128.store(wr + (tt << 4), f32x4.mul(p, v128.load(sl)));
        v128.store(wr + hStep + (tt << 4), f32x4.mul(p, v128.load(sl, 16)));
      }
    else
      for (let tt: usize = 0; tt < n; tt++) {
        const p = v128.load32_splat(pr + (tt << 2));
        const sl = SL + ((tt * nH) << 4);
        for (let h: usize = 0; h < nH; h++)
          v128.store(wr + h * hStep + (tt << 4), f32x4.mul(p, v128.load(sl + (h << 4))));
      }
    for (let g: usize = 0; g < nG4; g += 4) {
      const b = BL + ((r * nG4 + g) << 2);
      let bl0 = f32x4.splat(0);
      let bl1 = f32x4.splat(0);
      let tt: usize = 0;
      for (; tt + 2 <= n; tt += 2) {
        bl0 = madd(v128.load32_splat(pr + (tt << 2)), v128.load(ZR + ((tt * nG4 + g) << 2)), bl0);
        bl1 = madd(v128.load32_splat(pr + (tt << 2), 4), v128.load(ZR + (((tt + 1) * nG4 + g) << 2)), bl1);
      }
      if (tt < n) bl0 = madd(v128.load32_splat(pr + (tt << 2)), v128.load(ZR + ((tt * nG4 + g) << 2)), bl0);
      v128.store(b, f32x4.add(v128.load(b), f32x4.add(bl0, bl1)));
    }
  }
}

/**
 * Attention of nRows query rows over one KV head whose keys are channel-axis quantized (groups)
 * or in the f32 residual, and whose values are f32 rows v (nSlots, headDim) or integer rows read
 * as stored (vBits != 0, rows in the f32 window from vResid), without an f32 copy of the keys
 * (see above). With headDim a multiple of 64, int2 keys and int2 values (groups of 16, 32 or a
 * multiple of 64) take the lane-order paths (scoreRun2, valueWeights2 + mixRun2); other codecs
 * the generic ones (score4, valueTile + mixBlock). Two-pass stable softmax; slot j is visible to
 * row r iff slotPos[j] <= qPos[r]; probs (nRows, nSlots) when nonzero; a row with no visible slot
 * outputs zeros (as src/kernels/ref.ts).
 */
export function channelAttend(
  bits: i32,
  sym: i32,
  headDim: i32,
  q: usize,
  qPos: usize,
  nRows: i32,
  codes: usize,
  codeBytes: i32,
  groupOf: usize,
  scales: usize,
  zeros: usize,
  resid: usize,
  v: usize,
  slotPos: usize,
  nSlots: i32,
  scale: f32,
  out: usize,
  probs: usize,
  vBits: i32,
  vSym: i32,
  vGroup: i32,
  vScales: usize,
  vZeros: usize,
  vInResid: usize,
  vResid: usize,
  scratch: usize,
): void {
  const isSym = sym != 0;
  const d = <usize>headDim;
  const ns = <usize>nSlots;
  const nr = <usize>nRows;
  const S = (scratch + 15) & ~(<usize>15); // (nRows, nSlots) scores, then probabilities
  const acc = S + ((nr * ns) << 2); // (nRows, headDim) weighted sums
  const qs = acc + ((nr * d) << 2); // (nRows, headDim) q * s of the current group
  const tab = qs + ((nr * d) << 2); // (headDim) f32 scales of the current group
  const ztab = tab + (d << 2); // (headDim) f32 zeros
  const qz = ztab + (d << 2); // (nRows) q . z of the current group
  const tile = (qz + (nr << 2) + 15) & ~(<usize>15); // (MIX_BLOCK, headDim) decoded value rows
  // int2 paths (headDim a multiple of 64): keys and/or values read as packed codes in lane order.
  const lanes = (d & 63) == 0 && d > 0;
  const kFast = lanes && bits == 2;
  const vFast = lanes && vBits == 2 && (vGroup == 16 || vGroup == 32 || (vGroup > 0 && vGroup % 64 == 0));
  const qP = tile + ((MIX_BLOCK * d) << 2); // (nRows, headDim) q in lane order times 4^-(j & 7)
  const W = qP + ((nr * d) << 2); // (headDim / 64, nRows, MIX_BLOCK) f32x4 value weights
  const acc2 = W + ((2 * nr * d) << 2); // (nRows, headDim) f32-window values, channel order
  const BL = acc2 + ((nr * d) << 2); // (nRows, nG rounded up to 4 <= headDim / 4) value-group offsets
  const tabP = BL + (nr * d); // (headDim) key scales in lane order
  const gs = tabP + (d << 2); // (2 (MIX_BLOCK nG + 4) <= 4 headDim + 8) f32 the block's value scales and zeros
  const SL = (gs + ((4 * d + 8) << 2) + 15) & ~(<usize>15); // (MIX_BLOCK, headDim / 64) f32x4 lane scales
  const ZR = SL + ((MIX_BLOCK * d) >> 2); // (MIX_BLOCK, nG rounded up to 4) f32 zeros (<= 2 headDim + 96)
  if (kFast)
    for (let r: usize = 0; r < nr; r++)
      for (let p: usize = 0; p < d; p++)
        store<f32>(qP + ((r * d + p) << 2), load<f32>(q + ((r * d + laneChannel(p)) << 2)) * laneFactor(p));
  let cur = -1;
  for (let j: usize = 0; j < ns; j++) {
    const g = load<i32>(groupOf + (j << 2));
    const pj = load<i32>(slotPos + (j << 2));
    if (g < 0) {
      const k = resid + ((j * d) << 2);
      for (let r0: usize = 0; r0 < nr; r0 += 4)
        score4(bits, isSym, d, q, qz, r0, min(<usize>4, nr - r0), 0, k, pj, qPos, scale, S, ns, j);
      continue;
    }
    if (g != cur) {
      loadGroup(isSym, headDim, scales, zeros, g, tab);
      if (kFast) groupQuery2(isSym, q, qP, nr, d, tab, ztab, tabP, qs, qz);
      else groupQuery(isSym, q, nr, d, tab, ztab, qs, qz);
      cur = g;
    }
    if (kFast) {
      // The run of slots of this group that follow (append order keeps a group's slots together).
      let e = j + 1;
      while (e < ns && load<i32>(groupOf + (e << 2)) == g) e++;
      scoreRun2(d, qs, qz, nr, codes, <usize>codeBytes, j, e, slotPos, qPos, scale, S, ns);
      j = e - 1;
      continue;
    }
    const row = codes + j * <usize>codeBytes;
    for (let r0: usize = 0; r0 < nr; r0 += 4)
      score4(bits, isSym, d, qs, qz, r0, min(<usize>4, nr - r0), row, 0, pj, qPos, scale, S, ns, j);
  }
  softmaxRows(S, nr, ns, probs);
  memory.fill(acc, 0, (nr * d) << 2);
  if (vFast) {
    const nH = d >> 6;
    const nG = (d + <usize>vGroup - 1) / <usize>vGroup;
    memory.fill(acc2, 0, (nr * d) << 2);
    memory.fill(BL, 0, (nr * ((nG + 3) & ~(<usize>3))) << 2);
    for (let j0: usize = 0; j0 < ns; j0 += MIX_BLOCK) {
      const j1 = min(j0 + MIX_BLOCK, ns);
      valueWeights2(vSym != 0, nr, ns, d, S, nG, <usize>vGroup, vScales, vZeros, vInResid, vResid, j0, j1, gs, SL, ZR, W, BL, acc2);
      mixRun2(nr, d, v, d >> 2, j0, j1, W, acc);
    }
    const nG4 = (nG + 3) & ~(<usize>3);
    for (let r: usize = 0; r < nr; r++)
      for (let p: usize = 0; p < d; p++) {
        const c = laneChannel(p);
        const b = load<f32>(BL + ((r * nG4 + c / <usize>vGroup) << 2));
        const x = load<f32>(acc + ((r * d + p) << 2)) * laneFactor(p) + b;
        store<f32>(out + ((r * d + c) << 2), x + load<f32>(acc2 + ((r * d + c) << 2)));
      }
    return;
  }
  for (let j0: usize = 0; j0 < ns; j0 += MIX_BLOCK) {
    const j1 = min(j0 + MIX_BLOCK, ns);
    if (vBits == 0) mixBlock(S, nr, ns, j0, j1, v + ((j0 * d) << 2), d, acc);
    else {
      valueTile(vBits, vSym != 0, vGroup, d, v, vScales, vZeros, vInResid, vResid, j0, j1, tile);
      mixBlock(S, nr, ns, j0, j1, tile, d, acc);
    }
  }
  memory.copy(out, acc, (nr * d) << 2);
}
