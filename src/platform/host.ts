/**
 * What kvlab needs from its host, on Node: files, paths, the compiled kernels' bytes, a thread
 * count and threads. Browser builds replace this module with host.browser.ts (package.json
 * "browser" field), so the core (codecs, cache, policies, executors, model loaders, evaluation)
 * imports no Node module itself and bundles for the web unchanged. Keep both files' exports the
 * same: test/browser/host-parity.test.ts compares them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
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

/**
 * Files given as bytes (loadModelFromFiles), on Node: written under a fresh temporary directory
 * (`dir` names it), whose path is returned; unmountFiles removes it. Browsers keep them in
 * memory instead (host.browser.ts).
 */
export function mountFiles(dir: string, files: Record<string, Uint8Array>): string {
  const root = mkdtempSync(join(tmpdir(), `${dir.replace(/[^\w.-]+/g, "-").replace(/^-+/, "")}-`));
  for (const [name, bytes] of Object.entries(files)) {
    const full = resolve(root, name);
    if (!full.startsWith(`${root}${sep}`)) {
      rmSync(root, { recursive: true, force: true });
      throw new ConfigError("files", `${JSON.stringify(name)} points outside the model folder`);
    }
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, bytes);
  }
  return root;
}

/** Remove what mountFiles wrote. */
export function unmountFiles(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
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

/**
 * One full garbage collection, now. V8 collects its heap when the JS heap grows, but kvlab's
 * forward passes allocate in WASM memory, so a large JS object dropped before them (a model's
 * vocabulary) would stay resident through the run's peak. The `gc` function is made available
 * to a fresh context with V8's --expose-gc flag.
 */
export function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}
