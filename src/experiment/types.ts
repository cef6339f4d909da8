/**
 * The runner's seam to the model runtime and its record format. The runner never imports the
 * model or the evaluator directly: `load` hands it a LoadedExperiment (src/experiment/runtime.ts
 * builds the real one; tests inject a fake), so sweeps, the run store and resume are testable
 * without a model.
 */
import type { CacheMemory, KVShape, ResolvedCacheSpec } from "../cache/types.ts";
import type { KlSummary } from "../eval/kl.ts";
import type { Provenance } from "./machine.ts";
import type { ExperimentConfig, ProtocolConfig } from "./schema.ts";

export interface EvalHooks {
  /** Called once per scored token, in scored order: logits (vocab), the target id, its index among scored tokens. */
  onScored(logits: Float32Array, target: number, scoredIndex: number): void;
  /** Tokens processed so far out of the total, for progress. */
  onProgress?(done: number, total: number): void;
}

/** What one evaluation of one cache backend returns. */
export interface EvalOutput {
  /** Mean negative log-likelihood over scored tokens, nats. */
  nll: number;
  /** Scored tokens. */
  tokens: number;
  /** Cache memory at the end of the last segment, by part. */
  memory: CacheMemory;
  /** Cache memory at the end of each segment (optional). */
  segments?: CacheMemory[];
  /** Peak of memory().total over the run. */
  peakKvBytes: number;
  /** Bits per retained element at the peak (includes scales, residual, indices, policy state). */
  bitsPerElement: number;
  /** Tokens processed (fed through the model) per second. */
  tokensPerSecond: number;
  /** Ops the executor ran through `ref`, by op name. */
  fallbacks: Record<string, number>;
  /** Share of the full-cache softmax mass on retained tokens (diagnostics.attentionMass). */
  attentionMassKept?: { mean: number; min: number; rows: number };
}

export interface LoadedExperiment {
  /** sha256 of the model files and of the text file. */
  modelHash: string;
  textHash: string;
  shape: KVShape;
  /** Tokens one segment puts into the cache (what an f16 full cache would hold at its peak). */
  segmentTokens: number;
  /** Scored tokens per run (for the ETA). */
  scoredTokens: number;
  evaluate(cache: ResolvedCacheSpec, hooks: EvalHooks): Promise<EvalOutput>;
  dispose?(): void | Promise<void>;
}

export interface RunnerDeps {
  load(config: ExperimentConfig): Promise<LoadedExperiment>;
}

/** Everything a run's result depends on; its canonical hash is the run's identity. */
export interface RunSpec {
  cache: ResolvedCacheSpec;
  model: { ref: string; hash: string };
  text: { ref: string; hash: string };
  protocol: ProtocolConfig;
  executor: string;
  seed: number;
  baselineTopK: number;
  /** Present (true) only when the attention-mass diagnostic is on, so other hashes do not change. */
  attentionMass?: true;
}

export interface RunMetrics extends Partial<KlSummary> {
  nll: number;
  ppl: number;
  tokens: number;
  kvBytes: CacheMemory;
  kvBytesBySegment?: CacheMemory[];
  peakKvBytes: number;
  bitsPerElement: number;
  /** Bytes an f16 full cache would hold at the same token count (segmentTokens). */
  f16Bytes: number;
  /** f16Bytes / peakKvBytes. */
  compressionVsF16: number;
  tokensPerSecond: number;
  /** Process peak RSS after the run (process-wide, so it never decreases within one sweep). */
  peakRssBytes: number;
  fallbacks: Record<string, number>;
  attentionMassKept?: { mean: number; min: number; rows: number };
}

export interface RunRecord extends Provenance {
  experiment: string;
  name: string;
  baseline: boolean;
  status: "ok" | "error";
  error?: string;
  specHash: string;
  spec: RunSpec;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  metrics?: RunMetrics;
}
