/**
 * WGSL for TurboQuant's MSE codecs (Zandieh et al. 2025, arXiv:2504.19874; the reference is
 * src/quant/turboquant.ts): one f16 norm per row, each coordinate's Lloyd-Max code (the first
 * ceil(d/2) coordinates `hi` bits, the rest `lo`), bit-packed little-endian. Codebooks
 * (turboquant-codebook.ts) are baked into the shader as f32 literals printed exactly.
 *
 * Encode reproduces the reference bit for bit without f64 (WGSL has none):
 *   - the norm: the reference rounds sqrt of the f64 sum of squares to f32, then to f16. Here
 *     the squares (exact 48-bit integers) are summed in a 128-bit fixed-point accumulator
 *     aligned to the row's largest exponent (exact but for terms 2^-72 below the largest),
 *     an f32 square root is the first guess, and the correctly rounded f32 root is found by
 *     comparing the square of each candidate's half-ulp neighbours with the sum, in integers.
 *     The f64 sum's own rounding (2^-53 relative) is not modelled: a norm within that of an
 *     f32 rounding boundary may differ (probability ~2^-29 per row).
 *   - u = x / n^ correctly rounded by integer long division (bits.ts round_quot), since a
 *     WGSL f32 division may be off by 2.5 ulp; codes count the boundaries <= u.
 * Decode and the key dot product look the codes up in the codebook: x'_i = n^ * c[code_i], an
 * f32 product rounded once, as the reference's.
 */
import { turboCodebook } from "../../quant/turboquant-codebook.ts";
import type { GpuRowLayout } from "../layout.ts";

/** Exact WGSL literal of an f32 value (JS prints the shortest decimal that reads back exactly). */
function lit(x: number): string {
  const s = String(Math.fround(x));
  return /[.e]/.test(s) ? s : `${s}.0`;
}

function arr(name: string, xs: ArrayLike<number>): string {
  const v = Array.from({ length: 16 }, (_, i) => (i < xs.length ? lit(xs[i]!) : "3.0e38"));
  return `var<private> ${name}: array<f32, 16> = array<f32, 16>(${v.join(", ")});\n`;
}

interface TurboPlan {
  D: number;
  lo: number;
  hi: number;
  nHi: number;
}

function plan(L: GpuRowLayout, lo: number, hi: number): TurboPlan {
  return { D: L.headDim, lo, hi, nHi: Math.ceil(L.headDim / 2) };
}

/** Codebooks of one codec at one head size, as private arrays prefixed by `pre`. */
function books(pre: string, P: TurboPlan): string {
  const h = turboCodebook(P.D, P.hi);
  const l = turboCodebook(P.D, P.lo);
  return (
    arr(`${pre}_HC`, h.centroids) +
    arr(`${pre}_HB`, h.boundaries) +
    arr(`${pre}_LC`, l.centroids) +
    arr(`${pre}_LB`, l.boundaries)
  );
}

/** WGSL expression: (bit offset, width) of element `i` (u32). */
function where(P: TurboPlan, i: string): { bit: string; hiSide: string } {
  return {
    hiSide: `${i} < ${P.nHi}u`,
    bit: `select(${P.nHi * P.hi}u + (${i} - ${P.nHi}u) * ${P.lo}u, ${i} * ${P.hi}u, ${i} < ${P.nHi}u)`,
  };
}

/** `fn <name>_code(rb, bit, w) -> u32`: w-bit code at bit offset `bit` of the row at rb (may straddle words). */
function getCodeFn(name: string, buf: string): string {
  return `fn ${name}_code(rb: u32, bit: u32, w: u32) -> u32 {
  let s = bit % 32u;
  var v = ${buf}[rb + bit / 32u] >> s;
  if (s + w > 32u) { v = v | (${buf}[rb + bit / 32u + 1u] << (32u - s)); }
  return v & ((1u << w) - 1u);
}
`;
}

/** `fn <name>(rb: u32, i: u32) -> f32`: element i of the encoded row at word rb of `buf`. */
export function decodeTurboElemWgsl(
  lo: number,
  hi: number,
  L: GpuRowLayout,
  name: string,
  buf: string,
): string {
  const P = plan(L, lo, hi);
  const w = where(P, "i");
  return `${books(name, P)}${getCodeFn(name, buf)}
fn ${name}(rb: u32, i: u32) -> f32 {
  let n = bitcast<f32>(f16_to_f32_bits(${buf}[rb + ${L.scaleOff}u] & 0xffffu));
  let code = ${name}_code(rb, ${w.bit}, select(${P.lo}u, ${P.hi}u, ${w.hiSide}));
  return n * select(${name}_LC[code], ${name}_HC[code], ${w.hiSide});
}
`;
}

/** `fn <name>(rb: u32) -> f32`: q . k for the workgroup's query `qs` = n^ * sum_i q_i c[code_i]. */
export function dotTurboRowWgsl(lo: number, hi: number, L: GpuRowLayout, name: string, buf: string): string {
  const P = plan(L, lo, hi);
  return `${books(name, P)}${getCodeFn(name, buf)}
fn ${name}(rb: u32) -> f32 {
  var acc = 0.0;
  for (var i = 0u; i < ${P.nHi}u; i = i + 1u) { acc = acc + qs[i] * ${name}_HC[${name}_code(rb, i * ${P.hi}u, ${P.hi}u)]; }
  for (var i = ${P.nHi}u; i < ${P.D}u; i = i + 1u) {
    acc = acc + qs[i] * ${name}_LC[${name}_code(rb, ${P.nHi * P.hi}u + (i - ${P.nHi}u) * ${P.lo}u, ${P.lo}u)];
  }
  return bitcast<f32>(f16_to_f32_bits(${buf}[rb + ${L.scaleOff}u] & 0xffffu)) * acc;
}
`;
}

/** 128-bit helpers of the exact norm (little-endian u32 words), shared by every turbo encoder. */
const WIDE_WGSL = /* wgsl */ `
// v (48- or 52-bit, as lo + hi * 2^32) times 2^k into 128 bits; bits below 2^0 are dropped.
fn tq_shift(lo: u32, hi: u32, k: i32) -> vec4<u32> {
  var t = vec4<u32>(0u, 0u, 0u, 0u);
  if (k >= 0) {
    let wq = u32(k) / 32u;
    let bq = u32(k) % 32u;
    var w0 = lo;
    var w1 = hi;
    var w2 = 0u;
    if (bq != 0u) { w0 = lo << bq; w1 = (hi << bq) | (lo >> (32u - bq)); w2 = hi >> (32u - bq); }
    // Past 2^128 (a candidate far above any sum): saturate, it compares greater.
    let full = vec4<u32>(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
    if (wq == 0u) { t = vec4<u32>(w0, w1, w2, 0u); }
    else if (wq == 1u) { t = vec4<u32>(0u, w0, w1, w2); }
    else if (wq == 2u) { t = select(vec4<u32>(0u, 0u, w0, w1), full, w2 != 0u); }
    else if (wq == 3u) { t = select(vec4<u32>(0u, 0u, 0u, w0), full, w1 != 0u || w2 != 0u); }
    else { t = full; }
  } else {
    let r = u32(-k);
    if (r < 32u) { t.x = (lo >> r) | (hi << (32u - r)); t.y = hi >> r; }
    else if (r < 64u) { t.x = hi >> (r - 32u); }
  }
  return t;
}
fn tq_add(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
  var s = a + b;
  var c = select(0u, 1u, s.x < a.x);
  let y = s.y + c;
  c = select(0u, 1u, s.y < a.y) + select(0u, 1u, y < s.y);
  s.y = y;
  let z = s.z + c;
  c = select(0u, 1u, s.z < a.z) + select(0u, 1u, z < s.z);
  s.z = z;
  s.w = s.w + c;
  return s;
}
// -1, 0, 1 as a <, ==, > b.
fn tq_cmp(a: vec4<u32>, b: vec4<u32>) -> i32 {
  if (a.w != b.w) { return select(-1, 1, a.w > b.w); }
  if (a.z != b.z) { return select(-1, 1, a.z > b.z); }
  if (a.y != b.y) { return select(-1, 1, a.y > b.y); }
  if (a.x != b.x) { return select(-1, 1, a.x > b.x); }
  return 0;
}
// m * m for m < 2^26, as (lo, hi).
fn tq_sq(m: u32) -> vec2<u32> {
  let a = m & 0xffffu;
  let b = m >> 16u;
  let mid = 2u * a * b;
  let lo = a * a + (mid << 16u);
  let c = select(0u, 1u, lo < a * a);
  return vec2<u32>(lo, b * b + (mid >> 16u) + c);
}
// (c * 2^g)^2 in the accumulator's units (2^(2 * emax - 372)).
fn tq_square_at(c: u32, g: i32, emax: i32) -> vec4<u32> {
  let s = tq_sq(c);
  return tq_shift(s.x, s.y, 2 * g - 2 * emax + 372);
}
// f32 x / f16 h, correctly rounded, for finite x >= 0 (bits) and positive finite h.
fn tq_div_f16(xb: u32, h: u32) -> u32 {
  if ((xb & 0x7fffffffu) == 0u) { return 0u; }
  let s = f32_split(xb);
  let m = u32(s.x);
  let e = s.y;
  let he = (h >> 10u) & 0x1fu;
  var m11 = h & 0x3ffu;
  var eh = -24;
  if (he != 0u) { m11 = m11 | 0x400u; eh = i32(he) - 25; }
  // x / h = (m * 2^8 / m11) * 2^(e - 8 - eh); the quotient in two u32 steps (m * 2^16 / m11).
  let n = m << 8u;
  let q1 = n / m11;
  let n2 = (n % m11) << 8u;
  return round_quot((q1 << 8u) | (n2 / m11), n2 % m11, m11, e - 16 - eh);
}
`;

export { WIDE_WGSL as TURBO_WIDE_WGSL };

/**
 * `fn <name>(sb: u32, db: u32) -> vec2<u32>`: encode the headDim f32 bit patterns at src[sb..]
 * into the row at dst[db..]; returns (nonFinite, saturated). Needs TURBO_WIDE_WGSL and bits.ts.
 */
export function encodeTurboRowWgsl(
  lo: number,
  hi: number,
  L: GpuRowLayout,
  name: string,
  src: string,
  dst: string,
): string {
  const P = plan(L, lo, hi);
  const w = where(P, "i");
  return `${books(name, P)}
fn ${name}(sb: u32, db: u32) -> vec2<u32> {
  var nonfinite = 0u;
  var finite = 0u;
  var emax = 0;
  for (var i = 0u; i < ${P.D}u; i = i + 1u) {
    let x = ${src}[sb + i];
    if (is_finite_bits(x)) {
      finite = finite + 1u;
      if ((x & F32_ABS) != 0u) { emax = max(emax, max(i32((x >> 23u) & 0xffu), 1)); }
    } else { nonfinite = nonfinite + 1u; }
  }
  // h: the f16 norm, as the reference's f32ToF16(fround(sqrt(sum of squares))).
  var h = 0u;
  var sat = 0u;
  if (emax >= 150) { h = 0x7bffu; sat = finite; } // |x| >= 2^23: the norm is past 65504
  else if (emax >= 90) { // below, the norm is < 2^-33 and rounds to f16 zero
    var acc = vec4<u32>(0u, 0u, 0u, 0u);
    for (var i = 0u; i < ${P.D}u; i = i + 1u) {
      let x = ${src}[sb + i];
      if (is_finite_bits(x) && (x & F32_ABS) != 0u) {
        let ex = (x >> 23u) & 0xffu;
        var m = x & 0x7fffffu;
        if (ex != 0u) { m = m | 0x800000u; }
        let s = tq_sq(m);
        acc = tq_add(acc, tq_shift(s.x, s.y, 72 - 2 * (emax - max(i32(ex), 1))));
      }
    }
    if (tq_cmp(acc, tq_square_at(2047u, 5, emax)) > 0) { h = 0x7bffu; sat = finite; } // norm > 65504
    else {
      let a = f32(acc.w) + f32(acc.z) * 2.3283064365386963e-10 + f32(acc.y) * 5.421010862427522e-20;
      var f = bitcast<u32>(sqrt(a) * exp2(f32(emax - 138)));
      for (var it = 0; it < 8; it = it + 1) {
        let ef = i32((f >> 23u) & 0xffu) - 150;
        let mf = (f & 0x7fffffu) | 0x800000u;
        if (tq_cmp(tq_square_at(2u * mf + 1u, ef - 1, emax), acc) <= 0) { f = f + 1u; continue; }
        var below: vec4<u32>;
        if (mf == 0x800000u) { below = tq_square_at(4u * mf - 1u, ef - 2, emax); }
        else { below = tq_square_at(2u * mf - 1u, ef - 1, emax); }
        if (tq_cmp(below, acc) > 0) { f = f - 1u; continue; }
        break;
      }
      h = f32_to_f16(f);
    }
  }
  ${dst}[db + ${L.scaleOff}u] = h;
  for (var wd = 0u; wd < ${L.payloadWords}u; wd = wd + 1u) { ${dst}[db + wd] = 0u; }
  for (var i = 0u; i < ${P.D}u; i = i + 1u) {
    let xb = ${src}[sb + i];
    var u = 0.0;
    if (is_nan_bits(xb)) { u = 0.0; }
    else if (!is_finite_bits(xb)) { u = bitcast<f32>(xb); }
    else if (h != 0u) { u = bitcast<f32>((xb & 0x80000000u) | tq_div_f16(xb & F32_ABS, h)); }
    let hs = ${w.hiSide};
    let width = select(${P.lo}u, ${P.hi}u, hs);
    var code = 0u;
    for (var k = 0u; k < (1u << width) - 1u; k = k + 1u) {
      if (select(${name}_LB[k], ${name}_HB[k], hs) <= u) { code = code + 1u; }
    }
    let bit = ${w.bit};
    let s = bit % 32u;
    ${dst}[db + bit / 32u] |= code << s;
    if (s + width > 32u) { ${dst}[db + bit / 32u + 1u] |= code >> (32u - s); }
  }
  return vec2<u32>(nonfinite, sat);
}
`;
}
