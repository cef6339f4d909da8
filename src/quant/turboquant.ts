/**
 * TurboQuant's MSE quantizer (Zandieh, Daliri, Hadian, Mirrokni 2025, "TurboQuant: Online
 * Vector Quantization with Near-optimal Distortion Rate", arXiv:2504.19874, Algorithm 1):
 * rotate the vector randomly, store its norm once, and quantize each coordinate of the rotated
 * unit vector with the Lloyd-Max codebook of that coordinate's known density
 * (turboquant-codebook.ts). The rotation is not part of this row codec: it is the cache's
 * `rotation` option (src/quant/hadamard.ts), which these codecs turn on by default (registry
 * row `rotation: "hadamard"`), so that queries are rotated alike (keys) or the output rotated
 * back (values) exactly as for every other codec.
 *
 * Rotation: the paper draws a uniformly random orthogonal matrix (QR of a Gaussian matrix, d²
 * stored floats, d² flops per row). kvlab uses the randomized Hadamard transform H D / sqrt(d)
 * with seeded signs instead (QuaRot's and llama.cpp's choice): matrix-free, d log d, the same
 * transform as every other codec's rotation. Its coordinates follow the codebook's density only
 * approximately (exactly for Gaussian inputs; a vector with one spike becomes ±|x|/sqrt(d)
 * everywhere), which the measured distortion in the tests and results shows.
 *
 * Row layout, d = head_dim:
 *   payload  the codes, bit-packed little-endian in element order (element i at bit offset
 *            sum of the widths before it), rows padded to whole bytes;
 *   scales   one f16: the row's L2 norm n, rounded to nearest (the only side information);
 *   zeros    none.
 * Bits per element: (payload bits + 16) / d, e.g. turbo3 at d = 64: (192 + 16) / 64 = 3.25.
 *
 * Fractional rates (turbo2.5, turbo3.5): the paper's 2.5/3.5-bit KV settings split the channels
 * into 32 "outlier" and 96 regular channels of a 128-wide head, found by calibration, and run
 * two independent instances at b + 1 and b bits; its stated "(32 x 3 + 96 x 2) / 128 = 2.5"
 * is in fact 2.25 bits. kvlab has no calibration pass and quantizes after one rotation, where
 * every coordinate has the same density and no channel is an outlier; so its fractional codecs
 * give the first ceil(d/2) rotated coordinates b + 1 bits and the rest b bits: the stated
 * rate exactly (2.5 / 3.5 payload bits per element), not the paper's outlier split.
 *
 * Encode, row by row (f32 arithmetic where noted):
 *   n     = sqrt(sum x_i²) over finite x_i (f64), stored n^ = f16 nearest; n^ = 0: codes of u = 0
 *   u_i   = fround(x_i / n^)
 *   code  = number of codebook boundaries <= u_i (nearest centroid, ties upward; NaN as u = 0,
 *           i.e. the innermost positive centroid, +Inf the top code, -Inf the bottom one, all
 *           counted in nonFinite); a zero row (n^ = 0) codes u = 0 and decodes to +0
 * Decode: x'_i = fround(n^ · c[code_i]), c the f32 centroids.
 * A norm beyond the f16 range (65504) is stored as 65504 and the row's finite elements count as
 * saturated. Codes clipped to the outermost centroid are the codebook's normal behaviour, not
 * saturation.
 */
import { ConfigError } from "../errors.ts";
import { F16_MAX, f16ToF32, f32ToF16 } from "./half.ts";
import { type Codebook, turboCodebook } from "./turboquant-codebook.ts";
import type { Codec, CodecName, EncodedRows, EncodeStats, ResolvedCodecOptions, RowLayout } from "./types.ts";

const fr = Math.fround;

/** Payload bits per coordinate of each TurboQuant codec: [low, high]; high goes to ceil(d/2) coordinates. */
export const TURBO_BITS = {
  turbo2: [2, 2],
  "turbo2.5": [2, 3],
  turbo3: [3, 3],
  "turbo3.5": [3, 4],
  turbo4: [4, 4],
} as const satisfies Partial<Record<CodecName, readonly [number, number]>>;

export type TurboName = keyof typeof TURBO_BITS;

/** Per-row plan for one head size: each coordinate's width, bit offset and codebook. */
interface RowPlan {
  layout: RowLayout;
  width: Uint8Array; // (d) bits of each coordinate
  offset: Uint32Array; // (d) bit offset of each coordinate in the row
  book: Codebook[]; // (d) codebook of each coordinate (shared objects)
}

function planFor(name: TurboName, d: number): RowPlan {
  const [lo, hi] = TURBO_BITS[name];
  const nHi = Math.ceil(d / 2);
  const width = new Uint8Array(d);
  const offset = new Uint32Array(d);
  const book: Codebook[] = [];
  let bit = 0;
  for (let i = 0; i < d; i++) {
    width[i] = i < nHi ? hi : lo;
    offset[i] = bit;
    bit += width[i]!;
    book.push(turboCodebook(d, width[i]!));
  }
  return {
    layout: { payloadBytes: Math.ceil(bit / 8), nGroups: 1, groupSize: d, scalesPerRow: 1, zerosPerRow: 0 },
    width,
    offset,
    book,
  };
}

function putBits(p: Uint8Array, base: number, bit: number, width: number, v: number): void {
  for (let k = 0; k < width; k++, bit++) {
    const at = base + (bit >> 3);
    const m = 1 << (bit & 7);
    p[at] = (v >> k) & 1 ? p[at]! | m : p[at]! & ~m;
  }
}

function getBits(p: Uint8Array, base: number, bit: number, width: number): number {
  let v = 0;
  for (let k = 0; k < width; k++, bit++) v |= ((p[base + (bit >> 3)]! >> (bit & 7)) & 1) << k;
  return v;
}

/** Index of the nearest centroid: boundaries at or below u (NaN counts as 0). */
function codeOf(book: Codebook, u: number): number {
  const b = book.boundaries;
  if (Number.isNaN(u)) u = 0;
  let c = 0;
  while (c < b.length && b[c]! <= u) c++;
  return c;
}

export function makeTurboCodec(
  name: TurboName,
  options: { group?: unknown; symmetric?: unknown } = {},
): Codec {
  if (options.group !== undefined && options.group !== "head")
    throw new ConfigError(
      "codec.group",
      `${name} stores one norm per row: it takes no group option (remove it)`,
    );
  const plans = new Map<number, RowPlan>();
  const plan = (d: number) => {
    let p = plans.get(d);
    if (!p) plans.set(d, (p = planFor(name, d)));
    return p;
  };
  const resolved: ResolvedCodecOptions = { type: name, group: "head", symmetric: true, axis: "token" };
  const [lo, hi] = TURBO_BITS[name];
  return {
    options: resolved,
    payloadBits: (lo + hi) / 2,
    layout: (d) => plan(d).layout,
    encode(src, nRows, d, dst: EncodedRows, dstRow): EncodeStats {
      const P = plan(d);
      const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
      for (let r = 0; r < nRows; r++) {
        const row = dstRow + r;
        let ss = 0;
        let finite = 0;
        for (let i = 0; i < d; i++) {
          const x = src[r * d + i]!;
          if (Number.isFinite(x)) {
            ss += x * x;
            finite++;
          } else stats.nonFinite++;
        }
        const n = Math.sqrt(ss);
        let nBits = f32ToF16(n);
        if (n > F16_MAX || (nBits & 0x7c00) === 0x7c00) {
          nBits = f32ToF16(F16_MAX);
          stats.saturated += finite;
        }
        dst.scales[row] = nBits;
        const nHat = f16ToF32(nBits);
        const base = row * P.layout.payloadBytes;
        for (let i = 0; i < d; i++) {
          const x = src[r * d + i]!;
          const u = nHat > 0 ? fr(x / nHat) : Number.isFinite(x) ? 0 : x;
          putBits(dst.payload, base, P.offset[i]!, P.width[i]!, codeOf(P.book[i]!, u));
        }
      }
      return stats;
    },
    decode(src, srcRow, nRows, d, dst) {
      const P = plan(d);
      for (let r = 0; r < nRows; r++) {
        const row = srcRow + r;
        const nHat = f16ToF32(src.scales[row]!);
        const base = row * P.layout.payloadBytes;
        for (let i = 0; i < d; i++)
          dst[r * d + i] = fr(
            nHat * P.book[i]!.centroids[getBits(src.payload, base, P.offset[i]!, P.width[i]!)]!,
          );
      }
    },
    errorBound(x, src, row, element, d) {
      // Nearest centroid to u = x / n^ in the element's codebook: half the gap of the two
      // centroids around u, or u's distance past the outermost one; times n^, plus f32 rounding.
      const nHat = f16ToF32(src.scales[row]!);
      if (nHat === 0) return Math.abs(x);
      const c = plan(d).book[element]!.centroids;
      const u = x / nHat;
      let gap: number;
      if (u <= c[0]!) gap = c[0]! - u;
      else if (u >= c[c.length - 1]!) gap = u - c[c.length - 1]!;
      else {
        let j = 0;
        while (c[j + 1]! < u) j++;
        gap = (c[j + 1]! - c[j]!) / 2;
      }
      return nHat * gap + 4 * 2 ** -24 * (Math.abs(x) + nHat);
    },
  };
}
