/**
 * ggml's iq4_nl: blocks of 32, an f16 scale d and 16 bytes of 4-bit indices into a fixed
 * non-linear table of 16 int8 levels (4.5 bits per element). Source: ggml (llama.cpp)
 * ggml-common.h (block_iq4_nl, kvalues_iq4nl) and ggml-quants.c (quantize_iq4_nl ->
 * quantize_row_iq4_nl_impl with one block per super-block, no importance weights, ntry = 7),
 * reproduced from that published algorithm; iq4_nl was introduced in llama.cpp PR 5590.
 *
 * Quantizing one block x[0..32) (all f32):
 *   weights w_j = x_j^2; max = the signed element of largest |x| (first on ties);
 *   if max|x| < 1e-15: d = 0 and every index is that of 0 (index 8);
 *   d0 = max / 127 (so max lands on the table's -127 end), indices = nearest level to x_j / d0;
 *   d = sum(w q x) / sum(w q^2) over the chosen levels q (weighted least squares), best = d * sum(wqx);
 *   then for t = -7..7 the trial inverse scale (t - 127) / max: indices of the nearest levels,
 *   and if sum(wqx)^2 > best * sum(wq^2) it becomes d = sum(wqx)/sum(wq^2), best = d * sum(wqx);
 *   finally the stored indices are the nearest levels to x_j * (1/d) with the chosen f32 d,
 *   and d is stored rounded to nearest in f16. x' = table[index] * d.
 * "Nearest level" is ggml's best_index_int8: clamp to the table's ends, bisect, and take the
 * lower neighbour only when strictly nearer.
 */
import type { BlockFormat } from "./ggml-block.ts";
import { nibbles } from "./ggml-legacy.ts";

const fr = Math.fround;

/** ggml's kvalues_iq4nl. */
export const IQ4_NL_TABLE = [
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
] as const;
const V = IQ4_NL_TABLE;
const GROUP_MAX_EPS = fr(1e-15);
const NTRY = 7;

/** Index of the table level nearest to x (ggml's best_index_int8 over 16 levels). */
export function nearestLevel(x: number): number {
  if (x <= V[0]) return 0;
  if (x >= V[15]) return 15;
  let lo = 0;
  let hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < V[mid]!) hi = mid;
    else lo = mid;
  }
  return fr(x - V[hi - 1]!) < fr(V[hi]! - x) ? hi - 1 : hi;
}

const idx = new Uint8Array(32);

/** Weighted sums of the nearest levels at inverse scale id: [sum w q x, sum w q^2]. */
function sums(x: Float32Array, id: number): [number, number] {
  let sumqx = 0;
  let sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const w = fr(x[j]! * x[j]!);
    const q = V[nearestLevel(fr(id * x[j]!))]!;
    const wq = fr(w * q);
    sumqx = fr(sumqx + fr(wq * x[j]!));
    sumq2 = fr(sumq2 + fr(wq * q));
  }
  return [sumqx, sumq2];
}

/** The f32 scale ggml's search picks for one block. */
export function iq4nlScale(x: Float32Array): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[j]!);
    if (a > amax) {
      amax = a;
      max = x[j]!;
    }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  const d0 = fr(-max / V[0]);
  let [sumqx, sumq2] = sums(x, fr(1 / d0));
  let d = fr(sumqx / sumq2);
  let best = fr(d * sumqx);
  for (let t = -NTRY; t <= NTRY; t++) {
    [sumqx, sumq2] = sums(x, fr((t + V[0]) / max));
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      d = fr(sumqx / sumq2);
      best = fr(d * sumqx);
    }
  }
  return d;
}

export const IQ4_NL: BlockFormat = {
  name: "iq4_nl",
  payloadBytes: 16,
  codeBits: 4,
  hasMin: false,
  nCodes: 16,
  quantize(x, p, at) {
    const d = iq4nlScale(x);
    const id = d ? fr(1 / d) : 0;
    for (let j = 0; j < 32; j++) idx[j] = nearestLevel(fr(id * x[j]!));
    for (let j = 0; j < 16; j++) p[at + j] = idx[j]! | (idx[j + 16]! << 4);
    return { d, m: 0 };
  },
  codes: nibbles,
  level: (k) => V[k]!,
};
