/**
 * The Web Worker that runs kvlab for the page: fetches the model's files, the text and
 * kvlab.wasm from the server, loads the model on the chosen executor and evaluates every cache
 * of the experiment against the f32 baseline (evaluateCaches, the same measurements as
 * `kvlab run`), posting progress and each row as it finishes. A worker, not the page, because
 * the wasm executor's thread pool blocks in Atomics.wait, which a page's main thread may not.
 */
import {
  createWasmExecutor,
  createWebGpuExecutor,
  type Executor,
  evaluateCaches,
  getGpu,
  loadModelFromFiles,
} from "../../src/browser.ts";
import { parseExperiment, toProtocol } from "./config.ts";
import type { RunRequest, WorkerMessage } from "./messages.ts";

const post = (m: WorkerMessage) => (self as unknown as Worker).postMessage(m);

/** The files of a HF model folder that kvlab reads (tokenizer_config.json is optional). */
const MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];

async function fetchBytes(url: string, optional = false): Promise<Uint8Array | undefined> {
  const res = await fetch(url);
  if (!res.ok) {
    if (optional && res.status === 404) return undefined;
    throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

async function run(req: RunRequest): Promise<void> {
  const t0 = performance.now();
  const exp = parseExperiment(req.yaml);
  const base = new URL("../", self.location.href); // the worker is served from /dist/
  let files = req.modelFiles;
  if (!files) {
    if (!exp.modelUrl) throw new Error("model: not a builtin:<name> model; drop the model's files");
    post({ type: "status", text: `fetching ${exp.modelUrl}` });
    const fetched: Record<string, Uint8Array> = {};
    await Promise.all(
      MODEL_FILES.map(async (f) => {
        const b = await fetchBytes(new URL(exp.modelUrl + f, base).href, f === "tokenizer_config.json");
        if (b) fetched[f] = b;
      }),
    );
    files = fetched;
  }
  let text = req.text;
  if (text === undefined) {
    if (!exp.textUrl) throw new Error("text: not a builtin:<name> text; drop a text file");
    const bytes = (await fetchBytes(new URL(exp.textUrl, base).href))!;
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  }
  let exec: Executor;
  let adapter: string | undefined;
  if (req.executor === "webgpu") {
    const gpu = await createWebGpuExecutor();
    const { report } = await getGpu();
    adapter = `${report.vendor} ${report.device} (${report.featureLevel})`;
    exec = gpu;
  } else {
    const wasm = await fetchBytes(new URL("build/kvlab.wasm", base).href);
    exec = await createWasmExecutor({ wasm, ...(req.threads ? { threads: req.threads } : {}) });
  }
  const threads = (exec as { threads?: number }).threads ?? 1;
  post({
    type: "status",
    text: `loading the model on ${exec.name} (${threads} thread${threads > 1 ? "s" : ""})`,
  });
  const model = await loadModelFromFiles(files, { executor: exec });
  try {
    const tokens = model.tokenizer.encode(text, { addBos: true });
    const protocol = toProtocol(exp.protocol, tokens.length);
    const runs = 1 + exp.caches.filter((c) => c !== "f32").length;
    const rows = await evaluateCaches(model, tokens, protocol, exp.caches, {
      seed: exp.seed,
      topK: exp.topK,
      onProgress: (run, name, done, total) => post({ type: "progress", run, runs, name, done, total }),
      onResult: ({ spec: _spec, ...row }) => post({ type: "row", row }),
    });
    post({
      type: "done",
      rows: rows.map(({ spec: _spec, ...row }) => row),
      info: {
        executor: exec.name,
        threads,
        crossOriginIsolated: self.crossOriginIsolated,
        ...(adapter ? { adapter } : {}),
        modelTokens: tokens.length,
        seconds: (performance.now() - t0) / 1000,
      },
    });
  } finally {
    model.dispose();
    exec.dispose();
  }
}

self.onmessage = (e: MessageEvent<RunRequest>) => {
  run(e.data).catch((err: unknown) =>
    post({ type: "error", message: err instanceof Error ? err.message : String(err) }),
  );
};
