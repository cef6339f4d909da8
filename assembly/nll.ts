// Negative log-likelihood of target ids under rows of logits: -log softmax(row)[target], in f64
// like the TS reference (src/eval/perplexity.ts nllOf, which uses Math.exp in double), so the
// perplexity protocols give the same totals on every executor (differences ~1e-15 relative,
// from the lane-wise summation order only).

const LOG2E: f64 = 1.4426950408889634;
const LN2_HI: f64 = 6.93147180369123816490e-1; // ln 2 split so n * LN2_HI is exact for |n| < 2^11
const LN2_LO: f64 = 1.90821492927058770002e-10;
const UNDER: f64 = -708.0; // exp below this is < 2^-1021: 0 next to the sum's term exp(0) = 1

// exp(x) for x in [UNDER, 0] (2 lanes): x = n ln2 + r with |r| <= ln2/2, Taylor series of degree
// 13 for e^r (truncation < 1e-17 relative), times 2^n through the exponent bits.
// @ts-ignore: decorator
@inline
function exp2x(x: v128): v128 {
  const under = f64x2.lt(x, f64x2.splat(UNDER));
  x = f64x2.max(x, f64x2.splat(UNDER));
  const n = f64x2.nearest(f64x2.mul(x, f64x2.splat(LOG2E)));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(n, f64x2.splat(LN2_HI))), f64x2.mul(n, f64x2.splat(LN2_LO)));
  let p = f64x2.splat(1.0 / 6227020800.0); // 1/13!
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 479001600.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 39916800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 3628800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 362880.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 40320.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 5040.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 720.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 120.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 24.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 6.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(0.5));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  // n in [-1022, 0]: add n to the exponent field of p (p in [0.7, 1.42], so the result stays normal).
  const e = i64x2.shl(i64x2.extend_low_i32x4_s(i32x4.trunc_sat_f64x2_s_zero(n)), 52);
  return v128.andnot(i64x2.add(p, e), under);
}

/**
 * out[r] (f64) = log(sum_i exp(row_i - max)) + max - row[target[r]] for rows r in [r0, r1) of
 * logits (nRows, vocab) f32; targets (nRows) i32.
 */
export function nllRows(out: usize, logits: usize, targets: usize, vocab: i32, r0: i32, r1: i32): void {
  const v4 = vocab & ~3;
  for (let r = r0; r < r1; r++) {
    const row = logits + ((<usize>r * <usize>vocab) << 2);
    let m4 = f32x4.splat(-Infinity);
    for (let i = 0; i < v4; i += 4) m4 = f32x4.max(m4, v128.load(row + (<usize>i << 2)));
    let mx = max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
    for (let i = v4; i < vocab; i++) mx = max(mx, load<f32>(row + (<usize>i << 2)));
    const mxd = <f64>mx;
    const m2 = f64x2.splat(mxd);
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    for (let i = 0; i < v4; i += 4) {
      const v = v128.load(row + (<usize>i << 2));
      s0 = f64x2.add(s0, exp2x(f64x2.sub(f64x2.promote_low_f32x4(v), m2)));
      s1 = f64x2.add(s1, exp2x(f64x2.sub(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), m2)));
    }
    const s = f64x2.add(s0, s1);
    let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
    for (let i = v4; i < vocab; i++) {
      const x = f64x2.splat(<f64>load<f32>(row + (<usize>i << 2)) - mxd);
      sum += f64x2.extract_lane(exp2x(x), 0);
    }
    const tgt = load<i32>(targets + (<usize>r << 2));
    const lt = <f64>load<f32>(row + (<usize>tgt << 2));
    store<f64>(out + (<usize>r << 3), Math.log(sum) + mxd - lt);
  }
}
