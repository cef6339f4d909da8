/**
 * The experiment YAML of experiments/ (the same file `kvlab run` reads), as the web app runs it:
 * model and text (builtin:<name> are fetched from the server; anything else must be given as
 * dropped files), the perplexity protocol, the cache list, seed and the baseline's top-k.
 * Sweeps and task protocols are refused with a message naming the field, rather than run
 * differently from the CLI.
 */
import { parse } from "yaml";
import type { CacheSpecInput, PerplexityProtocol } from "../../src/browser.ts";

export interface WebExperiment {
  name: string;
  /** Folder of the model's files on the server, e.g. "models/sotu-llama-long/" (builtin: models only). */
  modelUrl?: string;
  /** The text on the server (builtin: texts only). */
  textUrl?: string;
  protocol: { type: "chunked" | "llamacpp"; ctx: number; chunks?: number; chunkSize?: number };
  caches: CacheSpecInput[];
  seed: number;
  topK: number;
}

function fail(field: string, why: string): never {
  throw new Error(`${field}: ${why}`);
}

export function parseExperiment(yaml: string): WebExperiment {
  const c = parse(yaml) as Record<string, unknown>;
  if (typeof c !== "object" || c === null) fail("(config)", "expected a YAML mapping");
  const builtin = (v: unknown) =>
    typeof v === "string" && v.startsWith("builtin:") ? v.slice("builtin:".length) : undefined;
  const model = builtin(c.model);
  const text = builtin(c.text);
  if (c.sweep !== undefined) fail("sweep", "not supported in the web app; list the caches under caches");
  const p = c.protocol as WebExperiment["protocol"] | undefined;
  if (!p || (p.type !== "chunked" && p.type !== "llamacpp"))
    fail("protocol.type", "the web app runs perplexity protocols: chunked or llamacpp");
  if (!Array.isArray(c.caches) || c.caches.length === 0) fail("caches", "expected a list of cache specs");
  const baseline = c.baseline as { topK?: number } | undefined;
  return {
    name: typeof c.name === "string" ? c.name : "experiment",
    ...(model ? { modelUrl: `models/${model}/` } : {}),
    ...(text ? { textUrl: `data/${text}/heldout.txt` } : {}),
    protocol: p,
    caches: c.caches as CacheSpecInput[],
    seed: typeof c.seed === "number" ? c.seed : 0,
    topK: baseline?.topK ?? 64,
  };
}

/** The config's protocol as src/eval's (as the runner maps it: chunks default to what the text holds). */
export function toProtocol(p: WebExperiment["protocol"], nTokens: number): PerplexityProtocol {
  const nChunks = p.chunks ?? Math.floor(nTokens / p.ctx);
  return p.type === "llamacpp"
    ? { kind: "llamacpp", nCtx: p.ctx, nChunks }
    : { kind: "chunked", nCtx: p.ctx, chunkSize: p.chunkSize ?? p.ctx, nChunks };
}
