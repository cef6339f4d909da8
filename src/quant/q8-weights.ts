/**
 * The second half of issue 15's lever 1 (cache option `query: q8w`): softmax weights in q8_0
 * form per block of 32 slots, so that the weighted sum over int8 / int4 value codes is an
 * integer dot product over slots, as llama.cpp's quantized flash attention does for V
 * (ggml-cpu ops.cpp, ggml_compute_forward_flash_attn_ext_f16: V rows dotted against the
 * softmax row converted to V's vec_dot_type). This file is the definition; `ref` computes it
 * directly (src/kernels/ref.ts), assembly/attend-q8w.ts with i32x4.dot_i16x8_s.
 *
 * Applies to attention whose value rows are token-axis int8 or int4 (integer.ts: code u, f16
 * scale s and, asymmetric, zero-point m per group g of G elements; v_i = s (u_i - off) with
 * off = 2^(bits-1) when symmetric, v_i = s u_i + m when not). Every other value codec keeps
 * f32 weights (q8w is then exactly q8), and so do caches with channel-axis keys (KIVI: their
 * attention is the executor's channelAttend, which takes no weight option). For one query row with softmax weights p_j over the
 * call's slots j (storage order, masked slots p_j = 0), value group g and element i in g:
 *
 *   a_jg    = p_j * s_jg                           (the weight times the slot's group scale)
 *   D_Bg    = max_{j in B} a_jg / 127              B = slots [32t, 32t + 32) of the call
 *   c_jg    = nearest(a_jg / D_Bg), ties to even   (0 when D_Bg = 0; 0 <= c_jg <= 127)
 *   out_i   = sum_B D_Bg * sum_{j in B} c_jg (u_ji - off)   [+ sum_j p_j m_jg, asymmetric]
 *
 * The zero-point term keeps the f32 weights (it is one multiply-add per slot and group, not
 * per element). Codes are the same for any positive multiple of the weights (D scales along),
 * so an executor may quantize unnormalised exp(s_j - max) and normalise after, or split the
 * slots into parts at multiples of 32 and merge (flash-decoding).
 *
 * Extra error against f32 weights (Q8W bound): |a_jg - D_Bg c_jg| <= D_Bg / 2, so
 *   |out_i(q8w) - out_i(q8)| <= sum_B (D_Bg / 2) * sum_{j in B} |u_ji - off|.
 * Executors computing p_j in f32 may round a weight within float error of a half-integer
 * code the other way from `ref` (f64 weights): each such code moves out_i by D_Bg |u_ji - off|
 * (tests allow exactly that, for the codes within a stated distance of a tie).
 */
import { f16ToF32, roundHalfEven } from "./half.ts";
import type { Codec, EncodedRows } from "./types.ts";

/** Slots per weight block. */
export const Q8W_BLOCK = 32;

/** The int value rows q8w applies to: bits, symmetric, group size. */
export interface Q8wValues {
  bits: 8 | 4;
  symmetric: boolean;
  group: number;
  nGroups: number;
  payloadBytes: number;
}

/** Whether weights are quantized for this value codec (token-axis int8 / int4), and its layout. */
export function q8wValues(codec: Codec, headDim: number): Q8wValues | null {
  const t = codec.options.type;
  if ((t !== "int8" && t !== "int4") || codec.options.axis !== "token") return null;
  const L = codec.layout(headDim);
  return {
    bits: t === "int8" ? 8 : 4,
    symmetric: codec.options.symmetric,
    group: L.groupSize,
    nGroups: L.nGroups,
    payloadBytes: L.payloadBytes,
  };
}

/** Code u of element i of slot j (int8: a byte; int4: low nibble = even element). */
function codeOf(v: EncodedRows, L: Q8wValues, j: number, i: number): number {
  const base = j * L.payloadBytes;
  if (L.bits === 8) return v.payload[base + i]!;
  return (v.payload[base + (i >> 1)]! >> ((i & 1) * 4)) & 15;
}

/**
 * acc (headDim) += the q8w weighted sum of one query row's weights p (nSlots; 0 where masked)
 * over the value rows v, in f64. When `ties` is given, ties[i] += sum over codes with
 * |a / D - (k + 1/2)| < tieEps of D * |u_ji - off| (what a code rounded the other way moves
 * out_i by); when `bound` is given, bound[i] += the Q8W bound's term.
 */
export function q8wWeightedSum(
  L: Q8wValues,
  v: EncodedRows,
  headDim: number,
  p: ArrayLike<number>,
  nSlots: number,
  acc: Float64Array,
  accOff = 0,
  extra?: { ties?: Float64Array; tieEps?: number; bound?: Float64Array },
): void {
  const off = L.symmetric ? 1 << (L.bits - 1) : 0;
  const a = new Float64Array(Q8W_BLOCK);
  const c = new Float64Array(Q8W_BLOCK);
  for (let j0 = 0; j0 < nSlots; j0 += Q8W_BLOCK) {
    const n = Math.min(Q8W_BLOCK, nSlots - j0);
    for (let g = 0; g < L.nGroups; g++) {
      let max = 0;
      for (let t = 0; t < n; t++) {
        a[t] = p[j0 + t]! * f16ToF32(v.scales[(j0 + t) * L.nGroups + g]!);
        if (a[t]! > max) max = a[t]!;
      }
      const D = max / 127;
      for (let t = 0; t < n; t++) c[t] = D === 0 ? 0 : roundHalfEven(a[t]! / D);
      const i1 = Math.min((g + 1) * L.group, headDim);
      for (let i = g * L.group; i < i1; i++) {
        let dot = 0;
        let tie = 0;
        let mag = 0;
        for (let t = 0; t < n; t++) {
          const u = codeOf(v, L, j0 + t, i) - off;
          dot += c[t]! * u;
          if (extra) {
            mag += Math.abs(u);
            if (extra.ties && D > 0) {
              const x = a[t]! / D;
              if (Math.abs(x - Math.floor(x) - 0.5) < (extra.tieEps ?? 0)) tie += Math.abs(u);
            }
          }
        }
        acc[accOff + i] += D * dot;
        if (extra?.ties) extra.ties[i] += D * tie;
        if (extra?.bound) extra.bound[i] += (D / 2) * mag;
      }
      if (!L.symmetric) {
        let z = 0;
        for (let t = 0; t < n; t++) z += p[j0 + t]! * f16ToF32(v.zeros[(j0 + t) * L.nGroups + g]!);
        for (let i = g * L.group; i < i1; i++) acc[accOff + i] += z;
      }
    }
  }
}
