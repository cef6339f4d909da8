/**
 * How one encoded row sits in GPU memory: u32 words [payload | scales | zero-points], each part
 * the CPU layout's bytes (src/quant/types.ts RowLayout) padded to whole words, so that one
 * invocation owns a row's words and no two invocations write the same word. For the usual
 * head sizes (headDim a multiple of 16, an even number of groups) nothing is padded and the
 * payload words are byte-for-byte the CPU payload. Memory accounting stays the CPU's
 * (`CacheMemory` counts the codec's bytes, not this padding).
 */
import type { Codec, EncodedRows, RowLayout } from "../quant/types.ts";

export interface GpuRowLayout {
  cpu: RowLayout;
  headDim: number;
  payloadWords: number;
  scaleWords: number;
  zeroWords: number;
  /** Word offsets of the parts inside a row. */
  scaleOff: number;
  zeroOff: number;
  /** Words of one encoded row. */
  rowWords: number;
}

export function gpuRowLayout(codec: Codec, headDim: number): GpuRowLayout {
  const cpu = codec.layout(headDim);
  const payloadWords = Math.ceil(cpu.payloadBytes / 4);
  const scaleWords = Math.ceil(cpu.scalesPerRow / 2);
  const zeroWords = Math.ceil(cpu.zerosPerRow / 2);
  return {
    cpu,
    headDim,
    payloadWords,
    scaleWords,
    zeroWords,
    scaleOff: payloadWords,
    zeroOff: payloadWords + scaleWords,
    rowWords: payloadWords + scaleWords + zeroWords,
  };
}

/** GPU words (nRows rows at `stride` words each) -> CPU encoded rows [dstRow, dstRow + nRows). */
export function wordsToRows(
  L: GpuRowLayout,
  words: Uint32Array, // (nRows, stride)
  nRows: number,
  stride: number,
  dst: EncodedRows,
  dstRow: number,
): void {
  const { payloadBytes, scalesPerRow, zerosPerRow } = L.cpu;
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const halves = new Uint16Array(words.buffer, words.byteOffset, words.byteLength / 2);
  for (let r = 0; r < nRows; r++) {
    const w = r * stride;
    dst.payload.set(bytes.subarray(w * 4, w * 4 + payloadBytes), (dstRow + r) * payloadBytes);
    const s = (w + L.scaleOff) * 2;
    dst.scales.set(halves.subarray(s, s + scalesPerRow), (dstRow + r) * scalesPerRow);
    const z = (w + L.zeroOff) * 2;
    dst.zeros.set(halves.subarray(z, z + zerosPerRow), (dstRow + r) * zerosPerRow);
  }
}

/** CPU encoded rows [srcRow, srcRow + nRows) -> GPU words (nRows, stride). */
export function rowsToWords(
  L: GpuRowLayout,
  src: EncodedRows,
  srcRow: number,
  nRows: number,
  stride: number,
): Uint32Array {
  const { payloadBytes, scalesPerRow, zerosPerRow } = L.cpu;
  const words = new Uint32Array(nRows * stride);
  const bytes = new Uint8Array(words.buffer);
  const halves = new Uint16Array(words.buffer);
  for (let r = 0; r < nRows; r++) {
    const w = r * stride;
    const row = srcRow + r;
    bytes.set(src.payload.subarray(row * payloadBytes, (row + 1) * payloadBytes), w * 4);
    halves.set(src.scales.subarray(row * scalesPerRow, (row + 1) * scalesPerRow), (w + L.scaleOff) * 2);
    halves.set(src.zeros.subarray(row * zerosPerRow, (row + 1) * zerosPerRow), (w + L.zeroOff) * 2);
  }
  return words;
}
