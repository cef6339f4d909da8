/**
 * ggml's iq4_nl: blocks of 32, an f16 scale d and 16 bytes of 4-bit indices into a fixed
 * non-linear table of 16 int8 levels (4.5 bits per element). Source: ggml (llama.cpp)
 * ggml-common.h (block_iq4_nl, kvalues_iq4nl) and ggml-quants.c quantize_row_iq4_nl_ref, which
 * is what llama.cpp's CPU backend writes into an iq4_nl KV cache (ggml-cpu's from_float for
 * IQ4_NL calls it); iq4_nl was introduced in llama.cpp PR 5590. Reproduced from that published
 * algorithm: quantize_row_iq4_nl_impl with one block per super-block, no importance weights and
 * ntry = -1, i.e. no scale search (the model-file quantizer quantize_iq4_nl uses ntry = 7 and
 * tries 15 more scales; the KV cache does not).
 *
 * Quantizing one block x[0..32) (all f32):
 *   max = the signed element of largest |x| (the first on ties);
 *   if max|x| < 1e-15: d = 0 (the indices are then whatever ggml's scratch held; they decode to 0);
 *   d0 = max / -127 (the table's first level: max lands on index 0), id = 1 / d0;
 *   index_j = the level nearest to id * x_j;
 *   d = sum(w q x) / sum(w q^2) over the chosen levels q with weights w = x^2 (one weighted
 *   least-squares step), stored rounded to nearest in f16; the indices stay those of d0.
 *   x' = table[index] * d.
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

/**
 * One block: the indices (into idx) and the f32 scale ggml's reference picks. Index of a
 * near-zero block (max|x| < 1e-15): 8 (level 1, the nearest to 0); ggml leaves them unset.
 */
export function iq4nlBlock(x: Float32Array, idx: Uint8Array): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[j]!);
    if (a > amax) {
      amax = a;
      max = x[j]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    idx.fill(8);
    return 0;
  }
  const id = fr(1 / fr(max / V[0]));
  let sumqx = 0;
  let sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const l = nearestLevel(fr(id * x[j]!));
    idx[j] = l;
    const q = V[l]!;
    const wq = fr(fr(x[j]! * x[j]!) * q);
    sumqx = fr(sumqx + fr(wq * x[j]!));
    sumq2 = fr(sumq2 + fr(wq * q));
  }
  return fr(sumqx / sumq2);
}

const idx = new Uint8Array(32);

export const IQ4_NL: BlockFormat = {
  name: "iq4_nl",
  payloadBytes: 16,
  codeBits: 4,
  hasMin: false,
  codesAtStoredScale: false,
  nCodes: 16,
  quantize(x, p, at) {
    const d = iq4nlBlock(x, idx);
    for (let j = 0; j < 16; j++) p[at + j] = idx[j]! | (idx[j + 16]! << 4);
    return { d, m: 0 };
  },
  codes: nibbles,
  level: (k) => V[k]!,
};
