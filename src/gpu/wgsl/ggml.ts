/**
 * WGSL for ggml's block types q4_0, q4_1, q5_0, q5_1, q8_0 and iq4_nl (llama.cpp's KV cache
 * types). The reference is src/quant/ggml-block.ts / ggml-legacy.ts / ggml-iq4nl.ts (bit-identical
 * to ggml's quantize_row_*_ref); the GPU row is the CPU row in words (src/gpu/layout.ts): the
 * blocks' payloads (ggml's qs / qh+qs / int8 bytes), then the f16 d of each block, then the f16 m
 * (q4_1, q5_1).
 *
 * Encode reproduces the reference bit for bit without relying on WGSL's float division (which may
 * be off by 2.5 ulp): d = max / -half, amax / 127 and (max - min) / levels by bits.ts div_small
 * (integer division, correctly rounded), 1 / d and iq4_nl's sum(w q x) / sum(w q^2) by integer
 * long division of the significands (correctly rounded). Multiplications, additions and
 * comparisons are IEEE f32 ops in WGSL; where the reference rounds a product before adding
 * (x * id + 8.5, sums of products), the product goes through `nofuse`, an integer OR with a
 * runtime zero, so a backend cannot contract the two into one fused multiply-add.
 * Inputs that are f32 subnormals may differ on a backend that flushes them (WGSL allows it).
 *
 * Decode: x = level * d (+ m); level * d is exact in f32 (|level| <= 128, d an f16), so the
 * single rounding of + m is the reference's on every backend, fused or not.
 */
import type { GpuRowLayout } from "../layout.ts";

export type GgmlWgslType = "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q8_0" | "iq4_nl";

const IQ4 = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

interface Plan {
  t: GgmlWgslType;
  nB: number;
  /** Payload words per block. */
  pw: number;
  hasMin: boolean;
  low: number;
  top: number;
}

function plan(t: GgmlWgslType, L: GpuRowLayout): Plan {
  if (L.headDim % 32 !== 0) throw new Error(`${t}: head_dim ${L.headDim} is not a multiple of 32`);
  const pw = t === "q8_0" ? 8 : t === "q5_0" || t === "q5_1" ? 5 : 4;
  const hasMin = t === "q4_1" || t === "q5_1";
  const [low, top] = {
    q4_0: [-8, 7],
    q4_1: [0, 15],
    q5_0: [-16, 15],
    q5_1: [0, 31],
    q8_0: [-128, 127],
    iq4_nl: [-127, 113],
  }[t];
  return { t, nB: L.headDim / 32, pw, hasMin, low: low!, top: top! };
}

const f = (x: number) => (Number.isInteger(x) ? `${x}.0` : String(x));

function table(name: string): string {
  return `var<private> ${name}_T: array<i32, 16> = array<i32, 16>(${IQ4.join(", ")});\n`;
}

/** WGSL expression: the level (i32) of element j (u32) of the block whose payload starts at word pw. */
function levelExpr(P: Plan, name: string, buf: string): string {
  const nib = `((${buf}[pw + (j % 16u) / 4u] >> (8u * (j % 4u) + 4u * (j / 16u))) & 15u)`;
  switch (P.t) {
    case "q4_0":
      return `i32(${nib}) - 8`;
    case "q4_1":
      return `i32(${nib})`;
    case "iq4_nl":
      return `${name}_T[${nib}]`;
    case "q8_0":
      return `(i32(${buf}[pw + j / 4u] << (24u - 8u * (j % 4u))) >> 24u)`;
    default: {
      const n5 = `((${buf}[pw + 1u + (j % 16u) / 4u] >> (8u * (j % 4u) + 4u * (j / 16u))) & 15u)`;
      const c = `i32(${n5} | (((${buf}[pw] >> j) & 1u) << 4u))`;
      return P.t === "q5_0" ? `${c} - 16` : c;
    }
  }
}

/** `fn <name>(rb: u32, i: u32) -> f32`: element i of the encoded row at word rb of `buf`. */
export function decodeGgmlElemWgsl(t: GgmlWgslType, L: GpuRowLayout, name: string, buf: string): string {
  const P = plan(t, L);
  const half = (off: number) =>
    `bitcast<f32>(f16_to_f32_bits((${buf}[rb + ${off}u + b / 2u] >> (16u * (b % 2u))) & 0xffffu))`;
  return `${P.t === "iq4_nl" ? table(name) : ""}fn ${name}(rb: u32, i: u32) -> f32 {
  let b = i / 32u;
  let j = i % 32u;
  let pw = rb + b * ${P.pw}u;
  let d = ${half(L.scaleOff)};
  return f32(${levelExpr(P, name, buf)}) * d${P.hasMin ? ` + ${half(L.zeroOff)}` : ""};
}
`;
}

/** `fn <name>(rb: u32) -> f32`: the workgroup's query row `qs` dotted with the row at rb (d and m hoisted per block). */
export function dotGgmlRowWgsl(t: GgmlWgslType, L: GpuRowLayout, name: string, buf: string): string {
  const P = plan(t, L);
  const half = (off: number) =>
    `bitcast<f32>(f16_to_f32_bits((${buf}[rb + ${off}u + b / 2u] >> (16u * (b % 2u))) & 0xffffu))`;
  return `${P.t === "iq4_nl" ? table(name) : ""}fn ${name}(rb: u32) -> f32 {
  var acc = 0.0;
  for (var b = 0u; b < ${P.nB}u; b = b + 1u) {
    let pw = rb + b * ${P.pw}u;
    var ql = 0.0;
    var qsum = 0.0;
    for (var j = 0u; j < 32u; j = j + 1u) {
      let q = qs[b * 32u + j];
      ql = ql + q * f32(${levelExpr(P, name, buf)});
      qsum = qsum + q;
    }
    acc = acc + ${half(L.scaleOff)} * ql${P.hasMin ? ` + ${half(L.zeroOff)} * qsum` : ""};
  }
  return acc;
}
`;
}

/** Helpers of the encoder (prefixed by the encoder's name: one shader may hold several codecs). */
function encodeHelpers(n: string): string {
  return /* wgsl */ `
// a < b as JavaScript compares finite f32s (-0 and +0 equal)
fn ${n}_lt(a: u32, b: u32) -> bool { return ((a | b) & F32_ABS) != 0u && fkey(a) < fkey(b); }

// 1 / x correctly rounded, for finite nonzero x (bits); Inf where it overflows.
fn ${n}_recip(xb: u32) -> u32 {
  let sign = xb & 0x80000000u;
  if ((xb & F32_ABS) <= 0x00200000u) { return sign | F32_EXP; } // |x| <= 2^-128
  let s = f32_split(xb);
  let m = u32(s.x);
  let e = s.y;
  // floor(2^54 / m) and its remainder, 8 bits per step (m in [2^23, 2^24): every step fits a u32)
  var q = 0x40000000u / m;
  var r = 0x40000000u % m;
  for (var k = 0u; k < 3u; k = k + 1u) {
    r = r << 8u;
    q = (q << 8u) | (r / m);
    r = r % m;
  }
  return sign | round_quot(q, r, m, -54 - e);
}

// a / b correctly rounded for finite a and b > 0 with a / b within f32 range (iq4_nl's refit);
// NaN operands or Inf / Inf give the x86 default NaN, as the reference's f64 division does there.
fn ${n}_div(ab: u32, bb: u32) -> u32 {
  if (is_nan_bits(ab) || is_nan_bits(bb) || (!is_finite_bits(ab) && !is_finite_bits(bb))) { return 0xffc00000u; }
  if (!is_finite_bits(ab)) { return ab; }
  if (!is_finite_bits(bb) || (ab & F32_ABS) == 0u) { return ab & 0x80000000u; }
  let sa = f32_split(ab & F32_ABS);
  let sb = f32_split(bb);
  let ma = u32(sa.x);
  let mb = u32(sb.x);
  var q = ma / mb;
  var r = ma % mb;
  for (var k = 0u; k < 3u; k = k + 1u) {
    r = r << 8u;
    q = (q << 8u) | (r / mb);
    r = r % mb;
  }
  return (ab & 0x80000000u) | round_quot(q, r, mb, sa.y - sb.y - 24);
}

// f32 -> f16 bits, round to nearest, saturating at +-65504 (Inf and NaN included, by sign)
fn ${n}_f16sat(b: u32) -> u32 {
  let h = f32_to_f16(b);
  if ((h & 0x7c00u) == 0x7c00u) { return (h & 0x8000u) | 0x7bffu; }
  return h;
}

// the product rounded on its own: an integer OR with a zero the compiler cannot see
fn ${n}_nofuse(x: f32, z: u32) -> f32 { return bitcast<f32>(bitcast<u32>(x) | z); }

// JavaScript's store of a number into a Uint8Array (the reference's code arrays)
fn ${n}_u8(v: f32) -> u32 {
  if (!(abs(v) < 2147483648.0)) { return 0u; }
  return u32(i32(v)) & 0xffu;
}
`;
}

/** WGSL statements computing codes (array c), d (bits) and m (bits) of the sanitized block xs. */
function quantizeBody(P: Plan, n: string): string {
  switch (P.t) {
    case "q4_0":
    case "q5_0": {
      const H = P.t === "q4_0" ? 8 : 16;
      return `
    var amax = 0u;
    var mx = 0u;
    for (var j = 0u; j < 32u; j = j + 1u) {
      let a = xs[j] & F32_ABS;
      if (amax < a) { amax = a; mx = xs[j]; }
    }
    dbits = (~mx & 0x80000000u) | div_small(mx & F32_ABS, ${H}u);
    var id = 0.0;
    if ((dbits & F32_ABS) != 0u) { id = bitcast<f32>(${n}_recip(dbits)); }
    for (var j = 0u; j < 32u; j = j + 1u) {
      let s = ${n}_nofuse(bitcast<f32>(xs[j]) * id, z) + ${f(H + 0.5)};
      var code = 0u;
      if (s >= ${f(2 * H - 1)}) { code = ${2 * H - 1}u; } else { code = ${n}_u8(trunc(s)); }
      c[j] = code;
    }`;
    }
    case "q4_1":
    case "q5_1": {
      const Lv = P.t === "q4_1" ? 15 : 31;
      return `
    var mn = 0x7f800000u;
    var mx = 0xff800000u;
    for (var j = 0u; j < 32u; j = j + 1u) {
      if (${n}_lt(xs[j], mn)) { mn = xs[j]; }
      if (${n}_lt(mx, xs[j])) { mx = xs[j]; }
    }
    let rng_ = bitcast<u32>(bitcast<f32>(mx) - bitcast<f32>(mn));
    if (is_finite_bits(rng_)) { dbits = div_small(rng_, ${Lv}u); } else { dbits = F32_EXP; }
    mbits = mn;
    var id = 0.0;
    if ((dbits & F32_ABS) != 0u && is_finite_bits(dbits)) { id = bitcast<f32>(${n}_recip(dbits)); }
    for (var j = 0u; j < 32u; j = j + 1u) {
      let s = ${n}_nofuse((bitcast<f32>(xs[j]) - bitcast<f32>(mn)) * id, z) + 0.5;
      ${
        P.t === "q4_1"
          ? `var code = 0u;
      if (s >= 15.0) { code = 15u; } else { code = ${n}_u8(trunc(s)); }
      c[j] = code;`
          : `c[j] = ${n}_u8(trunc(s));`
      }
    }`;
    }
    case "q8_0":
      return `
    var amax = 0u;
    for (var j = 0u; j < 32u; j = j + 1u) { amax = max(amax, xs[j] & F32_ABS); }
    dbits = div_small(amax, 127u);
    var id = 0.0;
    if (dbits != 0u) { id = bitcast<f32>(${n}_recip(dbits)); }
    for (var j = 0u; j < 32u; j = j + 1u) {
      let v = bitcast<f32>(xs[j]) * id;
      let a = abs(v);
      var r = floor(a);
      if (a - r >= 0.5) { r = r + 1.0; }
      c[j] = ${n}_u8(select(r, -r, v < 0.0));
    }`;
    default:
      return `
    var amax = 0u;
    var mx = 0u;
    for (var j = 0u; j < 32u; j = j + 1u) {
      let a = xs[j] & F32_ABS;
      if (a > amax) { amax = a; mx = xs[j]; }
    }
    if (amax < 0x26901d7du) { // 1e-15 as f32: the block is zero; its codes point at level 1
      for (var j = 0u; j < 32u; j = j + 1u) { c[j] = 8u; }
      dbits = 0u;
    } else {
      let id = bitcast<f32>(${n}_recip((~mx & 0x80000000u) | div_small(mx & F32_ABS, 127u)));
      var sumqx = 0.0;
      var sumq2 = 0.0;
      for (var j = 0u; j < 32u; j = j + 1u) {
        let xj = bitcast<f32>(xs[j]);
        let y = id * xj;
        var l = 0u;
        if (y <= -127.0) { l = 0u; }
        else if (y >= 113.0) { l = 15u; }
        else {
          var blo = 0u;
          var bhi = 15u;
          while (bhi - blo > 1u) {
            let mid = (blo + bhi) / 2u;
            if (y < f32(${n}_T[mid])) { bhi = mid; } else { blo = mid; }
          }
          l = select(bhi, bhi - 1u, y - f32(${n}_T[bhi - 1u]) < f32(${n}_T[bhi]) - y);
        }
        c[j] = l;
        let q = f32(${n}_T[l]);
        let wq = xj * xj * q;
        sumqx = sumqx + ${n}_nofuse(wq * xj, z);
        sumq2 = sumq2 + ${n}_nofuse(wq * q, z);
      }
      dbits = ${n}_div(bitcast<u32>(sumqx), bitcast<u32>(sumq2));
    }`;
  }
}

/** WGSL statements packing codes c into the block's payload words at pw (the row was zeroed). */
function packBody(P: Plan, dst: string): string {
  if (P.t === "q8_0")
    return `    for (var j = 0u; j < 32u; j = j + 1u) { ${dst}[pw + j / 4u] |= (c[j] & 0xffu) << (8u * (j % 4u)); }`;
  const q5 = P.t === "q5_0" || P.t === "q5_1";
  return `${
    q5
      ? `    var qh = 0u;
    for (var j = 0u; j < 32u; j = j + 1u) { qh |= ((c[j] >> 4u) & 1u) << j; }
    ${dst}[pw] = qh;
`
      : ""
  }    for (var k = 0u; k < 16u; k = k + 1u) {
      let by = (c[k] & 15u) | ((c[k + 16u] & 15u) << 4u);
      ${dst}[pw + ${q5 ? "1u + " : ""}k / 4u] |= by << (8u * (k % 4u));
    }`;
}

/**
 * `fn <name>(sb: u32, db: u32) -> vec2<u32>`: encode the headDim f32 bit patterns at src[sb..]
 * into the row at dst[db..]; returns (nonFinite, saturated) of the row.
 */
export function encodeGgmlRowWgsl(
  t: GgmlWgslType,
  L: GpuRowLayout,
  name: string,
  src: string,
  dst: string,
): string {
  const P = plan(t, L);
  return /* wgsl */ `${P.t === "iq4_nl" ? table(name) : ""}${encodeHelpers(name)}
fn ${name}(sb: u32, db: u32) -> vec2<u32> {
  var nonfinite = 0u;
  var sat = 0u;
  let z = sb >> 31u; // 0 (src offsets are below 2^31), unknown to the compiler: see nofuse
  for (var w = 0u; w < ${L.rowWords}u; w = w + 1u) { ${dst}[db + w] = 0u; }
  for (var b = 0u; b < ${P.nB}u; b = b + 1u) {
    let s0 = sb + b * 32u;
    // the block's finite range, as the reference's sanitize (NaN -> 0, +-Inf -> its max / min)
    var lo = 0x7f800000u;
    var hi = 0xff800000u;
    var bad = 0u;
    for (var j = 0u; j < 32u; j = j + 1u) {
      let x = ${src}[s0 + j];
      if (is_finite_bits(x)) {
        if (${name}_lt(x, lo)) { lo = x; }
        if (${name}_lt(hi, x)) { hi = x; }
      } else { bad = bad + 1u; }
    }
    if (bad == 32u) { lo = 0u; hi = 0u; }
    nonfinite = nonfinite + bad;
    var xs: array<u32, 32>;
    for (var j = 0u; j < 32u; j = j + 1u) {
      var x = ${src}[s0 + j];
      if (is_nan_bits(x)) { x = 0u; } else if (x == 0x7f800000u) { x = hi; } else if (x == 0xff800000u) { x = lo; }
      xs[j] = x;
    }
    var c: array<u32, 32>;
    var dbits = 0u;
    var mbits = 0u;
${quantizeBody(P, name)}
    let pw = db + b * ${P.pw}u;
${packBody(P, dst)}
    let dh = ${name}_f16sat(dbits);
    ${dst}[db + ${L.scaleOff}u + b / 2u] |= dh << (16u * (b % 2u));
    var satd = (f32_to_f16(dbits) & 0x7c00u) == 0x7c00u;
${
  P.hasMin
    ? `    let mh = ${name}_f16sat(mbits);
    ${dst}[db + ${L.zeroOff}u + b / 2u] |= mh << (16u * (b % 2u));
    satd = satd || (f32_to_f16(mbits) & 0x7c00u) == 0x7c00u;
    let ms = bitcast<f32>(f16_to_f32_bits(mh));`
    : "    let ms = 0.0;"
}
    if (satd) {
      // elements the saturated grid cannot reach (beyond its extreme levels)
      let ds = bitcast<f32>(f16_to_f32_bits(dh));
      let ga = ${f(P.low)} * ds + ms;
      let gz = ${f(P.top)} * ds + ms;
      let glo = min(ga, gz);
      let ghi = max(ga, gz);
      for (var j = 0u; j < 32u; j = j + 1u) {
        let x = ${src}[s0 + j];
        if (is_finite_bits(x) && (bitcast<f32>(x) < glo || bitcast<f32>(x) > ghi)) { sat = sat + 1u; }
      }
    }
  }
  return vec2<u32>(nonfinite, sat);
}
`;
}
