// Vectorised exp for f32x4 (Cephes expf: range reduction by ln 2 split in two constants, degree-6
// polynomial, scaling by 2^n through the exponent bits). About 1 f32 ulp from the exact value.
// Inputs below -87.3 give 0 (as exp does, give or take the subnormal range); above 88.7 give
// exp(88.7) (callers only pass x <= 0 for softmax, and -g for SiLU where the result then divides).

// @ts-ignore: decorator
@inline
export function exp4(x: v128): v128 {
  const under = f32x4.lt(x, f32x4.splat(-87.33654));
  // pmin / pmax (one minps / maxps each) rather than min / max, whose NaN and -0 rules cost V8
  // several instructions apiece: against these constants they agree for every x but NaN, which
  // stays NaN (its payload may differ); 4-7% of a whole attention call (9q/3kv/64, 4K).
  x = f32x4.pmin(x, f32x4.splat(88.72283));
  x = f32x4.pmax(x, f32x4.splat(-87.33654));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1));
  // 2^n for n in [-126, 128]: n = 128 (x near 88.7) is split as 2^(n-1) * 2.
  const n1 = i32x4.trunc_sat_f32x4_s(n);
  const half = i32x4.shr_s(n1, 1);
  const e1 = i32x4.shl(i32x4.add(half, i32x4.splat(127)), 23);
  const e2 = i32x4.shl(i32x4.add(i32x4.sub(n1, half), i32x4.splat(127)), 23);
  const y = f32x4.mul(f32x4.mul(p, e1), e2);
  return v128.andnot(y, under);
}
