/**
 * Every codec configuration the contract suites cover: the four float codecs and the three
 * integer codecs at each group size, symmetric and asymmetric. Expected layout facts are
 * written out here independently of src/quant (so a wrong layout cannot agree with itself).
 */
import { makeCodec } from "../../src/quant/registry.ts";
import type { Codec, CodecName, CodecOptions } from "../../src/quant/types.ts";

export const FLOAT_CODECS = ["f32", "f16", "bf16", "fp8-e4m3"] as const;
export const INT_CODECS = ["int8", "int4", "int2"] as const;
export const GROUPS = [8, 16, 32, 64, 128, "head"] as const;

/** Bits per stored code, by codec (from the formats' definitions, not from the codecs). */
export const CODE_BITS: Record<CodecName, number> = {
  f32: 32,
  f16: 16,
  bf16: 16,
  "fp8-e4m3": 8,
  int8: 8,
  int4: 4,
  int2: 2,
  // ggml block types: bits per code (ggml-common.h); their blocks also hold d (and m), see GGML_BITS.
  q4_0: 4,
  q4_1: 4,
  q5_0: 5,
  q5_1: 5,
  q8_0: 8,
  iq4_nl: 4,
  // TurboQuant: codebook index bits (the fractional ones average b and b + 1 over coordinate halves).
  turbo2: 2,
  "turbo2.5": 2.5,
  turbo3: 3,
  "turbo3.5": 3.5,
  turbo4: 4,
  // TurboQuant_prod: b - 1 MSE bits + 1 QJL sign bit per coordinate.
  "turbo3-qjl": 3,
  "turbo4-qjl": 4,
};

/** TurboQuant's codecs (one f16 norm per row besides the codes; rotation is the cache's option). */
export const TURBO_CODECS = ["turbo2", "turbo2.5", "turbo3", "turbo3.5", "turbo4"] as const;
/** TurboQuant_prod (MSE codes + 1-bit QJL residual; two f16 norms per row). */
export const TURBO_QJL_CODECS = ["turbo3-qjl", "turbo4-qjl"] as const;

/** ggml's block types (fixed blocks of 32; head_dim must be a multiple of 32). */
export const GGML_CODECS = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl"] as const;

/**
 * Bits per element of each ggml type, from ggml-common.h's block structs: (f16 d [+ f16 m] +
 * payload bytes) * 8 / 32 elements.
 */
export const GGML_BITS: Record<(typeof GGML_CODECS)[number], number> = {
  q4_0: ((2 + 16) * 8) / 32, // 4.5
  q4_1: ((2 + 2 + 16) * 8) / 32, // 5.0
  q5_0: ((2 + 4 + 16) * 8) / 32, // 5.5
  q5_1: ((2 + 2 + 4 + 16) * 8) / 32, // 6.0
  q8_0: ((2 + 32) * 8) / 32, // 8.5
  iq4_nl: ((2 + 16) * 8) / 32, // 4.5
};

export interface CodecCase {
  label: string;
  options: CodecOptions;
  codec: Codec;
  integer: boolean;
}

function label(o: CodecOptions): string {
  return o.group === undefined ? o.type : `${o.type}-${o.symmetric ? "sym" : "asym"}-g${o.group}`;
}

export function codecCases(): CodecCase[] {
  const cases: CodecCase[] = [];
  for (const type of FLOAT_CODECS) {
    const options: CodecOptions = { type };
    cases.push({ label: label(options), options, codec: makeCodec(options), integer: false });
  }
  for (const type of INT_CODECS)
    for (const group of GROUPS)
      for (const symmetric of [true, false]) {
        const options: CodecOptions = { type, group, symmetric };
        cases.push({ label: label(options), options, codec: makeCodec(options), integer: true });
      }
  return cases;
}

/**
 * TurboQuant rows (ungrouped; the attend contract runs them with and without rotation, the codec
 * suite is test/quant/turboquant.test.ts: a codebook has no integer grid for the int/float bounds).
 */
export function turboCases(): CodecCase[] {
  return [...TURBO_CODECS, ...TURBO_QJL_CODECS].map((type) => ({
    label: type,
    options: { type },
    codec: makeCodec(type),
    integer: false,
  }));
}

/**
 * ggml's block types (head_dim must be a multiple of 32, so the contract suites run them on
 * head sizes 32-160 in their own tests rather than in codecCases' random head sizes).
 */
export function ggmlCases(): CodecCase[] {
  return GGML_CODECS.map((type) => ({
    label: type,
    options: { type },
    codec: makeCodec(type),
    integer: false,
  }));
}

/** Expected layout of one row, computed from the format rules. */
export function expectedLayout(o: CodecOptions, headDim: number) {
  const bits = CODE_BITS[o.type];
  const payloadBytes = Math.ceil((headDim * bits) / 8);
  if (o.group === undefined) return { payloadBytes, groupSize: headDim, nGroups: 0, scales: 0, zeros: 0 };
  const groupSize = o.group === "head" ? headDim : Math.min(o.group, headDim);
  const nGroups = Math.ceil(headDim / groupSize);
  return { payloadBytes, groupSize, nGroups, scales: nGroups, zeros: o.symmetric ? 0 : nGroups };
}
