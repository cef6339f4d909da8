/**
 * ggml's block-quantized types as kvlab codecs: the shared frame. Every ggml KV cache type
 * quantizes a row in blocks of 32 consecutive elements, each with an f16 scale `d` (and, for
 * the "_1" types, an f16 minimum `m`) and a fixed number of payload bytes. The per-type
 * quantizers are ggml-legacy.ts (q4_0, q4_1, q5_0, q5_1, q8_0) and ggml-iq4nl.ts (iq4_nl).
 * Source: ggml (llama.cpp), ggml/src/ggml-common.h (block structs) and ggml-quants.c
 * (quantize_row_*_ref, dequantize_row_*); reproduced from their published definitions.
 *
 * Storage in kvlab's EncodedRows (one row = one token's head vector of headDim elements):
 *   payload  (nRows, nBlocks * payloadBytes)  block b's bytes exactly as ggml's struct holds them
 *                                             after d/m (qs; qh then qs for q5_*; int8 qs for q8_0)
 *   scales   (nRows, nBlocks)                 d of each block, f16 bits (ggml's `d`)
 *   zeros    (nRows, nBlocks)                 m of each block, f16 bits (q4_1, q5_1 only)
 * so a block's ggml bytes are d, [m,] payload: bits per element = 8 * (2 [+ 2] + payloadBytes) / 32.
 *
 * The quantizers compute codes with the f32 `d` (as ggml does) and store `d` (and `m`) rounded
 * to nearest in f16 (GGML_FP32_TO_FP16); all arithmetic is f32 (Math.fround at each step).
 *
 * What ggml leaves undefined, kvlab defines (and counts, like integer.ts): non-finite inputs
 * are replaced before quantizing (NaN -> 0, +Inf -> the block's finite max, -Inf -> its finite
 * min; a block with no finite element becomes zeros) and counted in `nonFinite`; a `d` or `m`
 * beyond f16 range is saturated to ±65504 (ggml would store Inf) and the elements the saturated
 * grid cannot reach are counted in `saturated`. For finite inputs within f16 range the codes
 * and scales are ggml's, bit for bit.
 *
 * A row must hold whole blocks: headDim % 32 == 0 (llama.cpp refuses other head sizes too).
 */
import { ConfigError } from "../errors.ts";
import { f16ToF32, f32ToF16 } from "./half.ts";
import type { Codec, EncodedRows, EncodeStats, ResolvedCodecOptions, RowLayout } from "./types.ts";

const fr = Math.fround;

/** ggml's block size for every type kvlab stores (QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK4_NL). */
export const GGML_BLOCK = 32;

export type GgmlType = "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q8_0" | "iq4_nl";

/** One ggml block type: how a block of 32 f32 values becomes (d, m, payload) and back. */
export interface BlockFormat {
  name: GgmlType;
  /** Payload bytes per block (after d and m). */
  payloadBytes: number;
  /** Bits per code (for `payloadBits`). */
  codeBits: number;
  /** Whether the block stores a minimum m (q4_1, q5_1). */
  hasMin: boolean;
  /**
   * Quantize one block of 32 finite f32 values (x[0..32)) into payload[at .. at + payloadBytes),
   * returning the f32 d (and m; 0 without a minimum) that ggml then rounds to f16.
   */
  quantize(x: Float32Array, payload: Uint8Array, at: number): { d: number; m: number };
  /** The 32 codes (level indices) of the block at payload[at..] into out[0..32). */
  codes(payload: Uint8Array, at: number, out: Uint8Array): void;
  /** Level value of code k in units of d (decoded x = level(k) * d + m). */
  level(k: number): number;
  /** Number of codes (16, 32 or 256). */
  nCodes: number;
  /**
   * Whether each code is the level nearest to x at the stored d (q4_0 .. q8_0: up to f16
   * rounding and clipping at the grid's ends), or was chosen at another scale (iq4_nl: at
   * max / -127, then d refitted), which only the code itself says.
   */
  codesAtStoredScale: boolean;
}

/** The block count of a row, refusing head sizes that do not hold whole blocks. */
export function blocksPerRow(type: GgmlType, headDim: number, path = "cache.codec"): number {
  if (!Number.isInteger(headDim) || headDim < GGML_BLOCK || headDim % GGML_BLOCK !== 0)
    throw new ConfigError(
      path,
      `${type} stores ggml blocks of ${GGML_BLOCK} elements, but this model's head_dim is ${headDim} ` +
        `(llama.cpp refuses it too); use an integer codec whose group fits the head, e.g. ` +
        `{ type: int4, group: ${largestGroup(headDim)}, symmetric: true }, or f16`,
    );
  return headDim / GGML_BLOCK;
}

/** Refuse, naming `path`, a ggml codec whose blocks do not tile this head size (others pass). */
export function assertBlocksFit(codec: Codec, headDim: number, path: string): void {
  const t = codec.options.type;
  if (t === "q4_0" || t === "q4_1" || t === "q5_0" || t === "q5_1" || t === "q8_0" || t === "iq4_nl")
    blocksPerRow(t, headDim, path);
}

function largestGroup(headDim: number): number | "head" {
  for (const g of [16, 8]) if (headDim % g === 0) return g;
  return "head";
}

export function blockLayout(f: BlockFormat, headDim: number): RowLayout {
  const n = blocksPerRow(f.name, headDim);
  return {
    payloadBytes: n * f.payloadBytes,
    nGroups: n,
    groupSize: GGML_BLOCK,
    scalesPerRow: n,
    zerosPerRow: f.hasMin ? n : 0,
  };
}

/** f32 -> f16 bits rounded to nearest (GGML_FP32_TO_FP16), saturating at ±65504 instead of Inf. */
function toF16Saturating(x: number): { bits: number; saturated: boolean } {
  const bits = f32ToF16(x);
  if ((bits & 0x7c00) === 0x7c00) return { bits: (bits & 0x8000) | 0x7bff, saturated: true };
  return { bits, saturated: false };
}

/** Half the f16 spacing at |h| (the most f16 rounding can move a value of that size). */
function halfF16Ulp(h: number): number {
  const e = Math.max(-14, Math.floor(Math.log2(Math.max(Math.abs(h), 2 ** -14))));
  return 2 ** (e - 11);
}

/** Every f16 bit pattern's value (decode reads d and m per block, per row the attention visits). */
let F16_VALUES: Float32Array | undefined;
function f16Values(): Float32Array {
  if (!F16_VALUES) {
    F16_VALUES = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) F16_VALUES[h] = f16ToF32(h);
  }
  return F16_VALUES;
}

export function makeBlockCodec(f: BlockFormat, options: ResolvedCodecOptions): Codec {
  // Layouts by head size (the reference attention decodes one row at a time: no allocation per row).
  const layouts = new Map<number, RowLayout>();
  const layout = (headDim: number) => {
    let L = layouts.get(headDim);
    if (!L) layouts.set(headDim, (L = blockLayout(f, headDim)));
    return L;
  };
  const block = new Float32Array(GGML_BLOCK);
  const codes = new Uint8Array(GGML_BLOCK);
  const levels = Float64Array.from({ length: f.nCodes }, (_, k) => f.level(k));
  let minLevel = 0;
  let topLevel = 0;
  for (let k = 0; k < f.nCodes; k++) {
    minLevel = Math.min(minLevel, f.level(k));
    topLevel = Math.max(topLevel, f.level(k));
  }
  const maxLevel = Math.max(-minLevel, topLevel);

  return {
    options,
    payloadBits: f.codeBits,
    layout,
    encode(src, nRows, headDim, dst: EncodedRows, dstRow): EncodeStats {
      const L = layout(headDim);
      const stats: EncodeStats = { nonFinite: 0, saturated: 0 };
      for (let r = 0; r < nRows; r++) {
        const row = dstRow + r;
        for (let b = 0; b < L.nGroups; b++) {
          const base = r * headDim + b * GGML_BLOCK;
          stats.nonFinite += sanitize(src, base, block);
          const { d, m } = f.quantize(block, dst.payload, row * L.payloadBytes + b * f.payloadBytes);
          const dh = toF16Saturating(d);
          dst.scales[row * L.scalesPerRow + b] = dh.bits;
          let mh = { bits: 0, saturated: false };
          if (f.hasMin) {
            mh = toF16Saturating(m);
            dst.zeros[row * L.zerosPerRow + b] = mh.bits;
          }
          if (dh.saturated || mh.saturated) {
            // Elements the saturated grid cannot reach (beyond its extreme levels).
            const ds = f16ToF32(dh.bits);
            const ms = f.hasMin ? f16ToF32(mh.bits) : 0;
            const a = fr(minLevel * ds + ms);
            const z = fr(topLevel * ds + ms);
            const lo = Math.min(a, z);
            const hi = Math.max(a, z);
            for (let j = 0; j < GGML_BLOCK; j++) {
              const x = src[base + j]!;
              if (Number.isFinite(x) && (x < lo || x > hi)) stats.saturated++;
            }
          }
        }
      }
      return stats;
    },
    decode(src, srcRow, nRows, headDim, dst) {
      const L = layout(headDim);
      const half = f16Values();
      for (let r = 0; r < nRows; r++) {
        const row = srcRow + r;
        for (let b = 0; b < L.nGroups; b++) {
          const d = half[src.scales[row * L.scalesPerRow + b]!]!;
          const m = f.hasMin ? half[src.zeros[row * L.zerosPerRow + b]!]! : 0;
          f.codes(src.payload, row * L.payloadBytes + b * f.payloadBytes, codes);
          const out = r * headDim + b * GGML_BLOCK;
          if (f.hasMin)
            for (let j = 0; j < GGML_BLOCK; j++) dst[out + j] = fr(fr(levels[codes[j]!]! * d) + m);
          else for (let j = 0; j < GGML_BLOCK; j++) dst[out + j] = fr(levels[codes[j]!]! * d);
        }
      }
    },
    errorBound(x, src, row, element, headDim) {
      // Codes chosen on the stored scale: the distance from x to the nearest level of the
      // stored (f16) grid, plus twice what rounding d and m to f16 moved the grid the codes were
      // chosen on (the f32 grid), plus f32 rounding of the decode arithmetic. Codes chosen on
      // another scale (iq4_nl): the error of the stored code itself, plus f32 rounding (the
      // test bounds that error from the definition).
      const L = layout(headDim);
      const b = Math.floor(element / GGML_BLOCK);
      const d = f16ToF32(src.scales[row * L.scalesPerRow + b]!);
      const m = f.hasMin ? f16ToF32(src.zeros[row * L.zerosPerRow + b]!) : 0;
      let near = Number.POSITIVE_INFINITY;
      if (f.codesAtStoredScale)
        for (let k = 0; k < f.nCodes; k++) near = Math.min(near, Math.abs(x - (f.level(k) * d + m)));
      else {
        f.codes(src.payload, row * L.payloadBytes + b * f.payloadBytes, codes);
        near = Math.abs(x - (f.level(codes[element % GGML_BLOCK]!) * d + m));
      }
      const shift = f.codesAtStoredScale ? maxLevel * halfF16Ulp(d) + (f.hasMin ? halfF16Ulp(m) : 0) : 0;
      const mag = maxLevel * Math.abs(d) + Math.abs(m);
      return near + 2 * shift + 4 * 2 ** -24 * mag;
    },
  };
}

/**
 * Copy a block into `out` with non-finite values replaced (NaN -> 0, +Inf -> the finite max,
 * -Inf -> the finite min); returns how many were replaced.
 */
function sanitize(src: Float32Array, base: number, out: Float32Array): number {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let bad = 0;
  for (let j = 0; j < GGML_BLOCK; j++) {
    const x = src[base + j]!;
    if (Number.isFinite(x)) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    } else bad++;
  }
  if (bad === 0) {
    out.set(src.subarray(base, base + GGML_BLOCK));
    return 0;
  }
  if (lo > hi) lo = hi = 0;
  for (let j = 0; j < GGML_BLOCK; j++) {
    const x = src[base + j]!;
    out[j] = Number.isNaN(x)
      ? 0
      : x === Number.POSITIVE_INFINITY
        ? hi
        : x === Number.NEGATIVE_INFINITY
          ? lo
          : x;
  }
  return bad;
}
