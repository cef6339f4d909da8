/**
 * The runner's seam to the model runtime and its record format. The runner never imports the
 * model or the evaluator directly: `load` hands it a LoadedExperiment (src/experiment/runtime.ts
 * builds the real one; tests inject a fake), so sweeps, the run store and resume are testable
 * without a model.
 */
import type { CacheMemory, KVShape, PhysicalMemory, ResolvedCacheSpec } from "../cache/types.ts";
import type { KlSummary } from "../eval/kl.ts";
import type { ScoringCost } from "../eval/scoring-pass.ts";
import type { TaskCell, TaskSummary } from "../tasks/metrics.ts";
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
  /** Peak of the bytes the cache held as allocated (scratch and working copies included), when measured. */
  peakPhysicalKvBytes?: number;
  /** Those bytes by part at the end of the last segment. */
  physicalKvBytes?: PhysicalMemory;
  /** Bits per retained element at the peak (includes scales, residual, indices, policy state). */
  bitsPerElement: number;
  /** Tokens processed (fed through the model) per second. */
  tokensPerSecond: number;
  /** Ops the executor ran through `ref`, by op name. */
  fallbacks: Record<string, number>;
  /** Share of the full-cache softmax mass on retained tokens (diagnostics.attentionMass). */
  attentionMassKept?: { mean: number; min: number; rows: number };
  /** Task protocol: accuracy and its cells (nll is NaN then). */
  task?: TaskMetrics;
  /** Scoring forwards a policy asked for (KVzip): tokens forwarded, seconds, scratch bytes. */
  scoring?: ScoringCost;
}

/** What a task run stores: the summary, and each sample's outcome (for "where was the needle lost"). */
export interface TaskMetrics extends Omit<TaskSummary, "cells"> {
  query: "agnostic" | "aware";
  prefillChunk: number;
  cells: TaskCell[];
  samples: {
    length: number;
    depth: number;
    index: number;
    correct: boolean;
    output: string;
    answerProb: number;
  }[];
}

/** Paired difference of per-token NLL against the baseline (run - baseline), with a 95% interval. */
export interface PairedNll {
  mean: number;
  lo: number;
  hi: number;
  z: number;
  /** Blocks of consecutive scored tokens used for the batch-means standard error. */
  blocks: number;
  blockTokens: number;
}

export interface LoadedExperiment {
  /** sha256 of the model files and of the text file. */
  modelHash: string;
  textHash: string;
  shape: KVShape;
  /** Tokens one segment puts into the cache (what an f16 full cache would hold at its peak). */
  segmentTokens: number;
  /** Scored tokens per run (for the ETA); task protocol: samples per run. */
  scoredTokens: number;
  /** Warnings to print once and keep in every record (e.g. context past the trained positions). */
  warnings?: string[];
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
  /**
   * Physical bytes (issue 16 item 6): what the cache implementation held as allocated at its
   * peak, and by part at the end (stores at capacity, residual buffers, scratch, diagnostics);
   * absent for caches that do not measure them (the GPU-resident cache).
   */
  peakPhysicalKvBytes?: number;
  physicalKvBytes?: PhysicalMemory;
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
  /** Perplexity protocols: per-token NLL difference against the baseline, with its 95% interval. */
  dNll?: PairedNll;
  /** 95% interval of PPL - baseline PPL, from dNll: basePpl * (exp(dNll.lo | hi) - 1). */
  dPplInterval?: [number, number];
  task?: TaskMetrics;
  /** Extra compute of a policy's scoring forwards (KVzip): not in peakKvBytes, in tokensPerSecond's time. */
  scoring?: ScoringCost;
  warnings?: string[];
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
