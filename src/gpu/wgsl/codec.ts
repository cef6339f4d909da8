/**
 * WGSL for one codec at one head size: a row encoder (the whole row in one invocation, so the
 * row's words have a single writer) and an element decoder. Constants (bits, group size,
 * head size) are baked into the source, so each (codec, headDim) is its own pipeline.
 *
 * The arithmetic mirrors src/quant/integer.ts and src/quant/float-codec.ts step by step; the
 * conversions come from bits.ts. Generated functions read/write the storage arrays named by
 * the caller (`src` as u32 bit patterns of f32, `dst` / the cache buffers as u32 words).
 */

import { ConfigError } from "../../errors.ts";
import { f32Bits } from "../../quant/half.ts";
import type { Codec, CodecName } from "../../quant/types.ts";
import type { GpuRowLayout } from "../layout.ts";
import { decodeGgmlElemWgsl, dotGgmlRowWgsl, encodeGgmlRowWgsl, type GgmlWgslType } from "./ggml.ts";
import { decodeTurboElemWgsl, dotTurboRowWgsl, encodeTurboRowWgsl, TURBO_WIDE_WGSL } from "./turbo.ts";

/**
 * What the WGSL generators need to know about each codec, one row per codec (the spirit of
 * ggml's type_traits). Keyed by CodecName with no default: a codec added to src/quant without
 * a row here is a type error, and a name outside the table (wgslTraits) is a clear error, never
 * a silent fall-through to another codec's code. A codec without WGSL kernels yet has `null`:
 * the GPU cache checks `hasWgslCodec` first and leaves it to the standard cache, whose ops run
 * as counted ref fallbacks.
 */
type WgslTraits =
  | { kind: "int"; bits: 8 | 4 | 2 }
  /** TurboQuant (turbo.ts): lo bits for the last floor(d/2) coordinates, hi for the first ceil(d/2). */
  | { kind: "turbo"; lo: number; hi: number }
  /** ggml's block types (ggml.ts): blocks of 32 with f16 d (and m). */
  | { kind: "ggml"; type: GgmlWgslType }
  | {
      kind: "float";
      /** Largest finite magnitude (inputs above it count as saturated). */
      max: number;
      /** Bytes per element in the row (packed into u32 words). */
      bytes: 4 | 2 | 1;
      /** WGSL expression of the element's code from the f32 bit pattern `x` (u32). */
      encode: string;
      /** WGSL expression of the f32 bit pattern (u32) from the element's code `c`. */
      decode: string;
    };

export const WGSL_CODECS: Record<CodecName, WgslTraits | null> = {
  f32: { kind: "float", max: 3.4028234663852886e38, bytes: 4, encode: "x", decode: "c" },
  f16: { kind: "float", max: 65504, bytes: 2, encode: "f32_to_f16(x)", decode: "f16_to_f32_bits(c)" },
  bf16: {
    kind: "float",
    max: 3.3895313892515355e38,
    bytes: 2,
    encode: "f32_to_bf16(x)",
    decode: "(c << 16u)",
  },
  "fp8-e4m3": { kind: "float", max: 448, bytes: 1, encode: "f32_to_fp8(x)", decode: "fp8_to_f32_bits(c)" },
  int8: { kind: "int", bits: 8 },
  int4: { kind: "int", bits: 4 },
  int2: { kind: "int", bits: 2 },
  // ggml block types: ggml.ts (encode bit-identical to src/quant/ggml-*.ts).
  q4_0: { kind: "ggml", type: "q4_0" },
  q4_1: { kind: "ggml", type: "q4_1" },
  q5_0: { kind: "ggml", type: "q5_0" },
  q5_1: { kind: "ggml", type: "q5_1" },
  q8_0: { kind: "ggml", type: "q8_0" },
  iq4_nl: { kind: "ggml", type: "iq4_nl" },
  // TurboQuant: codebook kernels in turbo.ts (rotation: the GPU cache's, kernels/hadamard.ts).
  turbo2: { kind: "turbo", lo: 2, hi: 2 },
  "turbo2.5": { kind: "turbo", lo: 2, hi: 3 },
  turbo3: { kind: "turbo", lo: 3, hi: 3 },
  "turbo3.5": { kind: "turbo", lo: 3, hi: 4 },
  turbo4: { kind: "turbo", lo: 4, hi: 4 },
  // TurboQuant_prod: no WGSL kernel for the QJL residual (the standard cache, counted).
  "turbo3-qjl": null,
  "turbo4-qjl": null,
};

/** Whether the WGSL kernels implement this codec. */
export function hasWgslCodec(type: string): type is CodecName {
  return Object.hasOwn(WGSL_CODECS, type) && WGSL_CODECS[type as CodecName] !== null;
}

/** The codec's WGSL traits; a codec without kernels is an error naming it (never another codec's code). */
export function wgslTraits(codec: Codec): WgslTraits {
  const t = codec.options.type;
  if (!hasWgslCodec(t))
    throw new ConfigError("cache.codec", `codec ${String(t)} has no WGSL kernels (src/gpu/wgsl/codec.ts)`);
  return WGSL_CODECS[t]!;
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}u`;
}

/** Bits per code of an integer codec, or 0 for float codecs. */
export function intBits(codec: Codec): number {
  const tr = wgslTraits(codec);
  return tr.kind === "int" ? tr.bits : 0;
}

/**
 * `fn <name>(sb: u32, db: u32) -> vec2<u32>`: encode the headDim f32 bit patterns at src[sb..]
 * into the row at dst[db..]; returns (nonFinite, saturated) of the row.
 */
export function encodeRowWgsl(codec: Codec, L: GpuRowLayout, name: string, src: string, dst: string): string {
  const traits = wgslTraits(codec);
  if (traits.kind === "turbo")
    return TURBO_WIDE_WGSL + encodeTurboRowWgsl(traits.lo, traits.hi, L, name, src, dst);
  if (traits.kind === "ggml") return encodeGgmlRowWgsl(traits.type, L, name, src, dst);
  const D = L.headDim;
  const bits = intBits(codec);
  if (bits === 0) return encodeFloatRow(codec, L, name, src, dst);
  const sym = codec.options.symmetric;
  const G = L.cpu.groupSize;
  const qmax = (1 << (bits - 1)) - 1;
  const offset = 1 << (bits - 1);
  const levels = (1 << bits) - 1;
  return /* wgsl */ `
fn ${name}(sb: u32, db: u32) -> vec2<u32> {
  var nonfinite = 0u;
  var sat = 0u;
  for (var w = 0u; w < ${L.rowWords}u; w = w + 1u) { ${dst}[db + w] = 0u; }
  for (var g = 0u; g < ${L.cpu.nGroups}u; g = g + 1u) {
    let start = g * ${G}u;
    let end = min(start + ${G}u, ${D}u);
    var lo = 0x7f800000u;
    var hi = 0xff800000u;
    var any = false;
    for (var i = start; i < end; i = i + 1u) {
      let x = ${src}[sb + i];
      if (is_finite_bits(x)) {
        if (fkey(x) < fkey(lo)) { lo = x; }
        if (fkey(x) > fkey(hi)) { hi = x; }
        any = true;
      } else { nonfinite = nonfinite + 1u; }
    }
    if (!any) { lo = 0u; hi = 0u; }
    var sbits: u32;
    var m = 0.0;
${
  sym
    ? `    let amax = max(lo & F32_ABS, hi & F32_ABS);
    sbits = f32_to_f16_up(div_small(amax, ${qmax}u));
    let s = bitcast<f32>(f16_to_f32_bits(sbits));
    if (bitcast<f32>(amax) > ${(qmax * 65504).toFixed(1)}) {
      let limit = fkey(bitcast<u32>(${qmax}.0 * s));
      for (var i = start; i < end; i = i + 1u) {
        let x = ${src}[sb + i];
        if (!is_nan_bits(x) && fkey(x & F32_ABS) > limit) { sat = sat + 1u; }
      }
    }`
    : `    let mbits = f32_to_f16_down(lo);
    m = bitcast<f32>(f16_to_f32_bits(mbits));
    let range = bitcast<f32>(hi) - m;
    sbits = f32_to_f16_up(div_small(bitcast<u32>(range) & F32_ABS, ${levels}u));
    let s = bitcast<f32>(f16_to_f32_bits(sbits));
    ${dst}[db + ${L.zeroOff}u + g / 2u] |= mbits << (16u * (g % 2u));
    if (fkey(lo) < fkey(0xc77fe000u) || range > ${(levels * 65504).toFixed(1)}) {
      let klo = fkey(bitcast<u32>(m));
      let khi = fkey(bitcast<u32>(m + ${levels}.0 * s));
      for (var i = start; i < end; i = i + 1u) {
        let x = ${src}[sb + i];
        if (is_finite_bits(x) && (fkey(x) < klo || fkey(x) > khi)) { sat = sat + 1u; }
      }
    }`
}
    ${dst}[db + ${L.scaleOff}u + g / 2u] |= sbits << (16u * (g % 2u));
    var inv = 0.0;
    if (sbits != 0u && (sbits & 0x8000u) == 0u) { inv = bitcast<f32>(recip_f16(sbits)); }
    for (var i = start; i < end; i = i + 1u) {
      var xb = ${src}[sb + i];
      if (is_nan_bits(xb)) { xb = 0u; }
      else if (xb == 0x7f800000u) { xb = hi; }
      else if (xb == 0xff800000u) { xb = lo; }
      let x = bitcast<f32>(xb);
${
  sym
    ? `      let q = clamp(round(x * inv), -${qmax}.0, ${qmax}.0);
      let u = u32(i32(q) + ${offset});`
    : `      let u = u32(clamp(round((x - m) * inv), 0.0, ${levels}.0));`
}
      let bit = i * ${bits}u;
      ${dst}[db + bit / 32u] |= u << (bit % 32u);
    }
  }
  return vec2<u32>(nonfinite, sat);
}
`;
}

function encodeFloatRow(codec: Codec, L: GpuRowLayout, name: string, src: string, dst: string): string {
  const tr = wgslTraits(codec);
  if (tr.kind !== "float") throw new Error(`encodeFloatRow: ${codec.options.type} is not a float codec`);
  const maxBits = hex(f32Bits(tr.max));
  const conv = tr.encode;
  const store =
    tr.bytes === 4
      ? `${dst}[db + i] = code;`
      : tr.bytes === 2
        ? `${dst}[db + i / 2u] |= code << (16u * (i % 2u));`
        : `${dst}[db + i / 4u] |= code << (8u * (i % 4u));`;
  return /* wgsl */ `
fn ${name}(sb: u32, db: u32) -> vec2<u32> {
  var nonfinite = 0u;
  var sat = 0u;
  for (var w = 0u; w < ${L.rowWords}u; w = w + 1u) { ${dst}[db + w] = 0u; }
  for (var i = 0u; i < ${L.headDim}u; i = i + 1u) {
    let x = ${src}[sb + i];
    if (!is_finite_bits(x)) { nonfinite = nonfinite + 1u; }
    else if ((x & F32_ABS) > ${maxBits}) { sat = sat + 1u; }
    let code = ${conv};
    ${store}
  }
  return vec2<u32>(nonfinite, sat);
}
`;
}

/** `fn <name>(rb: u32, i: u32) -> f32`: element i of the encoded row starting at word rb of `buf`. */
export function decodeElemWgsl(codec: Codec, L: GpuRowLayout, name: string, buf: string): string {
  const tr = wgslTraits(codec);
  if (tr.kind === "turbo") return decodeTurboElemWgsl(tr.lo, tr.hi, L, name, buf);
  if (tr.kind === "ggml") return decodeGgmlElemWgsl(tr.type, L, name, buf);
  if (tr.kind === "float") {
    // The element's code: the whole word, or its 16- or 8-bit lane.
    const c =
      tr.bytes === 4
        ? `${buf}[rb + i]`
        : tr.bytes === 2
          ? `((${buf}[rb + i / 2u] >> (16u * (i % 2u))) & 0xffffu)`
          : `((${buf}[rb + i / 4u] >> (8u * (i % 4u))) & 0xffu)`;
    return `fn ${name}(rb: u32, i: u32) -> f32 { let c = ${c}; return bitcast<f32>(${tr.decode}); }\n`;
  }
  const bits = tr.bits;
  const sym = codec.options.symmetric;
  const G = L.cpu.groupSize;
  const mask = (1 << bits) - 1;
  const offset = 1 << (bits - 1);
  // u * s (and (u - offset) * s) is exact in f32 (8-bit integer times an 11-bit f16), so a
  // backend fusing the following add into an fma cannot change the result.
  return /* wgsl */ `
fn ${name}(rb: u32, i: u32) -> f32 {
  let g = i / ${G}u;
  let s = bitcast<f32>(f16_to_f32_bits((${buf}[rb + ${L.scaleOff}u + g / 2u] >> (16u * (g % 2u))) & 0xffffu));
  let bit = i * ${bits}u;
  let u = (${buf}[rb + bit / 32u] >> (bit % 32u)) & ${mask}u;
${
  sym
    ? `  return f32(i32(u) - ${offset}) * s;`
    : `  let m = bitcast<f32>(f16_to_f32_bits((${buf}[rb + ${L.zeroOff}u + g / 2u] >> (16u * (g % 2u))) & 0xffffu));
  return f32(u) * s + m;`
}
}
`;
}

/**
 * `fn <name>(rb: u32) -> f32`: dot of the workgroup's query row `qs` with the encoded row at
 * word rb. Integer codecs hoist the group's scale (and zero-point) out of the element loop:
 * sum_i q_i * (u_i * s + m) = s * sum_i q_i * u_i + m * sum_i q_i (symmetric: u_i - offset, m = 0).
 */
export function dotRowWgsl(codec: Codec, L: GpuRowLayout, name: string, buf: string, dec: string): string {
  const tr = wgslTraits(codec);
  if (tr.kind === "turbo") return dotTurboRowWgsl(tr.lo, tr.hi, L, name, buf);
  if (tr.kind === "ggml") return dotGgmlRowWgsl(tr.type, L, name, buf);
  const bits = intBits(codec);
  const D = L.headDim;
  if (bits === 0)
    return `fn ${name}(rb: u32) -> f32 {
  var acc = 0.0;
  for (var i = 0u; i < ${D}u; i = i + 1u) { acc = acc + qs[i] * ${dec}(rb, i); }
  return acc;
}
`;
  const sym = codec.options.symmetric;
  const G = L.cpu.groupSize;
  const mask = (1 << bits) - 1;
  const offset = 1 << (bits - 1);
  return /* wgsl */ `
fn ${name}(rb: u32) -> f32 {
  var acc = 0.0;
  for (var g = 0u; g < ${L.cpu.nGroups}u; g = g + 1u) {
    let sh = 16u * (g % 2u);
    let s = bitcast<f32>(f16_to_f32_bits((${buf}[rb + ${L.scaleOff}u + g / 2u] >> sh) & 0xffffu));
    let end = min((g + 1u) * ${G}u, ${D}u);
    var qu = 0.0;
    var qsum = 0.0;
    for (var i = g * ${G}u; i < end; i = i + 1u) {
      let bit = i * ${bits}u;
      let u = (${buf}[rb + bit / 32u] >> (bit % 32u)) & ${mask}u;
      qu = qu + qs[i] * ${sym ? `f32(i32(u) - ${offset})` : "f32(u)"};
      qsum = qsum + qs[i];
    }
${
  sym
    ? "    acc = acc + s * qu;"
    : `    let m = bitcast<f32>(f16_to_f32_bits((${buf}[rb + ${L.zeroOff}u + g / 2u] >> sh) & 0xffffu));
    acc = acc + s * qu + m * qsum;`
}
  }
  return acc;
}
`;
}
