/**
 * What kvlab needs from its host, in a browser (or a Web Worker): the browser build's
 * replacement for host.ts (package.json "browser" field maps one onto the other; keep their
 * exports the same). Files are served from memory: a page mounts the bytes it fetched or was
 * given (mountFiles) under a directory and passes that path to loadModel, so every model loader
 * runs unchanged. Paths are POSIX ("/" separated). Threads are Web Workers over the shared
 * WebAssembly.Memory, available only when the page is cross-origin isolated (COOP/COEP
 * headers); without that kvlab runs on one thread.
 */
import { ConfigError } from "../errors.ts";

export const HOST: "node" | "browser" = "browser";

// ---- paths (POSIX) ----

function normalize(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = out.join("/");
  if (abs) return s ? `/${s}${p.endsWith("/") ? "/" : ""}` : "/";
  return (s || ".") + (p.endsWith("/") ? "/" : "");
}

/** `p` without trailing slashes (the root stays "/"). */
function trimEnd(p: string): string {
  const t = p.replace(/\/+$/, "");
  return t === "" && p.startsWith("/") ? "/" : t;
}

export function isAbsolute(p: string): boolean {
  return p.startsWith("/");
}
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}
export function resolve(...parts: string[]): string {
  let r = "/";
  for (const p of parts) if (p !== "") r = isAbsolute(p) ? p : `${r}/${p}`;
  return trimEnd(normalize(r));
}
export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}
/** As Node's path.posix.dirname: the path up to its last segment, not normalized. */
export function dirname(p: string): string {
  const t = trimEnd(p);
  const i = t.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : trimEnd(t.slice(0, i)) || "/";
}
export function basename(p: string, ext?: string): string {
  const t = trimEnd(p);
  const b = t === "/" ? "" : t.slice(t.lastIndexOf("/") + 1);
  return ext && b.endsWith(ext) && b !== ext ? b.slice(0, -ext.length) : b;
}

// ---- files, from memory ----

const files = new Map<string, Uint8Array>();
const fds = new Map<number, { bytes: Uint8Array; dir: boolean }>();
let nextFd = 3;

function enoent(p: string, op: string): Error {
  return Object.assign(
    new Error(`ENOENT: no such file or directory, ${op} '${p}' (mount it first: mountFiles)`),
    {
      code: "ENOENT",
    },
  );
}

function isDir(p: string): boolean {
  const prefix = p === "/" ? "/" : `${p}/`;
  for (const k of files.keys()) if (k.startsWith(prefix)) return true;
  return false;
}

interface Stats {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}
function stats(size: number, file: boolean): Stats {
  return { size, isFile: () => file, isDirectory: () => !file };
}

/**
 * Serve `files` (relative name -> bytes) under directory `dir` (made absolute); returns that
 * directory, to pass to loadModel or to read a text from. Mounting a name again replaces it.
 */
export function mountFiles(dir: string, entries: Record<string, Uint8Array>): string {
  const root = resolve(dir);
  for (const [name, bytes] of Object.entries(entries)) {
    const full = resolve(root, name);
    if (!full.startsWith(root === "/" ? "/" : `${root}/`))
      throw new ConfigError("files", `${JSON.stringify(name)} points outside ${root}`);
    files.set(full, bytes);
  }
  return root;
}

/** Forget the files mounted under `dir` (their bytes can then be garbage collected). */
export function unmountFiles(dir: string): void {
  const root = resolve(dir);
  for (const k of [...files.keys()]) if (k.startsWith(`${root}/`)) files.delete(k);
}

export function existsSync(p: string): boolean {
  const r = resolve(p);
  return files.has(r) || isDir(r);
}
export function statSync(p: string): Stats {
  const r = resolve(p);
  const f = files.get(r);
  if (f) return stats(f.length, true);
  if (isDir(r)) return stats(0, false);
  throw enoent(p, "stat");
}
export function readdirSync(p: string): string[] {
  const r = resolve(p);
  if (!isDir(r)) throw enoent(p, "scandir");
  const prefix = r === "/" ? "/" : `${r}/`;
  const names = new Set<string>();
  for (const k of files.keys()) if (k.startsWith(prefix)) names.add(k.slice(prefix.length).split("/")[0]!);
  return [...names].sort();
}
export function readFileSync(p: string): Uint8Array;
export function readFileSync(p: string, encoding: "utf8" | "utf-8"): string;
export function readFileSync(p: string, encoding?: string): Uint8Array | string {
  const f = files.get(resolve(p));
  if (!f) throw enoent(p, "open");
  return encoding ? new TextDecoder().decode(f) : f;
}
export function openSync(p: string, _flags?: string): number {
  const r = resolve(p);
  const f = files.get(r);
  if (!f && !isDir(r)) throw enoent(p, "open");
  const fd = nextFd++;
  fds.set(fd, f ? { bytes: f, dir: false } : { bytes: new Uint8Array(0), dir: true });
  return fd;
}
function fdEntry(fd: number): { bytes: Uint8Array; dir: boolean } {
  const f = fds.get(fd);
  if (!f) throw Object.assign(new Error(`EBADF: bad file descriptor ${fd}`), { code: "EBADF" });
  return f;
}
export function fstatSync(fd: number): Stats {
  const f = fdEntry(fd);
  return stats(f.bytes.length, !f.dir);
}
export function readSync(
  fd: number,
  dst: Uint8Array,
  offset: number,
  length: number,
  position: number,
): number {
  const f = fdEntry(fd).bytes;
  const n = Math.max(0, Math.min(length, f.length - position));
  dst.set(f.subarray(position, position + n), offset);
  return n;
}
export function closeSync(fd: number): void {
  fds.delete(fd);
}

// ---- the compiled kernels, threads ----

let wasmLocation: string | URL | undefined;

/** Where build/kvlab.wasm is served; default "kvlab.wasm" beside the page (or worker script). */
export function defaultWasmLocation(): string | URL {
  return wasmLocation ?? "kvlab.wasm";
}
/** Set where the wasm executor fetches kvlab.wasm from (a URL, or bytes through WasmExecutorOptions.wasm). */
export function setDefaultWasmLocation(location: string | URL): void {
  wasmLocation = location;
}

/** The bytes at a URL (relative URLs against the page), or of a mounted file path. */
export async function readBytes(location: string | URL): Promise<Uint8Array> {
  if (typeof location === "string" && files.has(resolve(location))) return files.get(resolve(location))!;
  const res = await fetch(location);
  if (!res.ok) throw new Error(`${location}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Threads can share a WebAssembly.Memory only in a cross-origin isolated context, and the
 * pool's calling thread blocks in Atomics.wait, which a page's main thread may not: so threads
 * only inside a Web Worker of an isolated page.
 */
export function sharedMemoryAvailable(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean; document?: unknown };
  return g.crossOriginIsolated === true && g.document === undefined;
}

/** navigator.hardwareConcurrency where threads can run (sharedMemoryAvailable), else 1. */
export function defaultThreads(): number {
  if (!sharedMemoryAvailable()) return 1;
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return Math.max(1, Math.floor(n ?? 1));
}

export interface HostThread {
  terminate(): void;
}

/**
 * Start a Web Worker running `source` (written for Node's worker_threads: it calls
 * require("node:worker_threads") for workerData and parentPort); resolves once it is ready.
 */
export async function startThread(source: string, workerData: unknown): Promise<HostThread> {
  const prelude = `self.onmessage = (e) => { self.onmessage = null;
const require = () => ({ workerData: e.data, parentPort: { postMessage: (m) => self.postMessage(m) } });
${source}
};`;
  const url = URL.createObjectURL(new Blob([prelude], { type: "text/javascript" }));
  const w = new Worker(url);
  try {
    await new Promise<void>((res, rej) => {
      w.onmessage = () => res();
      w.onerror = (e) => rej(new Error(`kvlab thread failed to start: ${e.message}`));
      w.postMessage(workerData);
    });
  } finally {
    URL.revokeObjectURL(url);
  }
  return { terminate: () => w.terminate() };
}

/** What kvlab uses of Dawn's module (host.ts; never loaded in a browser). */
export interface DawnModule {
  create(flags: string[]): GPU;
  globals: object;
}

/** Dawn is a Node addon: in a browser the webgpu executor uses navigator.gpu (src/gpu/device.ts). */
export async function importDawn(): Promise<never> {
  throw new Error("Dawn (the `webgpu` package) is for Node; in a browser kvlab uses navigator.gpu");
}

/** Browsers have no environment variables. */
export function env(_name: string): string | undefined {
  return undefined;
}

/** Pages do not hold the process open: nothing to do at exit. */
export function onExit(_fn: () => void): void {}

/** Pages cannot force a collection; the browser collects on its own. */
export function collectGarbage(): void {}
