/**
 * Codec types. A codec says how one token's key or value vector for one KV head (a "row" of
 * headDim elements) is stored. Token-axis codecs encode each row independently: a payload of
 * packed codes plus, for the integer codecs, one f16 scale (and one f16 zero-point) per group
 * of `group` consecutive elements along head_dim.
 */

export type CodecName =
  | "f32"
  | "f16"
  | "bf16"
  | "fp8-e4m3"
  | "int8"
  | "int4"
  | "int2"
  // ggml's block types (llama.cpp cache types), src/quant/ggml-*.ts
  | "q4_0"
  | "q4_1"
  | "q5_0"
  | "q5_1"
  | "q8_0"
  | "iq4_nl"
  // TurboQuant (rotation + Lloyd-Max codebook + one norm per row), src/quant/turboquant.ts
  | "turbo2"
  | "turbo2.5"
  | "turbo3"
  | "turbo3.5"
  | "turbo4"
  // TurboQuant_prod: (b-1)-bit TurboQuant + 1-bit QJL residual, src/quant/turboquant-qjl.ts
  | "turbo3-qjl"
  | "turbo4-qjl";

/** What a user writes (a codec name alone uses that codec's defaults). */
export interface CodecOptions {
  type: CodecName;
  /** Integer codecs: elements per scale group along head_dim, or "head" for one group per row. */
  group?: number | "head";
  /** Integer codecs: symmetric (scale only) or asymmetric (scale + zero-point). */
  symmetric?: boolean;
  /** Quantization axis: "token" (groups along head_dim). "channel" arrives with KIVI. */
  axis?: "token";
}

/** A codec with every option filled in (group still symbolic: resolved per headDim). */
export interface ResolvedCodecOptions {
  type: CodecName;
  group: number | "head";
  symmetric: boolean;
  axis: "token";
}

/** Byte layout of one encoded row, for a given headDim. */
export interface RowLayout {
  /** Bytes of packed codes per row. */
  payloadBytes: number;
  /** Number of groups per row (0 for the float codecs). */
  nGroups: number;
  /** Elements per group (the last group of a row may be shorter when headDim % group != 0). */
  groupSize: number;
  /** f16 scales per row (nGroups for integer codecs, else 0). */
  scalesPerRow: number;
  /** f16 zero-points per row (nGroups for asymmetric integer codecs, else 0). */
  zerosPerRow: number;
}

/**
 * Rows stored in a codec's encoded form. Views may be windows on a larger arena (the WASM
 * executor's linear memory); row r of the payload starts at byte r * payloadBytes.
 */
export interface EncodedRows {
  payload: Uint8Array; // (nRows, payloadBytes)
  scales: Uint16Array; // (nRows, scalesPerRow) f16 bits
  zeros: Uint16Array; // (nRows, zerosPerRow) f16 bits
}

/** What encoding saw: elements that were not finite and had to be replaced (see each codec). */
export interface EncodeStats {
  nonFinite: number;
  /** Elements whose magnitude exceeded what the format/scale can represent and were clipped. */
  saturated: number;
}

/** The TypeScript reference of a codec: the specification all executors reproduce. */
export interface Codec {
  readonly options: ResolvedCodecOptions;
  /** Payload bits per element (not counting scales/zero-points). */
  readonly payloadBits: number;
  layout(headDim: number): RowLayout;
  /** Encode nRows rows of src (nRows, headDim) into dst rows [dstRow, dstRow + nRows). */
  encode(
    src: Float32Array, // (nRows, headDim)
    nRows: number,
    headDim: number,
    dst: EncodedRows,
    dstRow: number,
  ): EncodeStats;
  /** Decode rows [srcRow, srcRow + nRows) of src into dst (nRows, headDim). */
  decode(
    src: EncodedRows,
    srcRow: number,
    nRows: number,
    headDim: number,
    dst: Float32Array, // (nRows, headDim)
  ): void;
  /**
   * Largest absolute round-trip error allowed for element i of a row, given the encoded row
   * (for integer codecs: half the group's decoded scale; for floats: half an ulp of the value).
   * Tests check |decode(encode(x)) - x| <= bound for every finite, in-range element.
   */
  errorBound(x: number, src: EncodedRows, row: number, element: number, headDim: number): number;
}

/** Allocate empty encoded storage for nRows rows (plain ArrayBuffers; executors may use arenas). */
export function allocRows(layout: RowLayout, nRows: number): EncodedRows {
  return {
    payload: new Uint8Array(layout.payloadBytes * nRows),
    scales: new Uint16Array(layout.scalesPerRow * nRows),
    zeros: new Uint16Array(layout.zerosPerRow * nRows),
  };
}

/** Bytes one encoded row occupies (payload + scales + zero-points). */
export function rowBytes(layout: RowLayout): number {
  return layout.payloadBytes + 2 * (layout.scalesPerRow + layout.zerosPerRow);
}
