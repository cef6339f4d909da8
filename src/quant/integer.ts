/**
 * Shared machinery of the integer codecs (int8, int4, int2): groups of `group` consecutive
 * elements along head_dim, one f16 scale per group and, when asymmetric, one f16 zero-point.
 * This file is the bit-exact specification that the WASM and WGSL kernels reproduce.
 *
 * All arithmetic is f32 (Math.fround at each step), rounding is half-to-even.
 *
 * Symmetric, b bits (qmax = 2^(b-1) - 1):
 *   amax  = max |x| over the group's finite elements
 *   s     = f16 rounded UP from amax / qmax (so qmax * s >= amax: nothing clips)
 *   inv   = s > 0 ? 1 / s : 0
 *   q     = clamp(nearest(x * inv), -qmax, qmax), stored offset-binary: u = q + 2^(b-1)
 *   x'    = (u - 2^(b-1)) * s
 * Asymmetric, b bits (levels = 2^b - 1), min/max over finite elements:
 *   m     = f16 rounded DOWN from min (the zero-point field holds m itself, as KIVI does)
 *   s     = f16 rounded UP from (max - m) / levels
 *   q     = clamp(nearest((x - m) * inv), 0, levels)
 *   x'    = q * s + m
 * Round-trip error is at most s/2 per element (plus f32 rounding), for elements within f16 range.
 *
 * Non-finite inputs: NaN, +Inf and -Inf are left out of the group's min/max (so one bad value
 * does not destroy its neighbours), then encoded as 0 (NaN), the group max (+Inf) and the
 * group min (-Inf), i.e. clamped to the group's finite range, and counted in `nonFinite`.
 * A group whose elements are all non-finite encodes as all zeros with s = 0.
 * A group with max > min (or amax > 0) never gets s = 0: a scale that underflows (f32 subnormal
 * inputs) is raised to the smallest f16 subnormal 2^-24 (bits 0x0001).
 * Zero-range groups: s = 0 and inv = 0 (no division by zero); an all-zero group decodes to
 * exactly 0; an asymmetric constant group decodes exactly to its value when that value is an
 * f16 (otherwise to the f16 at or below it, error < s/2 is then vacuous: error <= f16 ulp).
 * Huge magnitudes: scales saturate at 65504 (the largest f16); finite elements beyond
 * qmax * 65504 are clipped and counted in `saturated` (±Inf count only in `nonFinite`).
 *
 * Packing (little-endian within a byte): element i of a row is at bit (i * b) % 8 of byte
 * floor(i * b / 8): int4 holds element 2j in the low nibble of byte j and 2j+1 in the high
 * nibble; int2 holds element 4j+k in bits 2k..2k+1 of byte j. Rows are padded to whole bytes.
 */
import { F16_MAX, f16ToF32, f32ToF16Down, f32ToF16Up, roundHalfEven } from "./half.ts";
import type { Codec, EncodedRows, EncodeStats, ResolvedCodecOptions, RowLayout } from "./types.ts";

const fr = Math.fround;

export type IntBits = 8 | 4 | 2;

/** Resolve the group option against a head size. */
export function groupSizeFor(group: number | "head", headDim: number): number {
  return group === "head" ? headDim : Math.min(group, headDim);
}

export function intLayout(
  bits: IntBits,
  group: number | "head",
  symmetric: boolean,
  headDim: number,
): RowLayout {
  const groupSize = groupSizeFor(group, headDim);
  const nGroups = Math.ceil(headDim / groupSize);
  return {
    payloadBytes: Math.ceil((headDim * bits) / 8),
    nGroups,
    groupSize,
    scalesPerRow: nGroups,
    zerosPerRow: symmetric ? 0 : nGroups,
  };
}

/** Write code u (0 <= u < 2^bits) of element i into a row's payload starting at byte `base`. */
function putCode(payload: Uint8Array, base: number, bits: IntBits, i: number, u: number): void {
  if (bits === 8) {
    payload[base + i] = u;
    return;
  }
  const bit = i * bits;
  const byte = base + (bit >> 3);
  const shift = bit & 7;
  const mask = ((1 << bits) - 1) << shift;
  payload[byte] = (payload[byte]! & ~mask) | (u << shift);
}

function getCode(payload: Uint8Array, base: number, bits: IntBits, i: number): number {
  if (bits === 8) return payload[base + i]!;
  const bit = i * bits;
  return (payload[base + (bit >> 3)]! >> (bit & 7)) & ((1 << bits) - 1);
}

export function makeIntCodec(options: ResolvedCodecOptions, bits: IntBits): Codec {
  const symmetric = options.symmetric;
  const qmax = (1 << (bits - 1)) - 1; // symmetric code range [-qmax, qmax]
  const offset = 1 << (bits - 1); // offset-binary shift for symmetric codes
  const levels = (1 << bits) - 1; // asymmetric code range [0, levels]
  const layout = (headDim: number) => intLayout(bits, options.group, symmetric, headDim);

  return {
    options,
    payloadBits: bits,
    layout,
    encode(src, nRows, headDim, dst: EncodedRows, dstRow): EncodeStats {
      const L = layout(headDim);
      const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
      for (let r = 0; r < nRows; r++) {
        const row = dstRow + r;
        const pBase = row * L.payloadBytes;
        for (let g = 0; g < L.nGroups; g++) {
          const start = g * L.groupSize;
          const end = Math.min(start + L.groupSize, headDim);
          let lo = Number.POSITIVE_INFINITY;
          let hi = Number.NEGATIVE_INFINITY;
          for (let i = start; i < end; i++) {
            const x = src[r * headDim + i]!;
            if (Number.isFinite(x)) {
              if (x < lo) lo = x;
              if (x > hi) hi = x;
            } else stats.nonFinite++;
          }
          if (lo > hi) lo = hi = 0; // every element non-finite
          let s: number;
          let m = 0;
          if (symmetric) {
            const amax = Math.max(Math.abs(lo), Math.abs(hi));
            const sBits = atLeastTiny(f32ToF16Up(fr(amax / qmax)), amax > 0);
            dst.scales[row * L.scalesPerRow + g] = sBits;
            s = f16ToF32(sBits);
            if (amax > qmax * F16_MAX) stats.saturated += countAbove(src, r * headDim, start, end, qmax * s);
          } else {
            const mBits = f32ToF16Down(lo);
            m = f16ToF32(mBits);
            const sBits = atLeastTiny(f32ToF16Up(fr(fr(hi - m) / levels)), hi > m);
            dst.scales[row * L.scalesPerRow + g] = sBits;
            dst.zeros[row * L.zerosPerRow + g] = mBits;
            s = f16ToF32(sBits);
            if (lo < -F16_MAX || fr(hi - m) > levels * F16_MAX)
              stats.saturated += countOutside(src, r * headDim, start, end, m, fr(m + levels * s));
          }
          const inv = s > 0 ? fr(1 / s) : 0;
          for (let i = start; i < end; i++) {
            let x = src[r * headDim + i]!;
            if (Number.isNaN(x)) x = 0;
            else if (x === Number.POSITIVE_INFINITY) x = hi;
            else if (x === Number.NEGATIVE_INFINITY) x = lo;
            let u: number;
            if (symmetric) {
              const q = Math.min(qmax, Math.max(-qmax, roundHalfEven(fr(x * inv))));
              u = q + offset;
            } else {
              u = Math.min(levels, Math.max(0, roundHalfEven(fr(fr(x - m) * inv))));
            }
            putCode(dst.payload, pBase, bits, i, u);
          }
        }
      }
      return stats;
    },
    decode(src, srcRow, nRows, headDim, dst) {
      const L = layout(headDim);
      for (let r = 0; r < nRows; r++) {
        const row = srcRow + r;
        const pBase = row * L.payloadBytes;
        for (let g = 0; g < L.nGroups; g++) {
          const s = f16ToF32(src.scales[row * L.scalesPerRow + g]!);
          const m = symmetric ? 0 : f16ToF32(src.zeros[row * L.zerosPerRow + g]!);
          const end = Math.min((g + 1) * L.groupSize, headDim);
          for (let i = g * L.groupSize; i < end; i++) {
            const u = getCode(src.payload, pBase, bits, i);
            dst[r * headDim + i] = symmetric ? fr((u - offset) * s) : fr(fr(u * s) + m);
          }
        }
      }
    },
    errorBound(_x, src, row, element, headDim) {
      const L = layout(headDim);
      const g = Math.floor(element / L.groupSize);
      const s = f16ToF32(src.scales[row * L.scalesPerRow + g]!);
      // Half a step, plus f32 rounding of the decode arithmetic (a few ulps of the group's magnitude).
      const mag = symmetric ? qmax * s : Math.abs(f16ToF32(src.zeros[row * L.zerosPerRow + g]!)) + levels * s;
      return s / 2 + 4 * 2 ** -24 * mag;
    },
  };
}

/**
 * A group with a nonzero range needs a nonzero scale. With f32 subnormal inputs (|x| < ~1e-38)
 * the f32 quotient range / levels underflows to 0, which would decode every element as 0 (or m)
 * with an error above the s/2 bound; the smallest f16 subnormal (2^-24, bits 0x0001) covers it.
 */
function atLeastTiny(sBits: number, nonzeroRange: boolean): number {
  return sBits === 0 && nonzeroRange ? 0x0001 : sBits;
}

/** Finite elements beyond ±limit. ±Inf are counted once, as non-finite, not also as saturated. */
function countAbove(src: Float32Array, base: number, start: number, end: number, limit: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const x = src[base + i]!;
    if (Number.isFinite(x) && Math.abs(x) > limit) n++;
  }
  return n;
}

function countOutside(
  src: Float32Array,
  base: number,
  start: number,
  end: number,
  lo: number,
  hi: number,
): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const x = src[base + i]!;
    if (Number.isFinite(x) && (x < lo || x > hi)) n++;
  }
  return n;
}
