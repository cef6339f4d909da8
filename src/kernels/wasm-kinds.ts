/**
 * The wasm kernels of each codec kind (the low 4 bits of a kernel descriptor, assembly/'s
 * KIND_* constants): how a codec's descriptor is packed, which exports encode and decode its
 * rows, and how the attention kernels take it. One row per kind, read by wasm.ts's
 * encodeRows, decodeRows and attend (which name no kind themselves), so that a new kind of
 * kernel is one row here, and each of its codecs one row in wasm.ts WASM_CODECS.
 */
import type { TurboName } from "../quant/turboquant.ts";
import type { TurboQjlName } from "../quant/turboquant-qjl.ts";
import type { Codec } from "../quant/types.ts";
import type { WasmHeap } from "./wasm-heap.ts";
import type { KvlabWasmExports } from "./wasm-loader.ts";
import { KIND_TURBO, KIND_TURBO_QJL, turboBits } from "./wasm-turbo.ts";

/** assembly/attend-ggml.ts KIND_GGML. */
export const KIND_GGML = 6;

/** The descriptor kinds there are kernels for: every one has a row in WASM_KINDS (a type error otherwise). */
export type WasmKindId = 0 | 1 | 2 | 3 | 4 | typeof KIND_TURBO | typeof KIND_GGML | typeof KIND_TURBO_QJL;

/** A codec's row in wasm.ts WASM_CODECS: its kind (null: no kernels, run on ref), integer bits or ggml type index. */
export interface WasmCodecTraits {
  kind: WasmKindId | null;
  bits?: number;
}

/** One encode or decode call: pointers (byte offsets into the wasm memory) and sizes. */
export interface RowsCall {
  desc: number;
  nRows: number;
  headDim: number;
  /** The codec layout's group size (integer codecs). */
  groupSize: number;
  /** f32 rows (nRows, headDim): the source of an encode, the destination of a decode. */
  x: number;
  payload: number;
  scales: number;
  zeros: number;
  /** Encode: where the kernel writes the {nonFinite, saturated} i32 pair. */
  stats: number;
  /** The codebook table of a TurboQuant codec (wasm-turbo.ts), 0 for other kinds. */
  table: number;
}

export interface WasmKind {
  /** Descriptor of a codec of this kind, or -1 where the loaded build lacks the kind's kernels. */
  desc(traits: WasmCodecTraits, codec: Codec, headDim: number, k: KvlabWasmExports): number;
  /** Encode's payload argument: "inout" where the kernel keeps a row's padding bits, as the reference's bit writes do. */
  payload: "out" | "inout";
  encode(k: KvlabWasmExports, c: RowsCall, heap: WasmHeap): void;
  decode(k: KvlabWasmExports, c: RowsCall): void;
  /** Rows without zero-points whose kernels read the codebook table in the zeros argument (TurboQuant). */
  table: boolean;
  /** The attention kernel when either side is of this kind: attend.ts (threads, q8 queries) or turbo-qjl.ts's (f32 queries, one thread). */
  attend: "attend" | "attendTurboQjl";
  /** Whether attend-ggml.ts pairs ggml rows on the other side with rows of this kind. */
  pairsWithGgml: boolean;
}

/** TurboQuant descriptor: kind | lo bits << 16 | hi bits << 20 (the codebook widths of the two coordinate halves). */
function turboDesc(kind: number, codec: Codec): number {
  const [lo, hi] = turboBits(codec.options.type as TurboName | TurboQjlName);
  return kind | (lo << 16) | (hi << 20);
}
/** The TurboQuant kernels' leading arguments: lo bits, hi bits, codebook table. */
const turbo = (c: RowsCall) => [(c.desc >> 16) & 15, (c.desc >> 20) & 15, c.table] as const;
/** The integer kernels' leading arguments: bits, symmetric, group size. */
const int = (c: RowsCall) => [(c.desc >> 4) & 15, (c.desc >> 8) & 1, c.groupSize] as const;

/** f32, f16, bf16, fp8-e4m3 (assembly/codec-float.ts): the kind is the format. */
const FLOAT: WasmKind = {
  desc: (t) => t.kind!,
  payload: "out",
  encode: (k, c) => k.encodeFloat(c.desc, c.x, c.nRows * c.headDim, c.payload, c.stats),
  decode: (k, c) => k.decodeFloat(c.desc, c.payload, c.nRows * c.headDim, c.x),
  table: false,
  attend: "attend",
  pairsWithGgml: true,
};

/** The kernels by descriptor kind. */
const WASM_KINDS: Record<WasmKindId, WasmKind> = {
  0: FLOAT,
  1: FLOAT,
  2: FLOAT,
  3: FLOAT,
  // int8/int4/int2 (assembly/codec-int.ts): kind | bits << 4 | symmetric << 8 | groupSize << 16
  4: {
    desc: (t, codec, d) =>
      t.kind! | (t.bits! << 4) | ((codec.options.symmetric ? 1 : 0) << 8) | (codec.layout(d).groupSize << 16),
    payload: "inout", // the last byte of an int4/int2 row keeps its padding bits
    encode: (k, c) => k.encodeInt(...int(c), c.x, c.nRows, c.headDim, c.payload, c.scales, c.zeros, c.stats),
    decode: (k, c) => k.decodeInt(...int(c), c.payload, c.scales, c.zeros, c.nRows, c.headDim, c.x),
    table: false,
    attend: "attend",
    pairsWithGgml: true,
  },
  // TurboQuant MSE codecs (assembly/codec-turbo.ts); scales: one f16 norm a row
  [KIND_TURBO]: {
    desc: (_t, codec) => turboDesc(KIND_TURBO, codec),
    payload: "inout",
    encode: (k, c) => k.encodeTurbo(...turbo(c), c.x, c.nRows, c.headDim, c.payload, c.scales, c.stats),
    decode: (k, c) => k.decodeTurbo(...turbo(c), c.payload, c.scales, c.nRows, c.headDim, c.x),
    table: true,
    attend: "attend",
    pairsWithGgml: false,
  },
  // ggml block types (assembly/codec-ggml.ts): kind | type index << 4; builds older than
  // codec-ggml.ts lack the exports, and the types then run on ref (counted)
  [KIND_GGML]: {
    desc: (t, _codec, _d, k) => (typeof k.encodeGgml === "function" ? KIND_GGML | (t.bits! << 4) : -1),
    payload: "out",
    encode: (k, c) =>
      k.encodeGgml!((c.desc >> 4) & 15, c.x, c.nRows, c.headDim, c.payload, c.scales, c.zeros, c.stats),
    decode: (k, c) =>
      k.decodeGgml!((c.desc >> 4) & 15, c.payload, c.scales, c.zeros, c.nRows, c.headDim, c.x),
    table: false,
    attend: "attend",
    pairsWithGgml: true,
  },
  // TurboQuant_prod (assembly/turbo-qjl.ts): MSE codes + QJL signs; scales: two f16 norms a row
  [KIND_TURBO_QJL]: {
    desc: (_t, codec) => turboDesc(KIND_TURBO_QJL, codec),
    payload: "inout",
    encode(k, c, heap) {
      const work = heap.scratch(12 * c.headDim + 32); // (d) f32 + (d) f64
      try {
        k.encodeTurboQjl(...turbo(c), c.x, c.nRows, c.headDim, c.payload, c.scales, c.stats, work);
      } finally {
        heap.release(work);
      }
    },
    decode: (k, c) => k.decodeTurboQjl(...turbo(c), c.payload, c.scales, c.nRows, c.headDim, c.x),
    table: true,
    attend: "attendTurboQjl",
    pairsWithGgml: false,
  },
};

/** The kernels of a descriptor's kind (desc >= 0). */
export function kindOf(desc: number): WasmKind {
  const kind = WASM_KINDS[(desc & 15) as WasmKindId];
  if (!kind) throw new Error(`wasm: no kernels for descriptor kind ${desc & 15} (src/kernels/wasm-kinds.ts)`);
  return kind;
}
