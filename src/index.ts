// Public API of kvlab on Node: the platform-neutral core (src/core.ts; the same as the browser
// entry, src/browser.ts) plus what reads and writes the file system: the experiment runner,
// result export and synthetic model files.
export * from "./core.ts";
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
export { SYNTH_SHAPES, type SynthOptions, synthModel } from "./model/synth.ts";
export { exportResults } from "./report/export.ts";
