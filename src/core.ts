// The platform-neutral public API of kvlab: what src/index.ts (Node) and src/browser.ts
// (browsers and bundlers) both export. Nothing reachable from here imports a Node module
// directly: files, paths, threads and the kernels' bytes come through src/platform/host.ts,
// which browser builds replace with host.browser.ts (package.json "browser" field).
// test/browser/bundle.test.ts bundles src/browser.ts for the browser to keep it that way.

// Caches: specs, codecs, retention policies.
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
// Evaluation.
export {
  type CacheComparison,
  type EvaluateCachesOptions,
  evaluateCaches,
} from "./eval/compare.ts";
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
// Executors.
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
export { createRefExecutor } from "./kernels/ref.ts";
export { disposeExecutors, EXECUTORS, getExecutor } from "./kernels/registry.ts";
export { createWasmExecutor, type WasmExecutor, type WasmExecutorOptions } from "./kernels/wasm.ts";
export type { WasmSource } from "./kernels/wasm-loader.ts";
// Models.
export type { Llama3RopeScaling, ModelArch, ModelConfig } from "./model/config.ts";
export { loadModelFromFiles } from "./model/from-files.ts";
export { argmax, type GenerateOptions, generate } from "./model/generate.ts";
export type { ForwardOptions, LanguageModel, LayerWeights, LlamaWeights } from "./model/llama.ts";
export { LlamaModel } from "./model/llama.ts";
export { type LoadModelOptions, loadModel } from "./model/load.ts";
export type { TextTokenizer } from "./model/tokenizer.ts";
// Host: where kvlab.wasm comes from; files served from memory in browsers.
export { HOST, mountFiles, setDefaultWasmLocation } from "./platform/host.ts";
// Number formats.
export * from "./quant/half.ts";
export { CODEC_NAMES, CODECS, makeCodec } from "./quant/registry.ts";
export * from "./quant/types.ts";
