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
  type CacheFactory,
  evaluatePerplexity,
  nllOf,
  type PerplexityHooks,
  type PerplexityProtocol,
  type PerplexityResult,
} from "./eval/perplexity.ts";
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
