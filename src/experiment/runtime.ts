/**
 * The real LoadedExperiment: loads the model (src/model) and the text once, hashes both, and
 * evaluates each cache backend with the perplexity protocols of src/eval/perplexity.ts.
 */
import { stat } from "node:fs/promises";
import { createCache } from "../cache/create.ts";
import { bindPolicy, policyOf } from "../cache/policy.ts";
import type { KVCache, KVShape } from "../cache/types.ts";
import { ConfigError, KvlabError } from "../errors.ts";
import { evaluatePerplexity, type PerplexityProtocol } from "../eval/perplexity.ts";
import { contextWarning } from "../eval/probe.ts";
import type { LanguageModel } from "../model/llama.ts";
import { loadModel } from "../model/load.ts";
import { collectGarbage } from "../platform/host.ts";
import { readTextFile } from "../text-file.ts";
import { contentHash } from "./hash.ts";
import { loadTaskExperiment } from "./runtime-task.ts";
import type { ExperimentConfig, PerplexityProtocolConfig } from "./schema.ts";
import type { LoadedExperiment, RunnerDeps } from "./types.ts";

/** Map the config's protocol onto src/eval's, checking it against the text's length. */
export function toPerplexityProtocol(
  p: PerplexityProtocolConfig,
  nTokens: number,
): PerplexityProtocol & { nChunks: number } {
  const available = Math.floor(nTokens / p.ctx);
  let nChunks = available;
  if (p.chunks !== undefined) nChunks = p.chunks;
  if (p.type === "chunked" && p.maxTokens !== undefined)
    nChunks = Math.min(nChunks, Math.floor(p.maxTokens / p.ctx));
  if (nChunks < 1)
    throw new ConfigError(
      "protocol",
      `the text has ${nTokens} tokens: not enough for one segment of ctx ${p.ctx}${p.type === "chunked" && p.maxTokens ? ` within maxTokens ${p.maxTokens}` : ""}`,
    );
  if (nChunks > available)
    throw new ConfigError(
      "protocol.chunks",
      `${nChunks} segments of ${p.ctx} tokens need ${nChunks * p.ctx} tokens but the text has ${nTokens}; lower chunks or ctx`,
    );
  return p.type === "llamacpp"
    ? { kind: "llamacpp", nCtx: p.ctx, nChunks }
    : { kind: "chunked", nCtx: p.ctx, chunkSize: p.chunkSize, nChunks };
}

export async function mustExist(path: string, what: "model" | "text"): Promise<void> {
  try {
    await stat(path);
  } catch {
    throw new ConfigError(
      what,
      `${path} does not exist${what === "model" ? " (builtin:<name> means models/<name>/; shared:<path> means ../shared/<path>)" : " (builtin:<name> means data/<name>/heldout.txt)"}`,
    );
  }
}

type MassStats = { mean: number; min: number; rows: number };

/**
 * Delegate to `c`, collecting its attention-mass statistics before each reset and at dispose
 * (the cache restarts its meter at every segment).
 */
function collectingMass(c: KVCache, into: MassStats[]): KVCache {
  const collect = () => {
    const s = c.stats().attentionMassKept;
    if (s && s.rows > 0) into.push(s);
  };
  return {
    get spec() {
      return c.spec;
    },
    get shape() {
      return c.shape;
    },
    append: (layer, k, v, positions) => c.append(layer, k, v, positions),
    attend: (layer, q, qPositions, out) => c.attend(layer, q, qPositions, out),
    memory: () => c.memory(),
    stats: () => c.stats(),
    reset() {
      collect();
      c.reset();
    },
    dispose() {
      collect();
      c.dispose();
    },
  };
}

function mergeMass(parts: MassStats[]): MassStats | undefined {
  if (parts.length === 0) return undefined;
  const rows = parts.reduce((a, p) => a + p.rows, 0);
  return {
    mean: parts.reduce((a, p) => a + p.mean * p.rows, 0) / rows,
    min: Math.min(...parts.map((p) => p.min)),
    rows,
  };
}

/** Build every backend once against the model's real shape, so that a spec this model cannot take fails before anything is written. */
export async function checkCaches(
  config: ExperimentConfig,
  model: LanguageModel,
  shape: KVShape,
): Promise<void> {
  for (const c of config.caches) {
    try {
      (await createCache(c.spec, shape, { executor: model.executor, seed: config.seed })).dispose();
    } catch (err) {
      model.dispose();
      if (err instanceof KvlabError)
        throw new ConfigError(c.path, `${c.spec.name}: ${err.message}`, config.file);
      throw err;
    }
  }
}

/** Executor fallbacks counted since `before` (a copy of executor.fallbacks). */
export function fallbacksSince(model: LanguageModel, before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [op, n] of model.executor.fallbacks) {
    const d = n - (before.get(op) ?? 0);
    if (d > 0) out[op] = d;
  }
  return out;
}

export const realDeps: RunnerDeps = {
  async load(config: ExperimentConfig): Promise<LoadedExperiment> {
    if (config.protocol.type === "task") return loadTaskExperiment(config);
    await mustExist(config.modelPath, "model");
    await mustExist(config.textPath, "text");
    const [modelHash, textHash] = await Promise.all([
      contentHash(config.modelPath),
      contentHash(config.textPath),
    ]);
    const model = await loadModel(config.modelPath, { executor: config.executor });
    const text = readTextFile(config.textPath); // refuses invalid UTF-8 (byte offset), directories, devices
    const tokens = model.tokenizer.encode(text, { addBos: true });
    // As in `kvlab ppl`: the vocabulary (83 MiB of heap for Qwen2.5's) is not needed for
    // scoring, so it is freed before the forward passes reach their peak (rebuilt if anything
    // encodes again, e.g. kvzip's scoring prompt).
    model.tokenizer.release?.();
    collectGarbage();
    const protocol = toPerplexityProtocol(config.protocol, tokens.length);
    const warning = contextWarning(model.config, protocol.nCtx);
    const perSegment = protocol.nCtx - 1 - (protocol.nCtx >> 1);
    const scoredTokens = protocol.nChunks * perSegment;
    const shape = model.kvShape(protocol.nCtx);
    await checkCaches(config, model, shape);
    return {
      ...(warning ? { warnings: [warning] } : {}),
      modelHash,
      textHash,
      shape,
      segmentTokens: protocol.nCtx,
      scoredTokens,
      async evaluate(spec, hooks) {
        const before = new Map(model.executor.fallbacks);
        const mass: MassStats[] = [];
        const res = await evaluatePerplexity(
          model,
          tokens,
          protocol,
          async (shape) => {
            const cache = await createCache(spec, shape, {
              executor: model.executor,
              seed: config.seed,
              attentionMass: config.attentionMass,
            });
            if (!config.attentionMass) return cache;
            // The wrapper runs the same policy (a scoring forward it asks for still runs).
            const policy = policyOf(cache);
            const wrapped = collectingMass(cache, mass);
            return policy ? bindPolicy(wrapped, policy) : wrapped;
          },
          {
            onScored: hooks.onScored,
            onProgress: (done) => hooks.onProgress?.(done * perSegment, scoredTokens),
          },
        );
        const fallbacks = fallbacksSince(model, before);
        return {
          nll: res.nll,
          tokens: res.tokens,
          memory: res.memoryBySegment[res.memoryBySegment.length - 1]!,
          segments: res.memoryBySegment,
          peakKvBytes: res.peakKvBytes,
          ...(res.peakPhysicalKvBytes !== undefined ? { peakPhysicalKvBytes: res.peakPhysicalKvBytes } : {}),
          ...(res.physicalKvBytes ? { physicalKvBytes: res.physicalKvBytes } : {}),
          bitsPerElement: res.bitsPerElement,
          tokensPerSecond: res.tokensPerSecond,
          fallbacks,
          ...(mergeMass(mass) ? { attentionMassKept: mergeMass(mass)! } : {}),
          ...(res.scoring ? { scoring: res.scoring } : {}),
        };
      },
      dispose: () => model.dispose(),
    };
  },
};
