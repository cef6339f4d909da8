/** The KV cache interface every backend (codec x retention policy) implements. */
import type { ExecutorName } from "../kernels/executor.ts";
import type { CodecName, CodecOptions } from "../quant/types.ts";

/** Shape of a model's KV cache. */
export interface KVShape {
  nLayers: number;
  /** Query heads (a multiple of nKvHeads: GQA groups of nHeads / nKvHeads query heads share a KV head). */
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Most tokens one sequence may append (the model's context for the protocols). */
  maxTokens: number;
  /**
   * RoPE of the model (rotate-half pairing, as Executor.rope): needed only by caches that
   * store keys before RoPE (policy sinks with positions: cache). invFreq: (headDim / 2).
   */
  rope?: { invFreq: Float32Array };
}

/** A retention policy as written in a spec: `type` plus that policy's own options. */
export interface PolicySpec {
  type: string;
  [option: string]: unknown;
}

/**
 * How one side (keys or values) of a cache is stored, every option filled in: the row codec
 * (type, group, symmetric) and the storage around it. Together with the policy this is the
 * whole description of a cache: `createCache` builds from it alone, results record it, and the
 * spec hash is computed from it, so a record rebuilds its exact cache.
 */
export interface SideSpec {
  type: CodecName;
  /**
   * Elements per scale group: along head_dim for axis "token" (a number or "head" = one group
   * per row), along tokens for axis "channel" (KIVI's G).
   */
  group: number | "head";
  /** Integer codecs: symmetric (scale only) or asymmetric (scale + zero-point). */
  symmetric: boolean;
  /** "token": each row encoded on arrival; "channel" (keys only): per channel over groups of tokens. */
  axis: "token" | "channel";
  /** Newest tokens held in f32 before they are quantized (KIVI's residual); 0 = none. */
  residual: number;
  /**
   * Randomized Hadamard rotation with seeded signs applied before encoding, with any codec:
   * keys (queries rotated alike, scores unchanged) or values (the attention output rotated back).
   */
  rotation: "none" | "hadamard";
  /** Keys only: stored before RoPE and rotated at attention time (KVQuant). */
  preRope: boolean;
}

/** A side as a user writes it: a codec name, or the codec's options plus storage options. */
export type SideInput =
  | string
  | (Omit<CodecOptions, "axis"> & Partial<Omit<SideSpec, "type" | "group" | "symmetric">>);

/** A cache spec with defaults applied: what `KVCache.spec` reports, results record and hashes cover. */
export interface ResolvedCacheSpec {
  /** Human label, e.g. "int4" or "kivi2" or "h2o(budget=0.2)+int4"; not part of the identity. */
  name: string;
  keys: SideSpec;
  values: SideSpec;
  /** The policy with every option defaulted (policy tiered carries its older tier's codecs). */
  policy: PolicySpec;
  /**
   * "q8": each query row is rounded to q8_0 (int8 per block of 32, src/quant/q8-query.ts) and
   * attention uses that row, so executors may score with integer dot products. Absent = exact
   * f32 queries (the default; left out so that older specs and their hashes are unchanged).
   * "q8w": q8, and over token-axis int8 / int4 values the softmax weights too, in q8_0 per
   * block of 32 slots (src/quant/q8-weights.ts), so the weighted sum is an integer dot product
   * (with channel-axis keys, and over other value codecs, the weights stay f32: q8w = q8).
   */
  query?: "q8" | "q8w";
}

/** What a user writes: a codec/preset name, an object, or a resolved spec (taken as is, re-validated). */
export type CacheSpecInput =
  | string
  | ResolvedCacheSpec
  | {
      preset?: string;
      name?: string;
      codec?: SideInput | { keys?: SideInput; values?: SideInput };
      policy?: string | PolicySpec;
      /** "f32" (default, exact), "q8" or "q8w" (see ResolvedCacheSpec.query). */
      query?: "f32" | "q8" | "q8w";
    };

/** Exact bytes held by a cache right now, by part. */
export interface CacheMemory {
  /** Encoded codes of retained K and V rows. */
  payload: number;
  /** f16 scales. */
  scales: number;
  /** f16 zero-points. */
  zeros: number;
  /** Full-precision residual rows (channel-axis codecs' incomplete groups). */
  residual: number;
  /** Stored token positions / slot indices (0 when positions are implicit, e.g. policy `full`). */
  indices: number;
  /** Policy state (accumulated scores, counters). */
  policyState: number;
  /** Sum of the parts above. */
  total: number;
  /** K and V elements retained: tokens x nKvHeads x headDim x 2, summed over layers. */
  elements: number;
  /** total * 8 / elements (0 when empty). */
  bitsPerElement: number;
  /** Tokens retained, summed over layers and KV heads. */
  tokenSlots: number;
}

export interface KVCache {
  readonly spec: ResolvedCacheSpec;
  readonly shape: KVShape;
  /**
   * Encode and store one chunk of new tokens for one layer.
   * k, v: (nKvHeads, nNew, headDim) f32 (k already RoPE'd); positions: (nNew) absolute positions.
   */
  append(layer: number, k: Float32Array, v: Float32Array, positions: Int32Array): void | Promise<void>;
  /**
   * Attention of q over the retained tokens, reading the stored (encoded) form directly.
   * q: (nHeads, nQ, headDim); out: (nHeads, nQ, headDim). Causal by absolute position.
   * Afterwards the policy sees the attention weights and may evict.
   */
  attend(layer: number, q: Float32Array, qPositions: Int32Array, out: Float32Array): void | Promise<void>;
  memory(): CacheMemory;
  /** Forget every token (start of a new sequence); keeps allocated storage. */
  reset(): void;
  /** Free executor memory. The cache is unusable afterwards. */
  dispose(): void;
  /** Running statistics: tokens encoded, non-finite inputs, evictions. */
  stats(): CacheStats;
}

/**
 * Bytes the implementation actually holds, as allocated (issue 16 item 6), next to the logical
 * CacheMemory: capacity grown by doubling rather than retained rows, f32 windows at their
 * allocated size, and the working copies a path keeps between calls, so that no method looks
 * cheaper than it runs. Model weights and activations are not counted.
 */
export interface PhysicalMemory {
  /** Encoded K/V storage as allocated (both tiers): codes, scales, zero-points, slot positions. */
  stores: number;
  /** f32 residual windows and channel-key buffers (codes, group scales, residual rows) as allocated. */
  residual: number;
  /** Working copies kept between calls: decoded keys/values, rotated rows, probabilities, staging. */
  scratch: number;
  /** Diagnostic shadow copies (attention-mass meter's f32 keys); 0 unless asked for. */
  diagnostics: number;
  /** Policy state (as CacheMemory.policyState). */
  policyState: number;
  total: number;
}

export interface CacheStats {
  appended: number;
  evicted: number;
  nonFinite: number;
  saturated: number;
  /** Peak of memory().total since creation or reset. */
  peakBytes: number;
  /** Bytes held as allocated now (caches that measure it: the standard cache). */
  physical?: PhysicalMemory;
  /** Peak of physical.total since creation or reset. */
  peakPhysicalBytes?: number;
  executor: ExecutorName;
  /** Age (newest appended position minus the token's position) of evicted tokens. */
  evictionAge?: {
    mean: number;
    max: number;
    /** Count of ages in [2^(i-1), 2^i); bucket 0 holds age 0. */
    log2Histogram: number[];
  };
  /** Tokens moved to a cheaper tier (policy tiered). */
  demoted?: number;
  /** Opt-in diagnostic (createCache option attentionMass): share of full softmax mass on retained tokens. */
  attentionMassKept?: { mean: number; min: number; rows: number };
}
