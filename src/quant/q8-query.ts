/**
 * q8_0 quantization of query rows (the `query: q8` cache option): each row is cut into blocks
 * of 32 elements along head_dim (a last block may be shorter), and each block is stored as
 * int8 codes c_i in [-127, 127] and one scale d = max|x_i| / 127, x_i ~ d * c_i. This is
 * ggml's q8_0 (ggml-quants.c quantize_row_q8_0_ref: d = amax / 127, c = round(x / d)), the
 * activation format llama.cpp's quantized dot products (ggml_vec_dot_q4_0_q8_0,
 * ggml_vec_dot_q8_0_q8_0) take, with one difference: the scale stays f32 (ggml stores it as
 * f16 because it writes the row to memory; a query lives only for one attend call).
 *
 * The attention of `query: q8` is exact attention with each query row replaced by its
 * dequantized form qHat_i = fround(c_i * d) (the semantics every executor implements; `ref`
 * computes it directly); executors with integer kernels use the codes themselves.
 *
 * Extra error per score (against the f32 query): |qHat_i - q_i| <= d_b / 2 (round to nearest;
 * plus one f32 rounding of c_i * d_b, <= 2^-24 |qHat_i|), so
 *   |score(qHat) - score(q)| <= scale * sum_b (d_b / 2) * sum_{i in b} |k_i|   (+ f32 rounding)
 * where k is the decoded key row: at most scale * max|q| / 254 * sum_i |k_i| (Q8_SCORE_BOUND).
 */

/** Elements per q8_0 block (ggml's QK8_0). */
export const Q8_BLOCK = 32;

/** Blocks of one row of head size d. */
export function q8Blocks(d: number): number {
  return Math.ceil(d / Q8_BLOCK);
}

/**
 * Quantize q (nRows, d) into codes (nRows, d) and scales (nRows, q8Blocks(d)), and write the
 * dequantized rows into qHat (nRows, d; may alias q). Returns false (and leaves qHat = q) when
 * some element is not finite: such rows have no q8 form, and the caller attends with q as given.
 */
export function quantizeQ8(
  q: Float32Array,
  nRows: number,
  d: number,
  codes: Int8Array,
  scales: Float32Array,
  qHat: Float32Array,
): boolean {
  const nB = q8Blocks(d);
  for (let i = 0; i < nRows * d; i++)
    if (!Number.isFinite(q[i]!)) {
      if (qHat !== q) qHat.set(q.subarray(0, nRows * d));
      return false;
    }
  for (let r = 0; r < nRows; r++)
    for (let b = 0; b < nB; b++) {
      const i0 = r * d + b * Q8_BLOCK;
      const i1 = r * d + Math.min(d, (b + 1) * Q8_BLOCK);
      let amax = 0;
      for (let i = i0; i < i1; i++) amax = Math.max(amax, Math.abs(q[i]!));
      // The scale is rounded to f32 first, and codes are taken against that rounded scale, so
      // that codes * scale is the value every executor (f32 or integer) computes with.
      const s = Math.fround(amax / 127);
      scales[r * nB + b] = s;
      for (let i = i0; i < i1; i++) {
        // round half away from zero (C roundf, as ggml); |x / s| <= 127 up to rounding: clamp.
        const x = s === 0 ? 0 : q[i]! / s;
        const c = Math.max(-127, Math.min(127, Math.sign(x) * Math.round(Math.abs(x))));
        codes[i] = c;
        qHat[i] = Math.fround(c * s);
      }
    }
  return true;
}

/**
 * The documented bound on |score(qHat) - score(q)| for one key row k (decoded, length d) and
 * one query row's block scales: scale * sum_b (d_b / 2 + 2^-24 * 127 * d_b) * sum_{i in b} |k_i|.
 */
export function q8ScoreBound(scales: Float32Array, k: Float32Array, d: number, scale: number): number {
  let t = 0;
  for (let b = 0; b < q8Blocks(d); b++) {
    let ka = 0;
    for (let i = b * Q8_BLOCK; i < Math.min(d, (b + 1) * Q8_BLOCK); i++) ka += Math.abs(k[i]!);
    t += scales[b]! * (0.5 + 127 * 2 ** -24) * ka;
  }
  return Math.abs(scale) * t;
}
