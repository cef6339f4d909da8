/** Messages between the page (main.ts) and the Web Worker that runs kvlab (worker.ts). */
import type { CacheComparison } from "../../src/browser.ts";

export interface RunRequest {
  type: "run";
  yaml: string;
  executor: "wasm" | "webgpu";
  /** Threads for the wasm executor (default: all, when the page is cross-origin isolated). */
  threads?: number;
  /** Dropped model files (name -> bytes): a HF folder's files, one .gguf, or a llama2.c .bin + tokenizer.bin. */
  modelFiles?: Record<string, Uint8Array>;
  /** Dropped text (UTF-8). */
  text?: string;
}

export interface RunInfo {
  executor: string;
  threads: number;
  crossOriginIsolated: boolean;
  /** WebGPU adapter, when the webgpu executor ran. */
  adapter?: string;
  modelTokens: number;
  seconds: number;
}

/** A result row as posted (the resolved spec dropped: structured clone keeps it, the table needs only the name). */
export type Row = Omit<CacheComparison, "spec">;

export type WorkerMessage =
  | { type: "status"; text: string }
  | { type: "progress"; run: number; runs: number; name: string; done: number; total: number }
  | { type: "row"; row: Row }
  | { type: "done"; rows: Row[]; info: RunInfo }
  | { type: "error"; message: string };
