/**
 * The real LoadedExperiment: loads the model (src/model) and the text once, hashes both, and
 * evaluates each cache backend with the perplexity protocols of src/eval/perplexity.ts.
 */
import { readFile, stat } from "node:fs/promises";
import { createCache } from "../cache/create.ts";
import { ConfigError } from "../errors.ts";
import { evaluatePerplexity, type PerplexityProtocol } from "../eval/perplexity.ts";
import { loadModel } from "../model/load.ts";
import { contentHash } from "./hash.ts";
import type { ExperimentConfig, ProtocolConfig } from "./schema.ts";
import type { LoadedExperiment, RunnerDeps } from "./types.ts";

/** Map the config's protocol onto src/eval's, checking it against the text's length. */
export function toPerplexityProtocol(
  p: ProtocolConfig,
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

async function mustExist(path: string, what: "model" | "text"): Promise<void> {
  try {
    await stat(path);
  } catch {
    throw new ConfigError(
      what,
      `${path} does not exist${what === "model" ? " (builtin:<name> means models/<name>/; shared:<path> means ../shared/<path>)" : " (builtin:<name> means data/<name>/heldout.txt)"}`,
    );
  }
}

export const realDeps: RunnerDeps = {
  async load(config: ExperimentConfig): Promise<LoadedExperiment> {
    await mustExist(config.modelPath, "model");
    await mustExist(config.textPath, "text");
    const [modelHash, textHash] = await Promise.all([
      contentHash(config.modelPath),
      contentHash(config.textPath),
    ]);
    const model = await loadModel(config.modelPath, { executor: config.executor });
    const text = await readFile(config.textPath, "utf8");
    const tokens = model.tokenizer.encode(text, { addBos: true });
    const protocol = toPerplexityProtocol(config.protocol, tokens.length);
    const perSegment = protocol.nCtx - 1 - (protocol.nCtx >> 1);
    const scoredTokens = protocol.nChunks * perSegment;
    return {
      modelHash,
      textHash,
      shape: model.kvShape(protocol.nCtx),
      segmentTokens: protocol.nCtx,
      scoredTokens,
      async evaluate(spec, hooks) {
        const before = new Map(model.executor.fallbacks);
        const res = await evaluatePerplexity(
          model,
          tokens,
          protocol,
          // The resolved spec written back as explicit input (codecs per side, policy with defaults).
          (shape) =>
            createCache(
              { name: spec.name, codec: { keys: spec.keys, values: spec.values }, policy: spec.policy },
              shape,
              { executor: model.executor, seed: config.seed },
            ),
          {
            onScored: hooks.onScored,
            onProgress: (done) => hooks.onProgress?.(done * perSegment, scoredTokens),
          },
        );
        const fallbacks: Record<string, number> = {};
        for (const [op, n] of model.executor.fallbacks) {
          const d = n - (before.get(op) ?? 0);
          if (d > 0) fallbacks[op] = d;
        }
        return {
          nll: res.nll,
          tokens: res.tokens,
          memory: res.memoryBySegment[res.memoryBySegment.length - 1]!,
          segments: res.memoryBySegment,
          peakKvBytes: res.peakKvBytes,
          bitsPerElement: res.bitsPerElement,
          tokensPerSecond: res.tokensPerSecond,
          fallbacks,
        };
      },
      dispose: () => model.dispose(),
    };
  },
};
