/**
 * ggml's "legacy" block types q4_0, q4_1, q5_0, q5_1 and q8_0 (llama.cpp `-ctk`/`-ctv` cache
 * types), reproduced from ggml's reference quantizers (ggml/src/ggml-quants.c,
 * quantize_row_{q4_0,q4_1,q5_0,q5_1,q8_0}_ref) and block structs (ggml-common.h). Blocks of 32;
 * all arithmetic in f32; C's float -> int casts truncate toward zero (Math.trunc here).
 *
 *   q4_0  max = the signed element of largest |x| (the first one on ties); d = max / -8;
 *         id = d ? 1/d : 0; code = min(15, trunc(x*id + 8.5)); x' = (code - 8) * d      4.5 bits
 *         (16 levels -8..7: the block's extreme lands exactly on level -8)
 *   q4_1  min, max; d = (max - min) / 15; code = min(15, trunc((x - min)*id + 0.5));
 *         x' = code * d + m                                                               5.0 bits
 *   q5_0  as q4_0 with d = max / -16 and code = min(31, trunc(x*id + 16.5)); x' = (code-16)*d  5.5
 *   q5_1  as q4_1 with d = (max - min) / 31 and code = trunc((x - min)*id + 0.5) (no clamp) 6.0
 *   q8_0  amax = max |x|; d = amax / 127; code = roundf(x*id) (half away from zero); x' = code*d 8.5
 *
 * Byte layout of a block's payload (after d, m): the 4-bit types hold element j (j < 16) in
 * the low nibble of qs[j] and element j + 16 in its high nibble; q5_* put the fifth bits first
 * as a little-endian u32 qh (bit j = element j's fifth bit), then qs as above; q8_0 holds 32
 * two's-complement int8.
 */
import type { BlockFormat } from "./ggml-block.ts";

const fr = Math.fround;

/** The signed element of largest magnitude, the first on ties (ggml's `amax < fabsf(v)`). */
function signedMax(x: Float32Array): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[j]!);
    if (amax < a) {
      amax = a;
      max = x[j]!;
    }
  }
  return max;
}

function minMax(x: Float32Array): [number, number] {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < 32; j++) {
    const v = x[j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** The 32 four-bit codes of ggml's qs (element j low nibble of byte j, j + 16 its high nibble). */
export function nibbles(p: Uint8Array, at: number, out: Uint8Array): void {
  for (let j = 0; j < 16; j++) {
    const b = p[at + j]!;
    out[j] = b & 15;
    out[j + 16] = b >> 4;
  }
}

/** Store 32 codes (0..15) as ggml's qs: element j low nibble, element j + 16 high nibble. */
function putNibbles(codes: Uint8Array, p: Uint8Array, at: number): void {
  for (let j = 0; j < 16; j++) p[at + j] = (codes[j]! & 15) | ((codes[j + 16]! & 15) << 4);
}

/** Store 32 five-bit codes as ggml's q5 payload: qh (u32 LE of fifth bits), then qs. */
function putFiveBits(codes: Uint8Array, p: Uint8Array, at: number): void {
  let qh = 0;
  for (let j = 0; j < 32; j++) qh |= ((codes[j]! >> 4) & 1) << j;
  p[at] = qh & 0xff;
  p[at + 1] = (qh >>> 8) & 0xff;
  p[at + 2] = (qh >>> 16) & 0xff;
  p[at + 3] = (qh >>> 24) & 0xff;
  putNibbles(codes, p, at + 4);
}

/** The 32 five-bit codes of a q5 payload: qs nibbles with qh's bit j as bit 4 of element j. */
function fiveBits(p: Uint8Array, at: number, out: Uint8Array): void {
  const qh = (p[at]! | (p[at + 1]! << 8) | (p[at + 2]! << 16) | (p[at + 3]! << 24)) >>> 0;
  nibbles(p, at + 4, out);
  for (let j = 0; j < 32; j++) out[j]! |= ((qh >>> j) & 1) << 4;
}

const codes = new Uint8Array(32);

/** q4_0 / q5_0: d = max / -half, code = min(top, trunc(x*id + half + 0.5)). */
function symmetricBlock(half: number, x: Float32Array): number {
  const d = fr(signedMax(x) / -half);
  const id = d ? fr(1 / d) : 0;
  const top = 2 * half - 1;
  for (let j = 0; j < 32; j++) codes[j] = Math.min(top, Math.trunc(fr(fr(x[j]! * id) + (half + 0.5))));
  return d;
}

/** q4_1 / q5_1: d = (max - min) / levels, code = trunc((x - min)*id + 0.5) (clamped for q4_1). */
function minBlock(levels: number, clamp: boolean, x: Float32Array): { d: number; m: number } {
  const [min, max] = minMax(x);
  const d = fr(fr(max - min) / levels);
  const id = d ? fr(1 / d) : 0;
  for (let j = 0; j < 32; j++) {
    const c = Math.trunc(fr(fr(fr(x[j]! - min) * id) + 0.5));
    codes[j] = clamp ? Math.min(levels, c) : c;
  }
  return { d, m: min };
}

export const Q4_0: BlockFormat = {
  name: "q4_0",
  payloadBytes: 16,
  codeBits: 4,
  hasMin: false,
  codesAtStoredScale: true,
  nCodes: 16,
  quantize(x, p, at) {
    const d = symmetricBlock(8, x);
    putNibbles(codes, p, at);
    return { d, m: 0 };
  },
  codes: nibbles,
  level: (k) => k - 8,
};

export const Q4_1: BlockFormat = {
  name: "q4_1",
  payloadBytes: 16,
  codeBits: 4,
  hasMin: true,
  codesAtStoredScale: true,
  nCodes: 16,
  quantize(x, p, at) {
    const r = minBlock(15, true, x);
    putNibbles(codes, p, at);
    return r;
  },
  codes: nibbles,
  level: (k) => k,
};

export const Q5_0: BlockFormat = {
  name: "q5_0",
  payloadBytes: 20,
  codeBits: 5,
  hasMin: false,
  codesAtStoredScale: true,
  nCodes: 32,
  quantize(x, p, at) {
    const d = symmetricBlock(16, x);
    putFiveBits(codes, p, at);
    return { d, m: 0 };
  },
  codes: fiveBits,
  level: (k) => k - 16,
};

export const Q5_1: BlockFormat = {
  name: "q5_1",
  payloadBytes: 20,
  codeBits: 5,
  hasMin: true,
  codesAtStoredScale: true,
  nCodes: 32,
  quantize(x, p, at) {
    const r = minBlock(31, false, x);
    putFiveBits(codes, p, at);
    return r;
  },
  codes: fiveBits,
  level: (k) => k,
};

/** C's roundf: halves away from zero (Math.round sends -2.5 to -2). */
const roundAway = (v: number) => (v < 0 ? -Math.round(-v) : Math.round(v));

export const Q8_0: BlockFormat = {
  name: "q8_0",
  payloadBytes: 32,
  codeBits: 8,
  hasMin: false,
  codesAtStoredScale: true,
  nCodes: 256,
  quantize(x, p, at) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    for (let j = 0; j < 32; j++) p[at + j] = roundAway(fr(x[j]! * id)) & 0xff;
    return { d, m: 0 };
  },
  // The code is the stored byte; its level is the byte read as int8.
  codes: (p, at, out) => out.set(p.subarray(at, at + 32)),
  level: (k) => (k << 24) >> 24,
};
