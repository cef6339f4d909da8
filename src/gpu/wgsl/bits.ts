/**
 * WGSL helpers that reproduce src/quant/half.ts bit for bit using integer arithmetic only.
 *
 * Why integers: WGSL lets an implementation flush f32 subnormals, gives f32 division only
 * 2.5 ulp accuracy, and never exposes NaN tests; the reference rounds every step exactly.
 * So format conversions work on bit patterns, comparisons use an order-preserving integer key,
 * and the two divisions the integer codecs need (range / levels, 1 / scale) are done by integer
 * long division with round-half-to-even, which is exact. What remains in f32 is one multiply
 * (x * inv) and one subtraction (x - m) per element, which WGSL requires to be correctly rounded.
 */
export const BITS_WGSL = /* wgsl */ `
const F32_ABS: u32 = 0x7fffffffu;
const F32_EXP: u32 = 0x7f800000u;
const F16_MAX_BITS: u32 = 0x477fe000u; // 65504.0

fn is_finite_bits(b: u32) -> bool { return (b & F32_EXP) != F32_EXP; }
fn is_nan_bits(b: u32) -> bool { return (b & F32_ABS) > F32_EXP; }

// Order-preserving key of a non-NaN f32: a < b as floats iff key(a) < key(b); -0 and +0 equal.
fn fkey(b0: u32) -> u32 {
  var b = b0;
  if ((b & F32_ABS) == 0u) { b = 0u; }
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

// f16 bits -> f32 bits, exact (f16 subnormals are normal f32s).
fn f16_to_f32_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | F32_EXP | (m << 13u); }
  if (e == 0u) {
    if (m == 0u) { return sign; }
    let p = firstLeadingBit(m);
    return sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
  }
  return sign | ((e + 112u) << 23u) | (m << 13u);
}

// f32 bits -> f16 bits, round to nearest even, overflow to Inf, NaN kept quiet (half.ts f32ToF16).
fn f32_to_f16(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let ex = (b >> 23u) & 0xffu;
  let mant = b & 0x7fffffu;
  if (ex == 0xffu) {
    if (mant != 0u) { return sign | 0x7c00u | 0x200u | (mant >> 13u); }
    return sign | 0x7c00u;
  }
  let e = i32(ex) - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    let m = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    let rem = m & ((1u << shift) - 1u);
    var r = m >> shift;
    if (rem > half || (rem == half && (r & 1u) == 1u)) { r = r + 1u; }
    return sign | r;
  }
  var r = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) == 1u)) { r = r + 1u; }
  return sign | r;
}

fn f16_next_up(h: u32) -> u32 {
  if (h == 0x8000u) { return 1u; }
  if ((h & 0x8000u) != 0u) { return h - 1u; }
  return h + 1u;
}

fn f16_next_down(h: u32) -> u32 {
  if (h == 0u) { return 0x8001u; }
  if ((h & 0x8000u) != 0u) { return h + 1u; }
  return h - 1u;
}

// Smallest f16 >= x, saturating at +-65504 (finite x).
fn f32_to_f16_up(b: u32) -> u32 {
  let k = fkey(b);
  if (k >= fkey(F16_MAX_BITS)) { return 0x7bffu; }
  if (k <= fkey(F16_MAX_BITS | 0x80000000u)) { return 0xfbffu; }
  var h = f32_to_f16(b);
  if (fkey(f16_to_f32_bits(h)) < k) { h = f16_next_up(h); }
  return h;
}

// Largest f16 <= x, saturating at +-65504 (finite x).
fn f32_to_f16_down(b: u32) -> u32 {
  let k = fkey(b);
  if (k >= fkey(F16_MAX_BITS)) { return 0x7bffu; }
  if (k <= fkey(F16_MAX_BITS | 0x80000000u)) { return 0xfbffu; }
  var h = f32_to_f16(b);
  if (fkey(f16_to_f32_bits(h)) > k) { h = f16_next_down(h); }
  return h;
}

// The f32 bits nearest (ties to even) to (q + rem/d) * 2^f, for q >= 2^23, 0 <= rem < d.
fn round_quot(q: u32, rem: u32, d: u32, f: i32) -> u32 {
  let top = i32(firstLeadingBit(q));
  var shift = top - 23; // bits to drop for a 24-bit significand
  let sub = -149 - f;   // bits to drop so the result is a multiple of 2^-149 (subnormal grid)
  if (sub > shift) { shift = sub; }
  if (shift > 32) { return 0u; } // below half the smallest subnormal (ties go to zero)
  var sig: u32;
  var lower: u32;
  var half: u32;
  if (shift == 32) {
    sig = 0u; lower = q; half = 0x80000000u;
  } else if (shift == 0) {
    sig = q; lower = 0u; half = 0u;
  } else {
    let s = u32(shift);
    sig = q >> s; lower = q & ((1u << s) - 1u); half = 1u << (s - 1u);
  }
  var up = false;
  if (shift == 0) {
    up = 2u * rem > d || (2u * rem == d && (sig & 1u) == 1u);
  } else {
    up = lower > half || (lower == half && (rem > 0u || (sig & 1u) == 1u));
  }
  if (up) { sig = sig + 1u; }
  let be = f + shift + 150; // biased exponent of sig's bit 23
  if (be <= 0) { return sig; } // subnormal grid (sig may round up into the smallest normal)
  return (u32(be) << 23u) + sig - 0x800000u;
}

// significand in [2^23, 2^24) and exponent of a finite nonzero f32 (bits; sign ignored): |x| = m * 2^e
fn f32_split(xb: u32) -> vec2<i32> {
  let ex = (xb >> 23u) & 0xffu;
  let m = xb & 0x7fffffu;
  if (ex == 0u) {
    let lz = 23u - firstLeadingBit(m);
    return vec2<i32>(i32(m << lz), -149 - i32(lz));
  }
  return vec2<i32>(i32(m | 0x800000u), i32(ex) - 150);
}

// x / d correctly rounded, for finite x >= 0 (bits) and integer 1 <= d <= 255.
fn div_small(xb: u32, d: u32) -> u32 {
  if (d == 1u) { return xb; }
  if ((xb & 0x7fffffffu) == 0u) { return 0u; }
  let s = f32_split(xb);
  let m = u32(s.x);
  let e = s.y;
  let n = m << 8u;
  return round_quot(n / d, n % d, d, e - 8);
}

// 1 / s correctly rounded, for a positive finite f16 s (bits h).
fn recip_f16(h: u32) -> u32 {
  let sb = f16_to_f32_bits(h);
  let ex = (sb >> 23u) & 0xffu;
  let m11 = ((sb & 0x7fffffu) | 0x800000u) >> 13u; // s = m11 * 2^(ex - 137), m11 in [1024, 2047]
  // 1 / s = floor-and-remainder of 2^39 / m11, times 2^(98 - ex); two steps keep u32.
  let q1 = 0x80000000u / m11;
  let n2 = (0x80000000u % m11) << 8u;
  return round_quot((q1 << 8u) | (n2 / m11), n2 % m11, m11, 98 - i32(ex));
}

// bf16 (half.ts f32ToBf16).
fn f32_to_bf16(b: u32) -> u32 {
  if ((b & F32_EXP) == F32_EXP && (b & 0x7fffffu) != 0u) { return ((b >> 16u) | 0x40u) & 0xffffu; }
  let lsb = (b >> 16u) & 1u;
  return ((b + 0x7fffu + lsb) >> 16u) & 0xffffu;
}

// OCP FP8 E4M3, saturating (half.ts f32ToFp8E4M3).
fn f32_to_fp8(b: u32) -> u32 {
  let sign = (b >> 24u) & 0x80u;
  let ex = (b >> 23u) & 0xffu;
  let mant = b & 0x7fffffu;
  if (ex == 0xffu && mant != 0u) { return sign | 0x7fu; }
  if (ex == 0xffu) { return sign | 0x7eu; }
  let e = i32(ex) - 120;
  if (e >= 16) { return sign | 0x7eu; }
  if (e <= 0) {
    if (e < -3) { return sign; }
    let m = mant | 0x800000u;
    let shift = u32(21 - e);
    let half = 1u << (shift - 1u);
    let rem = m & ((1u << shift) - 1u);
    var r = m >> shift;
    if (rem > half || (rem == half && (r & 1u) == 1u)) { r = r + 1u; }
    return sign | r;
  }
  var r = (u32(e) << 3u) | (mant >> 20u);
  let rem = mant & 0xfffffu;
  if (rem > 0x80000u || (rem == 0x80000u && (r & 1u) == 1u)) { r = r + 1u; }
  if (r > 0x7eu) { r = 0x7eu; }
  return sign | r;
}

fn fp8_to_f32_bits(v: u32) -> u32 {
  let sign = (v & 0x80u) << 24u;
  let e = (v >> 3u) & 0xfu;
  let m = v & 7u;
  if (e == 0xfu && m == 7u) { return sign | 0x7fc00000u; }
  if (e == 0u) {
    if (m == 0u) { return sign; }
    let p = firstLeadingBit(m); // value m * 2^-9 = 2^(p-9) * (m / 2^p)
    return sign | ((p + 118u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
  }
  return sign | ((e + 120u) << 23u) | (m << 20u);
}
`;
