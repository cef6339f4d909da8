/**
 * A fake model runtime for runner tests: deterministic logits per scored token, perturbed by
 * an amount that depends on the cache backend, and fake memory numbers. No model is loaded.
 */
import type { CacheMemory, ResolvedCacheSpec } from "../../src/cache/types.ts";
import type { EvalHooks, LoadedExperiment, RunnerDeps } from "../../src/experiment/types.ts";

export const VOCAB = 8;
export const SCORED = 12;

/** Baseline logits of scored token i: (VOCAB). */
export function baseLogits(i: number): Float32Array {
  const out = new Float32Array(VOCAB);
  for (let v = 0; v < VOCAB; v++) out[v] = 2 * Math.sin(i * 1.7 + v * 2.3) + (v === i % VOCAB ? 1 : 0);
  return out;
}

/** Perturbation size per backend: 0 for f32, growing as bits shrink. */
export function noiseFor(spec: ResolvedCacheSpec): number {
  const bits: Record<string, number> = {
    f32: 32,
    f16: 16,
    bf16: 16,
    "fp8-e4m3": 8,
    int8: 8,
    int4: 4,
    int2: 2,
  };
  const b = bits[spec.keys.type] ?? 8;
  return b >= 32 ? 0 : 1 / b;
}

export function runLogits(spec: ResolvedCacheSpec, i: number): Float32Array {
  const out = baseLogits(i);
  const a = noiseFor(spec);
  for (let v = 0; v < VOCAB; v++) out[v]! += a * Math.cos(i * 3.1 + v * 0.7);
  return out;
}

export function fakeMemory(spec: ResolvedCacheSpec): CacheMemory {
  const bits = 32 * (1 - noiseFor(spec)) || 32;
  const elements = 1000;
  const total = Math.round((elements * bits) / 8);
  return {
    payload: total,
    scales: 0,
    zeros: 0,
    residual: 0,
    indices: 0,
    policyState: 0,
    total,
    elements,
    bitsPerElement: (total * 8) / elements,
    tokenSlots: 100,
  };
}

export interface FakeOptions {
  /** Throw from evaluate for backends whose name is listed. */
  failNames?: string[];
  /** Called before each evaluation with the backend's name (the crash fixture kills itself here). */
  beforeEach?: (name: string) => void;
  /** Names evaluated, in order (appended to by the fake). */
  calls?: string[];
}

export function fakeDeps(opts: FakeOptions = {}): RunnerDeps {
  return {
    async load(): Promise<LoadedExperiment> {
      return {
        modelHash: "m".repeat(64),
        textHash: "t".repeat(64),
        shape: { nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, maxTokens: 64 },
        segmentTokens: 32,
        scoredTokens: SCORED,
        async evaluate(spec: ResolvedCacheSpec, hooks: EvalHooks) {
          opts.beforeEach?.(spec.name);
          opts.calls?.push(spec.name);
          if (opts.failNames?.includes(spec.name)) throw new Error(`fake failure in ${spec.name}`);
          let nll = 0;
          for (let i = 0; i < SCORED; i++) {
            const logits = runLogits(spec, i);
            const target = i % VOCAB;
            let max = -Infinity;
            for (const x of logits) max = Math.max(max, x);
            let s = 0;
            for (const x of logits) s += Math.exp(x - max);
            nll -= logits[target]! - max - Math.log(s);
            hooks.onScored(logits, target, i);
            hooks.onProgress?.(i + 1, SCORED);
          }
          const memory = fakeMemory(spec);
          return {
            nll: nll / SCORED,
            tokens: SCORED,
            memory,
            peakKvBytes: memory.total,
            bitsPerElement: memory.bitsPerElement,
            tokensPerSecond: 1000,
            fallbacks: {},
          };
        },
      };
    },
  };
}

/** A minimal valid raw config for the fake runtime. */
export function rawConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "fake",
    model: "model-dir",
    text: "text.txt",
    protocol: { type: "chunked", ctx: 32, chunkSize: 8 },
    baseline: { topK: VOCAB },
    caches: ["f16", "int8", "int4"],
    ...extra,
  };
}
