/**
 * The LoadedExperiment of a `type: task` protocol: loads the model and the haystack once,
 * generates the task samples once (the same prompts for every backend), and evaluates each
 * backend's accuracy with src/tasks.
 */
import { createCache } from "../cache/create.ts";
import { contextWarning } from "../eval/probe.ts";
import { loadModel } from "../model/load.ts";
import { evaluateTask, maxTokensFor } from "../tasks/evaluate.ts";
import { generateSamples, type TaskSpec } from "../tasks/generate.ts";
import { readTextFile } from "../text-file.ts";
import { contentHash } from "./hash.ts";
import { checkCaches, fallbacksSince, mustExist } from "./runtime.ts";
import type { ExperimentConfig, TaskProtocolConfig } from "./schema.ts";
import type { LoadedExperiment, TaskMetrics } from "./types.ts";

/** The generator's spec from the config's protocol and haystack text. */
export function taskSpecOf(p: TaskProtocolConfig, seed: number, haystack: string | undefined): TaskSpec {
  return {
    task: p.task,
    lengths: p.lengths,
    depths: p.depths,
    samples: p.samples,
    seed,
    ...(haystack !== undefined ? { haystack } : {}),
    ...(p.needle ? { needle: p.needle } : {}),
    ...(p.match ? { match: p.match } : {}),
    ...(p.control ? { control: true } : {}),
  };
}

export async function loadTaskExperiment(config: ExperimentConfig): Promise<LoadedExperiment> {
  const p = config.protocol;
  if (p.type !== "task") throw new Error("loadTaskExperiment needs a task protocol");
  await mustExist(config.modelPath, "model");
  if (config.textPath) await mustExist(config.textPath, "text");
  const [modelHash, textHash] = await Promise.all([
    contentHash(config.modelPath),
    config.textPath ? contentHash(config.textPath) : Promise.resolve(""),
  ]);
  const model = await loadModel(config.modelPath, { executor: config.executor });
  const haystack = config.textPath ? readTextFile(config.textPath) : undefined;
  let samples: ReturnType<typeof generateSamples>;
  try {
    samples = generateSamples(model.tokenizer, taskSpecOf(p, config.seed, haystack));
  } catch (err) {
    model.dispose();
    throw err;
  }
  const maxTokens = maxTokensFor(samples);
  const longest = Math.max(...samples.map((s) => s.context.length + s.question.length));
  const warning = contextWarning(model.config, longest);
  const shape = model.kvShape(maxTokens);
  await checkCaches(config, model, shape);
  return {
    modelHash,
    textHash,
    shape,
    segmentTokens: longest,
    scoredTokens: samples.length,
    ...(warning ? { warnings: [warning] } : {}),
    async evaluate(spec, hooks) {
      const before = new Map(model.executor.fallbacks);
      const cache = await createCache(spec, shape, {
        executor: model.executor,
        seed: config.seed,
      });
      const t0 = performance.now();
      try {
        const r = await evaluateTask(model, samples, cache, {
          protocol: p.query,
          prefillChunk: p.prefillChunk,
          onSample: (_s, done) => hooks.onProgress?.(done, samples.length),
        });
        const seconds = (performance.now() - t0) / 1000;
        const tokens = r.samples.reduce((a, s) => a + s.tokens, 0);
        const memory = cache.memory();
        const { samples: perSample, protocol, scoring, ...summary } = r;
        const task: TaskMetrics = {
          ...summary,
          query: protocol,
          samples: perSample.map((s) => ({
            length: s.length,
            depth: s.depth,
            index: s.index,
            correct: s.correct,
            output: s.output,
            answerProb: s.answerProb,
          })),
        };
        return {
          nll: Number.NaN,
          tokens,
          memory,
          peakKvBytes: cache.stats().peakBytes,
          bitsPerElement: memory.bitsPerElement,
          tokensPerSecond: tokens / seconds,
          fallbacks: fallbacksSince(model, before),
          task,
          ...(scoring ? { scoring } : {}),
        };
      } finally {
        cache.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}
