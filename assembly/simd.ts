// Small SIMD helpers shared by the kernel files (inlined at every use).

/** Sum of the four f32 lanes of v, as (l0 + l2) + (l1 + l3): every kernel sums in this order. */
// @ts-ignore: decorator
@inline
export function hsum(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(s, i32x4.shuffle(s, s, 1, 0, 3, 2)), 0);
}

/**
 * (hsum(a), hsum(b), hsum(c), hsum(e)) in one vector, each lane summed in hsum's order
 * ((l0 + l2) + (l1 + l3)), so the same bits: 6 shuffles (unpck / shufps, one instruction each)
 * and 3 adds for the four sums, where four hsum calls and lane inserts take about 20.
 */
// @ts-ignore: decorator
@inline
export function hsum4(a: v128, b: v128, c: v128, e: v128): v128 {
  const u = f32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7)); // a0+a2, a1+a3, b0+b2, b1+b3
  const v = f32x4.add(i32x4.shuffle(c, e, 0, 1, 4, 5), i32x4.shuffle(c, e, 2, 3, 6, 7));
  return f32x4.add(i32x4.shuffle(u, v, 0, 2, 4, 6), i32x4.shuffle(u, v, 1, 3, 5, 7));
}

/**
 * a * b + c per f32 lane: one fused multiply-add (f32x4.relaxed_madd, rounded once) in the
 * relaxed-SIMD build (build/kvlab-relaxed.wasm), multiply then add (rounded twice) in the
 * baseline build. Either is within the kernels' tolerances against ref; the builds differ in
 * the last bits.
 */
// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
