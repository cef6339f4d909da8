/**
 * Channel-axis integer quantization of keys (KIVI, Liu et al. 2024, arXiv:2402.02750;
 * KVQuant, Hooper et al. 2024, arXiv:2401.18079): a group is G tokens of one KV head, and
 * each channel (element of head_dim) gets its own f16 scale (and zero-point) over those G
 * tokens. Keys have a few outlier channels with a large, stable magnitude; a per-channel grid
 * confines their error to their own channel, where a per-token grid would spend its range on
 * them and crush every other channel of the token.
 *
 * The arithmetic is that of the token-axis integer codecs (integer.ts), transposed:
 *   symmetric:  s = f16 up(amax / qmax), q = clamp(nearest(x / s), -qmax, qmax), u = q + 2^(b-1)
 *   asymmetric: m = f16 down(min), s = f16 up((max - m) / levels), u = clamp(nearest((x - m) / s))
 * with f32 rounding at each step, the same rule for tiny ranges (a scale that underflows is
 * raised to the smallest f16 subnormal 2^-24), and the same non-finite handling (left out of min/max;
 * NaN -> 0, ±Inf -> the channel's finite max/min).
 *
 * Codes are packed per token (one row of ceil(headDim * bits / 8) bytes per token, element i
 * at bit (i * bits) % 8 of byte floor(i * bits / 8)), so a token can leave a group (eviction)
 * without touching the other tokens' codes: the group's per-channel scales stay valid.
 */
import { f16ToF32, f32ToF16Down, f32ToF16Up, roundHalfEven } from "./half.ts";
import type { EncodeStats } from "./types.ts";

const fr = Math.fround;

export type ChannelBits = 8 | 4 | 2;

export interface ChannelQuantOptions {
  bits: ChannelBits;
  symmetric: boolean;
}

/** Bytes of packed codes per token row. */
export function channelCodeBytes(bits: ChannelBits, headDim: number): number {
  return Math.ceil((headDim * bits) / 8);
}

/** A channel with a nonzero range never gets scale 0 (f32 subnormal inputs would decode to 0). */
function atLeastTiny(sBits: number, nonzeroRange: boolean): number {
  return sBits === 0 && nonzeroRange ? 1 : sBits;
}

function putCode(codes: Uint8Array, base: number, bits: ChannelBits, i: number, u: number): void {
  if (bits === 8) {
    codes[base + i] = u;
    return;
  }
  const bit = i * bits;
  const byte = base + (bit >> 3);
  const shift = bit & 7;
  const mask = ((1 << bits) - 1) << shift;
  codes[byte] = (codes[byte]! & ~mask) | (u << shift);
}

function getCode(codes: Uint8Array, base: number, bits: ChannelBits, i: number): number {
  if (bits === 8) return codes[base + i]!;
  const bit = i * bits;
  return (codes[base + (bit >> 3)]! >> (bit & 7)) & ((1 << bits) - 1);
}

/**
 * Quantize a group of nTok tokens per channel.
 * src: (nTok, headDim) f32; codes: token t's row is written at byte codeOffsets[t];
 * scales, zeros: (headDim) f16 bits written at [sOff, sOff + headDim) (zeros unused when symmetric).
 */
export function quantizeChannelGroup(
  src: Float32Array, // (nTok, headDim)
  nTok: number,
  headDim: number,
  opts: ChannelQuantOptions,
  codes: Uint8Array,
  codeOffsets: ArrayLike<number>, // (nTok)
  scales: Uint16Array,
  zeros: Uint16Array,
  sOff: number,
): EncodeStats {
  const { bits, symmetric } = opts;
  const qmax = (1 << (bits - 1)) - 1;
  const offset = 1 << (bits - 1);
  const levels = (1 << bits) - 1;
  const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
  for (let c = 0; c < headDim; c++) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let t = 0; t < nTok; t++) {
      const x = src[t * headDim + c]!;
      if (Number.isFinite(x)) {
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      } else stats.nonFinite++;
    }
    if (lo > hi) lo = hi = 0;
    let s: number;
    let m = 0;
    if (symmetric) {
      const amax = Math.max(Math.abs(lo), Math.abs(hi));
      const sBits = atLeastTiny(f32ToF16Up(fr(amax / qmax)), amax > 0);
      scales[sOff + c] = sBits;
      s = f16ToF32(sBits);
    } else {
      const mBits = f32ToF16Down(lo);
      m = f16ToF32(mBits);
      const sBits = atLeastTiny(f32ToF16Up(fr(fr(hi - m) / levels)), hi > m);
      scales[sOff + c] = sBits;
      zeros[sOff + c] = mBits;
      s = f16ToF32(sBits);
    }
    const inv = s > 0 ? fr(1 / s) : 0;
    for (let t = 0; t < nTok; t++) {
      let x = src[t * headDim + c]!;
      if (Number.isNaN(x)) x = 0;
      else if (x === Number.POSITIVE_INFINITY) x = hi;
      else if (x === Number.NEGATIVE_INFINITY) x = lo;
      let u: number;
      if (symmetric) {
        const q = roundHalfEven(fr(x * inv));
        if (Math.abs(q) > qmax) stats.saturated++;
        u = Math.min(qmax, Math.max(-qmax, q)) + offset;
      } else {
        const q = roundHalfEven(fr(fr(x - m) * inv));
        if (q > levels || q < 0) stats.saturated++;
        u = Math.min(levels, Math.max(0, q));
      }
      putCode(codes, codeOffsets[t]!, bits, c, u);
    }
  }
  return stats;
}

/** Decode one token row whose codes start at byte codeOff, with its group's scales at sOff. */
export function dequantizeChannelRow(
  codes: Uint8Array,
  codeOff: number,
  scales: Uint16Array,
  zeros: Uint16Array,
  sOff: number,
  headDim: number,
  opts: ChannelQuantOptions,
  dst: Float32Array, // (headDim) at dstOff
  dstOff: number,
): void {
  const { bits, symmetric } = opts;
  const offset = 1 << (bits - 1);
  for (let c = 0; c < headDim; c++) {
    const u = getCode(codes, codeOff, bits, c);
    const s = f16ToF32(scales[sOff + c]!);
    dst[dstOff + c] = symmetric ? fr((u - offset) * s) : fr(fr(u * s) + f16ToF32(zeros[sOff + c]!));
  }
}

/** Largest round-trip error of channel c of a group: half a step plus f32 decode rounding. */
export function channelErrorBound(
  scales: Uint16Array,
  zeros: Uint16Array,
  sOff: number,
  c: number,
  opts: ChannelQuantOptions,
): number {
  const s = f16ToF32(scales[sOff + c]!);
  const levels = (1 << opts.bits) - 1;
  const mag = opts.symmetric ? levels * s : Math.abs(f16ToF32(zeros[sOff + c]!)) + levels * s;
  return s / 2 + 4 * 2 ** -24 * mag;
}
