/**
 * The retention-policy seam. A policy decides which tokens each KV head keeps; it never
 * touches codecs or kernels. The cache calls it at three points per layer and KV head:
 *   append -> onAppend (new slots exist)
 *   attend -> onAttention (softmax probabilities of the query rows, if wantsAttention)
 *          -> evictions (slots to drop now); the cache frees them by moving the last slot
 *             into each hole and tells the policy with onMove.
 * Within one layer's attend, onAttention is called for every KV head before evictions is called
 * for any, so a policy may split a layer's budget across its heads (AdaKV, allocation.ts).
 * So a budget bounds what a KV head holds between steps; within one chunk the new tokens are
 * held (and attended) before the policy trims, as in H2O and TOVA, and peak memory counts it.
 */
import type { CodecOptions } from "../quant/types.ts";
import type { KVShape } from "./types.ts";

/** What a policy may see of one KV head's store. */
export interface HeadView {
  readonly layer: number;
  readonly kvHead: number;
  /** Retained slots; slot j's absolute position is positions[j]. */
  readonly nSlots: number;
  readonly positions: Int32Array; // (capacity), first nSlots valid
  /** Tokens appended to this head since the last reset (retained or not). */
  readonly seen: number;
  /**
   * Decode retained keys [first, first + n) (default: all) into dst (n, headDim), as stored:
   * post-RoPE, or pre-RoPE when the cache stores keys before RoPE; Hadamard-rotated when the
   * cache rotates (norms and dot products are unchanged by the rotation).
   */
  decodeKeys(dst: Float32Array, first?: number, n?: number): void;
}

export interface PolicyContext {
  shape: KVShape;
  seed: number;
}

export interface RetentionPolicy {
  readonly name: string;
  /** When true the cache computes softmax probabilities in attend and passes them to onAttention. */
  readonly wantsAttention: boolean;
  /**
   * True when retained positions follow from the token count (full, window): then no position
   * array needs storing and memory() counts none. Otherwise positions count as `indices`.
   */
  readonly positionsImplicit: boolean;
  onAppend(view: HeadView, firstSlot: number, n: number): void;
  /** probs: (nRows, nSlots) for the nRows query rows (GQA group x chunk) of this KV head. */
  onAttention(view: HeadView, probs: Float32Array, nRows: number, qPos: Int32Array): void;
  /**
   * Optional: the query rows of an attend, before attention, per KV head: q (nRows, headDim)
   * post-RoPE as the cache receives them, rows of the GQA group's query heads in order (qPos as
   * in onAttention). A policy with it runs on the standard cache (the GPU cache keeps queries
   * on the device and refuses it by name).
   */
  onQueries?(view: HeadView, q: Float32Array, nRows: number, qPos: Int32Array): void;
  /** Distinct slot indices (< nSlots) to drop now. */
  evictions(view: HeadView): number[];
  /** After an eviction the store moved slot `from` (its last) into slot `to`. */
  onMove(layer: number, kvHead: number, from: number, to: number): void;
  /** Bytes of policy state held now (scores, counters), counted in memory(). */
  stateBytes(): number;
  reset(): void;
  /**
   * Optional: the cache assigns RoPE positions within the cache (rank among retained tokens,
   * StreamingLLM) instead of absolute positions. Implies pre-RoPE key storage.
   */
  readonly cachePositions?: boolean;
  /**
   * Optional: the policy reads decoded keys in onAppend (knorm, expected attention); the GPU
   * cache then serves the appended rows from the host copy.
   */
  readonly readsKeys?: boolean;
  /** Optional: a multi-tier cache; the cache moves tokens between codecs (see policies/tiered.ts). */
  readonly tiers?: TierSpec;
  /**
   * Optional: the policy scores tokens with an extra forward of the model that the protocol
   * runs before each prefill chunk (KVzip's context reconstruction, policies/kvzip.ts; the
   * protocol side is src/eval/scoring-pass.ts). Without such a protocol the policy still holds
   * its budget, from whatever scores it has.
   */
  readonly scoring?: ScoringRequest;
}

/**
 * What a policy asks of a scoring forward (src/eval/scoring-pass.ts): the protocol keeps an f32
 * copy of the context seen so far, forwards `prompt` + the newest chunk after it (teacher
 * forced, never kept), and hands each KV head the maximum attention every context position
 * received from those queries (max over the query rows and the GQA group, softmax over the
 * context and the scoring tokens), as a running maximum over the passes since reset.
 */
export interface ScoringRequest {
  /** Text put before each repeated chunk (KVzip's repeat prompt). */
  readonly prompt: string;
  /**
   * After each pass (and at reset, with upTo 0), per (layer, KV head): byPos[p] = score of
   * absolute position p for p < upTo; positions at or past upTo have not been scored. The
   * array is the pass's own and stays valid (it is updated in place) until the next reset.
   */
  scores(layer: number, kvHead: number, byPos: Float32Array, upTo: number): void;
}

// The policy each cache built by createCache runs, so that a protocol can serve its scoring
// requests without the KVCache interface naming policies.
const POLICY_OF = new WeakMap<object, RetentionPolicy>();

/** Record that `cache` runs `policy` (createCache calls this). */
export function bindPolicy<C extends object>(cache: C, policy: RetentionPolicy): C {
  POLICY_OF.set(cache, policy);
  return cache;
}

/** The policy a cache built by createCache runs, or undefined. */
export function policyOf(cache: object): RetentionPolicy | undefined {
  return POLICY_OF.get(cache);
}

/** Settings of a multi-tier cache (policy `tiered`). */
export interface TierSpec {
  /** Most recent tokens kept in the cache's own codec: a count (>= 1) or a share of the budget (< 1). */
  recent: number;
  /** Total tokens per KV head over both tiers: a count or a fraction of tokens seen. */
  budget: number;
  /** Codec options of the older tier, for keys and values. */
  keys: CodecOptions;
  values: CodecOptions;
}

/** Resolve a budget given as a count (>= 1) or a fraction (0, 1) of the tokens seen. */
export function resolveCount(value: number, seen: number): number {
  return value < 1 ? Math.max(1, Math.floor(value * seen)) : Math.floor(value);
}
