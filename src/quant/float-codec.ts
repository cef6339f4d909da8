/**
 * Shared machinery of the float codecs (f32, f16, bf16, fp8-e4m3): one code per element, no
 * scales. Non-finite values are stored as the format allows (f16/bf16/f32 keep NaN and ±Inf;
 * fp8-e4m3 has no Inf and saturates it to ±448), and counted.
 */
import type { Codec, EncodedRows, EncodeStats, ResolvedCodecOptions, RowLayout } from "./types.ts";

export interface FloatFormat {
  name: "f32" | "f16" | "bf16" | "fp8-e4m3";
  bytes: 1 | 2 | 4;
  /** f32 value -> code (an unsigned integer of `bytes` bytes). */
  encode(x: number): number;
  /** code -> f32 value. */
  decode(code: number): number;
  /** Largest finite magnitude (values beyond it are saturated, or overflow to Inf for IEEE formats). */
  max: number;
  /** Mantissa bits (for the half-ulp error bound). */
  mantissaBits: number;
  /** Smallest normal exponent (below it the format is subnormal with fixed ulp). */
  minExponent: number;
}

export function makeFloatCodec(fmt: FloatFormat): Codec {
  const options: ResolvedCodecOptions = { type: fmt.name, group: "head", symmetric: true, axis: "token" };
  const layout = (headDim: number): RowLayout => ({
    payloadBytes: fmt.bytes * headDim,
    nGroups: 0,
    groupSize: headDim,
    scalesPerRow: 0,
    zerosPerRow: 0,
  });
  return {
    options,
    payloadBits: 8 * fmt.bytes,
    layout,
    encode(src, nRows, headDim, dst, dstRow): EncodeStats {
      const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
      const view = new DataView(dst.payload.buffer, dst.payload.byteOffset, dst.payload.byteLength);
      const rowB = fmt.bytes * headDim;
      for (let r = 0; r < nRows; r++) {
        for (let i = 0; i < headDim; i++) {
          const x = src[r * headDim + i]!;
          if (!Number.isFinite(x)) stats.nonFinite++;
          else if (Math.abs(x) > fmt.max) stats.saturated++;
          const off = (dstRow + r) * rowB + i * fmt.bytes;
          const code = fmt.encode(x);
          if (fmt.bytes === 4) view.setUint32(off, code, true);
          else if (fmt.bytes === 2) view.setUint16(off, code, true);
          else view.setUint8(off, code);
        }
      }
      return stats;
    },
    decode(src: EncodedRows, srcRow, nRows, headDim, dst) {
      const view = new DataView(src.payload.buffer, src.payload.byteOffset, src.payload.byteLength);
      const rowB = fmt.bytes * headDim;
      for (let r = 0; r < nRows; r++) {
        for (let i = 0; i < headDim; i++) {
          const off = (srcRow + r) * rowB + i * fmt.bytes;
          const code =
            fmt.bytes === 4
              ? view.getUint32(off, true)
              : fmt.bytes === 2
                ? view.getUint16(off, true)
                : view.getUint8(off);
          dst[r * headDim + i] = fmt.decode(code);
        }
      }
    },
    errorBound(x) {
      if (fmt.name === "f32") return 0;
      // Half an ulp of x's binade: round-to-nearest never errs by more. Math.log2 can land one
      // binade off next to powers of two, so the binade is corrected exactly before use.
      const ax = Math.abs(x);
      let e = fmt.minExponent; // subnormal range: fixed spacing 2^(minExponent - mantissaBits)
      if (ax >= 2 ** fmt.minExponent) {
        e = Math.floor(Math.log2(ax));
        if (2 ** e > ax) e--;
        else if (2 ** (e + 1) <= ax) e++;
      }
      return 2 ** (e - fmt.mantissaBits - 1);
    },
  };
}
