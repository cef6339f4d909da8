/**
 * Oracles for the cache's `query: q8` / `q8w` options (issue 15), written independently of
 * src/quant/q8-query.ts and src/quant/q8-weights.ts, in f64: a query row in its q8_0 form and
 * the causal softmax of one query row over decoded keys.
 */

/** q8_0 of one row: per block of 32, d = amax / 127 in f32, codes rounded half away from zero. */
export function q8Row(x: Float32Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    const end = Math.min(x.length, b + 32);
    let amax = 0;
    for (let i = b; i < end; i++) amax = Math.max(amax, Math.abs(x[i]!));
    const d = Math.fround(amax / 127);
    for (let i = b; i < end; i++) {
      const t = d === 0 ? 0 : x[i]! / d;
      const c = t < 0 ? -Math.round(-t) : Math.round(t);
      out[i] = Math.fround(Math.max(-127, Math.min(127, c)) * d);
    }
  }
  return out;
}

/**
 * Softmax weights (tokens) of query row q (headDim) over the keys kd (.., headDim) of rows
 * kvRow0 .. kvRow0 + tokens - 1, scaled by 1/sqrt(headDim); 0 where pos[j] > qPos (causal).
 */
export function causalSoftmax(
  q: ArrayLike<number>,
  kd: Float32Array,
  kvRow0: number,
  tokens: number,
  headDim: number,
  pos: Int32Array,
  qPos: number,
): Float64Array {
  const scale = 1 / Math.sqrt(headDim);
  const s = new Float64Array(tokens).fill(Number.NEGATIVE_INFINITY);
  let m = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < tokens; j++) {
    if (pos[j]! > qPos) continue;
    let dot = 0;
    for (let i = 0; i < headDim; i++) dot += q[i]! * kd[(kvRow0 + j) * headDim + i]!;
    s[j] = dot * scale;
    m = Math.max(m, s[j]!);
  }
  let sum = 0;
  for (let j = 0; j < tokens; j++) sum += s[j] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(s[j]! - m);
  return s.map((x) => (x === Number.NEGATIVE_INFINITY ? 0 : Math.exp(x - m) / sum));
}
