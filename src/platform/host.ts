/**
 * What kvlab needs from its host, on Node: files, paths, the compiled kernels' bytes, a thread
 * count and threads. Browser builds replace this module with host.browser.ts (package.json
 * "browser" field), so the core (codecs, cache, policies, executors, model loaders, evaluation)
 * imports no Node module itself and bundles for the web unchanged. Keep both files' exports the
 * same: test/browser/host-parity.test.ts compares them.
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { ConfigError } from "../errors.ts";

export {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
export { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";

export const HOST: "node" | "browser" = "node";

let wasmLocation: string | URL | undefined;

/** build/kvlab.wasm of this checkout or installed package (src/ and dist/ are both two levels down). */
export function defaultWasmLocation(): string | URL {
  return wasmLocation ?? fileURLToPath(new URL("../../build/kvlab.wasm", import.meta.url));
}
/** Set where the wasm executor reads kvlab.wasm from when no path or bytes are given. */
export function setDefaultWasmLocation(location: string | URL): void {
  wasmLocation = location;
}

/** The bytes of a file path or a file:/http(s): URL. */
export async function readBytes(location: string | URL): Promise<Uint8Array> {
  const { readFile } = await import("node:fs/promises");
  if (location instanceof URL && location.protocol !== "file:") {
    const res = await fetch(location);
    if (!res.ok) throw new Error(`${location}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  return readFile(location);
}

/** Threads to use when none is asked for: $KVLAB_THREADS, else the machine's parallelism. */
export function defaultThreads(): number {
  const env = Number(process.env.KVLAB_THREADS);
  if (Number.isInteger(env) && env >= 1) return env;
  return Math.max(1, availableParallelism());
}

/** Whether threads can share a WebAssembly.Memory here (always on Node). */
export function sharedMemoryAvailable(): boolean {
  return true;
}

export interface HostThread {
  terminate(): void;
}

/**
 * Start a thread running `source` (plain JS that reads `workerData` through
 * require("node:worker_threads") and posts one message when ready); resolves once it is ready.
 */
export async function startThread(source: string, workerData: unknown): Promise<HostThread> {
  const w = new Worker(source, { eval: true, workerData });
  await new Promise<void>((res, rej) => {
    w.once("message", () => res());
    w.once("error", rej);
  });
  w.unref(); // a blocked worker must not keep the process alive
  return { terminate: () => void w.terminate() };
}

/** Browser builds serve files from memory (host.browser.ts); on Node, files are read from disk. */
export function mountFiles(_dir: string, _files: Record<string, Uint8Array>): string {
  throw new ConfigError("files", "on Node kvlab reads files from disk: pass their path instead");
}

/** What kvlab uses of Dawn's module (declared here so that consumers without `webgpu` type-check). */
export interface DawnModule {
  create(flags: string[]): GPU;
  globals: object;
}

/** Dawn (the `webgpu` npm package, an optional peer dependency), loaded when the webgpu executor starts. */
export async function importDawn(): Promise<DawnModule> {
  // EGL must be told to run without a display before Dawn's OpenGL backend initialises.
  process.env.EGL_PLATFORM ??= "surfaceless";
  return (await import("webgpu")) as DawnModule;
}

/** An environment variable ($KVLAB_GPU_BACKEND, ...); undefined in browsers. */
export function env(name: string): string | undefined {
  return process.env[name];
}

/** Run `fn` when the process is about to exit (Node: beforeExit; browsers: never needed). */
export function onExit(fn: () => void): void {
  process.on("beforeExit", fn);
}
