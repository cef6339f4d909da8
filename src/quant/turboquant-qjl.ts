/**
 * TurboQuant's inner-product quantizer (Zandieh et al. 2025, arXiv:2504.19874, Algorithm 2,
 * "TurboQuant_prod"): a (b-1)-bit TurboQuant MSE code of the (rotated) row, then the 1-bit
 * Quantized Johnson-Lindenstrauss transform of its residual (QJL, Zandieh, Daliri, Han 2024,
 * arXiv:2406.03482): r = x - x_mse, store sign(S r) (d bits) and γ = ‖r‖ (f16), decode
 *
 *   x' = x_mse + γ · sqrt(π/2) / d · S^T sign(S r),
 *
 * with S a d x d matrix of i.i.d. N(0, 1) entries. E_S[<q, x'>] = <q, x> for every q: the
 * scores of keys stored this way are unbiased (the MSE code alone shrinks them), at the price
 * of variance. That is why it is offered for keys; values need a small error, not an unbiased one.
 *
 * S is drawn from kvlab's PRNG (src/rng.ts, Box-Muller) with a seed fixed per head size, so a
 * row codec needs no seed and every cache decodes the same codes identically; it is d² floats
 * computed once per head size. (The paper draws S at random per quantizer instance.)
 *
 * Row layout, d = head_dim, b = the codec's total bits per coordinate:
 *   payload  the (b-1)-bit MSE codes as in turboquant.ts (ceil(d(b-1)/8) bytes), then the d
 *            sign bits (bit set = +1), little-endian, ceil(d/8) bytes;
 *   scales   two f16: the row norm n (as turboquant.ts) and the residual norm γ (nearest);
 *   zeros    none.
 * Bits per element: b + 32/d plus padding, e.g. turbo3-qjl at d = 64: (128 + 64 + 32) / 64 = 3.5.
 */

import { mulberry32 } from "./../rng.ts";
import { F16_MAX, f16ToF32, f32ToF16 } from "./half.ts";
import { makeTurboCodec } from "./turboquant.ts";
import type { Codec, CodecName, EncodedRows, EncodeStats, ResolvedCodecOptions, RowLayout } from "./types.ts";

const fr = Math.fround;

/** Total bits per coordinate (MSE bits + 1) of each TurboQuant_prod codec and its MSE codec. */
export const TURBO_QJL = {
  "turbo3-qjl": { bits: 3, mse: "turbo2" },
  "turbo4-qjl": { bits: 4, mse: "turbo3" },
} as const satisfies Partial<Record<CodecName, { bits: number; mse: CodecName }>>;

export type TurboQjlName = keyof typeof TURBO_QJL;

const projections = new Map<number, Float32Array>();

/** The QJL matrix S for head size d: (d, d) row-major, i.i.d. N(0, 1), seeded by d. */
export function qjlMatrix(d: number): Float32Array {
  let s = projections.get(d);
  if (!s) {
    const rnd = mulberry32(0x9b1d ^ Math.imul(d, 0x2c1b3c6d));
    s = new Float32Array(d * d);
    for (let i = 0; i < d * d; i++)
      s[i] = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    projections.set(d, s);
  }
  return s;
}

export function makeTurboQjlCodec(name: TurboQjlName): Codec {
  const { bits, mse: mseName } = TURBO_QJL[name];
  const mse = makeTurboCodec(mseName);
  const resolved: ResolvedCodecOptions = { type: name, group: "head", symmetric: true, axis: "token" };
  const layout = (d: number): RowLayout => ({
    payloadBytes: mse.layout(d).payloadBytes + Math.ceil(d / 8),
    nGroups: 1,
    groupSize: d,
    scalesPerRow: 2,
    zerosPerRow: 0,
  });
  // One-row views of the MSE part (its payload prefix and its norm), for encode/decode.
  const mseRow = (rows: EncodedRows, row: number, d: number): EncodedRows => {
    const L = layout(d);
    const mb = mse.layout(d).payloadBytes;
    return {
      payload: rows.payload.subarray(row * L.payloadBytes, row * L.payloadBytes + mb),
      scales: rows.scales.subarray(row * 2, row * 2 + 1),
      zeros: rows.zeros.subarray(0, 0),
    };
  };
  /** x_mse (d) and the QJL term (d) of one encoded row, summed into dst. */
  const decodeRow = (rows: EncodedRows, row: number, d: number, dst: Float32Array, off: number) => {
    const L = layout(d);
    const S = qjlMatrix(d);
    mse.decode(mseRow(rows, row, d), 0, 1, d, dst.subarray(off, off + d));
    const gamma = f16ToF32(rows.scales[row * 2 + 1]!);
    if (gamma === 0) return;
    const base = row * L.payloadBytes + mse.layout(d).payloadBytes;
    const c = (gamma * Math.sqrt(Math.PI / 2)) / d;
    for (let i = 0; i < d; i++) {
      let acc = 0;
      for (let j = 0; j < d; j++) {
        const sign = (rows.payload[base + (j >> 3)]! >> (j & 7)) & 1 ? 1 : -1;
        acc += S[j * d + i]! * sign; // (S^T s)_i
      }
      dst[off + i] = fr(dst[off + i]! + fr(c * acc));
    }
  };
  return {
    options: resolved,
    payloadBits: bits,
    layout,
    encode(src, nRows, d, dst, dstRow): EncodeStats {
      const L = layout(d);
      const S = qjlMatrix(d);
      const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
      const xm = new Float32Array(d);
      const r = new Float64Array(d);
      for (let k = 0; k < nRows; k++) {
        const row = dstRow + k;
        const x = src.subarray(k * d, (k + 1) * d);
        const s = mse.encode(x, 1, d, mseRow(dst, row, d), 0);
        stats.nonFinite += s.nonFinite;
        stats.saturated += s.saturated;
        mse.decode(mseRow(dst, row, d), 0, 1, d, xm);
        // Residual of the finite elements (non-finite ones carry no residual information).
        let g = 0;
        for (let i = 0; i < d; i++) {
          r[i] = Number.isFinite(x[i]!) ? x[i]! - xm[i]! : 0;
          g += r[i]! * r[i]!;
        }
        g = Math.sqrt(g);
        let gBits = f32ToF16(g);
        if (g > F16_MAX || (gBits & 0x7c00) === 0x7c00) gBits = f32ToF16(F16_MAX);
        dst.scales[row * 2 + 1] = gBits;
        const base = row * L.payloadBytes + mse.layout(d).payloadBytes;
        for (let j = 0; j < Math.ceil(d / 8); j++) dst.payload[base + j] = 0;
        for (let j = 0; j < d; j++) {
          let p = 0;
          for (let i = 0; i < d; i++) p += S[j * d + i]! * r[i]!;
          if (p >= 0) dst.payload[base + (j >> 3)]! |= 1 << (j & 7);
        }
      }
      return stats;
    },
    decode(src, srcRow, nRows, d, dst) {
      for (let k = 0; k < nRows; k++) decodeRow(src, srcRow + k, d, dst, k * d);
    },
    errorBound(x, src, row, element, d) {
      // |x' - x| <= |x_mse - x| + |QJL term|, the latter at most γ sqrt(π/2)/d Σ_j |S_ji|.
      const S = qjlMatrix(d);
      let col = 0;
      for (let j = 0; j < d; j++) col += Math.abs(S[j * d + element]!);
      const gamma = f16ToF32(src.scales[row * 2 + 1]!);
      const one = mseRow(src, row, d);
      return (
        mse.errorBound(x, one, 0, element, d) + ((gamma * Math.sqrt(Math.PI / 2)) / d) * col * (1 + 2 ** -20)
      );
    },
  };
}
