// Public API of kvlab: re-exports only.

export { type CreateCacheOptions, createCache } from "./cache/create.ts";
export { POLICIES } from "./cache/policies/registry.ts";
export type { HeadView, PolicyContext, RetentionPolicy } from "./cache/policy.ts";
export { PRESETS } from "./cache/presets.ts";
export { resolveCacheSpec } from "./cache/spec.ts";
export type {
  CacheMemory,
  CacheSpecInput,
  CacheStats,
  KVCache,
  KVShape,
  PolicySpec,
  ResolvedCacheSpec,
} from "./cache/types.ts";
export * from "./errors.ts";
export {
  KlAccumulator,
  type KlSummary,
  klExact,
  klFromTopK,
  logSoftmax,
  percentile,
  type TopKEntry,
  topK,
} from "./eval/kl.ts";
export {
  type CacheFactory,
  evaluatePerplexity,
  nllOf,
  type PerplexityHooks,
  type PerplexityProtocol,
  type PerplexityResult,
} from "./eval/perplexity.ts";
export { type RunOptions, type RunSummary, runExperiment } from "./experiment/runner.ts";
export { realDeps } from "./experiment/runtime.ts";
export { type ExperimentConfig, loadConfig, validateConfig } from "./experiment/schema.ts";
export type {
  EvalHooks,
  EvalOutput,
  LoadedExperiment,
  RunMetrics,
  RunnerDeps,
  RunRecord,
  RunSpec,
} from "./experiment/types.ts";
export {
  destroyGpu,
  type GpuAdapterReport,
  type GpuBackend,
  type GpuOptions,
  getGpu,
  probeGpu,
} from "./gpu/device.ts";
export { createWebGpuExecutor, type WebGpuExecutor } from "./gpu/executor.ts";
export { GpuLlamaModel, toGpuModel } from "./gpu/forward.ts";
export { type BusTraffic, GpuKVCache } from "./gpu/kv-cache.ts";
export type { AttendArgs, Executor, ExecutorName } from "./kernels/executor.ts";
export { disposeExecutors, EXECUTORS, getExecutor } from "./kernels/registry.ts";
export { createWasmExecutor, type WasmExecutor, type WasmExecutorOptions } from "./kernels/wasm.ts";
export type { Llama3RopeScaling, ModelArch, ModelConfig } from "./model/config.ts";
export { argmax, type GenerateOptions, generate } from "./model/generate.ts";
export type { ForwardOptions, LanguageModel, LayerWeights, LlamaWeights } from "./model/llama.ts";
export { LlamaModel } from "./model/llama.ts";
export { type LoadModelOptions, loadModel } from "./model/load.ts";
export { SYNTH_SHAPES, type SynthOptions, synthModel } from "./model/synth.ts";
export type { TextTokenizer } from "./model/tokenizer.ts";
export * from "./quant/half.ts";
export { CODEC_NAMES, CODECS, makeCodec } from "./quant/registry.ts";
export * from "./quant/types.ts";
export { exportResults } from "./report/export.ts";
