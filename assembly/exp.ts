// Vectorised exp for f32x4 (Cephes expf: range reduction by ln 2 split in two constants, degree-6
// polynomial, scaling by 2^n through the exponent bits). About 1 f32 ulp from the exact value.
// Inputs below -87.3 give 0 (as exp does, give or take the subnormal range); above 88.7 give
// exp(88.7) (callers only pass x <= 0 for softmax, and -g for SiLU where the result then divides).

/**
 * exp4's constants, one f32x4 each, read from memory: written as v128 constants, V8 (12.x, 13.x)
 * rebuilds each one at every use inside a loop (movabs + vmovq + vpunpcklqdq, 3 instructions):
 * 15 of them were 45 of the softmax loop's 94 instructions per 4 elements (--print-wasm-code).
 */
const EK = memory.data<f32>(
  [
    -87.33654, -87.33654, -87.33654, -87.33654, // 0
    88.72283, 88.72283, 88.72283, 88.72283, // 16
    1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341, // 32
    0.693359375, 0.693359375, 0.693359375, 0.693359375, // 48
    -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, // 64
    1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, // 80
    1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, // 96
    8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, // 112
    4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, // 128
    1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, // 144
    5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, // 160
    1, 1, 1, 1, // 176
  ],
  16,
);

// @ts-ignore: decorator
@inline
export function exp4(x: v128): v128 {
  const lo = v128.load(EK);
  const under = f32x4.lt(x, lo);
  // pmin / pmax (one minps / maxps each) rather than min / max, whose NaN and -0 rules cost V8
  // several instructions apiece: against these constants they agree for every x but NaN, which
  // stays NaN (its payload may differ); 4-7% of a whole attention call (9q/3kv/64, 4K).
  x = f32x4.pmin(x, v128.load(EK, 16));
  x = f32x4.pmax(x, lo);
  const n = f32x4.nearest(f32x4.mul(x, v128.load(EK, 32)));
  let r = f32x4.sub(x, f32x4.mul(n, v128.load(EK, 48)));
  r = f32x4.sub(r, f32x4.mul(n, v128.load(EK, 64)));
  let p = v128.load(EK, 80);
  p = f32x4.add(f32x4.mul(p, r), v128.load(EK, 96));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EK, 112));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EK, 128));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EK, 144));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EK, 160));
  const one = v128.load(EK, 176);
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), one);
  // 2^n for n in [-126, 128]: n = 128 (x near 88.7) is split as 2^(n-1) * 2. n is a whole number
  // in [-126, 128] or NaN (x NaN, where y is NaN either way): the relaxed build's truncation (one
  // cvttps2dq; trunc_sat's NaN and overflow rules cost V8 five instructions) gives the same n1.
  const n1 = ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_trunc_f32x4_s(n) : i32x4.trunc_sat_f32x4_s(n);
  const half = i32x4.shr_s(n1, 1);
  const bias = i32x4.shr_u(one, 23); // 127, from the bits of 1.0f (no constant to rebuild)
  const e1 = i32x4.shl(i32x4.add(half, bias), 23);
  const e2 = i32x4.shl(i32x4.add(i32x4.sub(n1, half), bias), 23);
  const y = f32x4.mul(f32x4.mul(p, e1), e2);
  return v128.andnot(y, under);
}
