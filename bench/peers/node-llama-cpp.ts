/**
 * node-llama-cpp, loaded for the peer benchmarks and the agreement tool: CPU only, prebuilt
 * binaries, never a source build. Imported by path because it lives in bench/peers/node_modules
 * only, never in kvlab's own dependencies.
 */
import { pathToFileURL } from "node:url";

// biome-ignore lint/suspicious/noExplicitAny: the peer's types are not part of kvlab's build
export type NodeLlamaCpp = any;

/** The module itself (for its enums and classes). */
export async function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  const url = pathToFileURL(new URL("./node_modules/node-llama-cpp/dist/index.js", import.meta.url).pathname);
  return import(url.href);
}

/**
 * A CPU llama.cpp with `threads` threads. `logger` receives every message at debug level
 * (used to read which llama.cpp build and options ran); without it only errors are printed.
 */
export async function cpuLlama(
  nlc: NodeLlamaCpp,
  threads: number,
  logger?: (level: unknown, message: string) => void,
): Promise<NodeLlamaCpp> {
  return nlc.getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    progressLogs: false,
    logLevel: logger ? nlc.LlamaLogLevel.debug : nlc.LlamaLogLevel.error,
    ...(logger ? { logger } : {}),
    maxThreads: threads,
  });
}
