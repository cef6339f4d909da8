/**
 * The page: an experiment YAML (experiments/quickstart.yaml by default, editable), the executor,
 * a Run button; a Web Worker (worker.ts) runs kvlab and posts progress and rows; the page shows
 * the live table and the perplexity/KL-vs-memory plot, and offers runs.jsonl and table.csv.
 * For tests, the finished result is on window.kvlab and document.body.dataset.state is
 * "running", "done" or "error".
 */

import type { Row, RunInfo, RunRequest, WorkerMessage } from "./messages.ts";
import { plotSvg } from "./plot.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const yamlBox = $<HTMLTextAreaElement>("yaml");
const executorSel = $<HTMLSelectElement>("executor");
const runBtn = $<HTMLButtonElement>("run");
const statusEl = $("status");
const bar = $<HTMLProgressElement>("progress");
const tbody = $("rows");
const plotEl = $("plot");
const downloads = $("downloads");
const modelInput = $<HTMLInputElement>("model-files");
const textInput = $<HTMLInputElement>("text-file");

declare global {
  interface Window {
    kvlab?: { rows: Row[]; info: RunInfo } | { error: string };
  }
}

const env = [
  `cross-origin isolated: ${crossOriginIsolated ? "yes (wasm threads available)" : "no (one thread)"}`,
  `WebGPU: ${"gpu" in navigator ? "navigator.gpu present" : "absent"}`,
  `cores: ${navigator.hardwareConcurrency}`,
].join(" · ");
$("env").textContent = env;

const fmt = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : "–");

function addRow(r: Row, base: Row | undefined): void {
  const tr = document.createElement("tr");
  const cells = [
    r.name,
    fmt(r.ppl, 3),
    base ? `${r.ppl - base.ppl >= 0 ? "+" : ""}${fmt(r.ppl - base.ppl, 3)}` : "",
    r.kl.klMean.toExponential(2),
    `${fmt(100 * r.kl.sameTop1, 1)}%`,
    fmt(r.peakKvBytes / 1024, 1),
    fmt(r.bitsPerElement, 2),
    fmt(r.tokensPerSecond, 0),
  ];
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  tbody.append(tr);
}

function download(name: string, text: string, type: string): void {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.textContent = name;
  downloads.append(a, " ");
}

function csv(rows: Row[]): string {
  const head =
    "backend,ppl,nll,kl_mean,kl_p99,same_top1,peak_kv_bytes,bits_per_element,tokens,tokens_per_second";
  const lines = rows.map((r) =>
    [
      r.name,
      r.ppl,
      r.nll,
      r.kl.klMean,
      r.kl.klP99,
      r.kl.sameTop1,
      r.peakKvBytes,
      r.bitsPerElement,
      r.tokens,
      r.tokensPerSecond,
    ].join(","),
  );
  return `${[head, ...lines].join("\n")}\n`;
}

async function start(): Promise<void> {
  runBtn.disabled = true;
  document.body.dataset.state = "running";
  tbody.replaceChildren();
  plotEl.replaceChildren();
  downloads.replaceChildren();
  window.kvlab = undefined;
  const rows: Row[] = [];
  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  const title = yamlBox.value.match(/^name:\s*(.+)$/m)?.[1] ?? "experiment";
  worker.onmessage = async (e: MessageEvent<WorkerMessage>) => {
    const m = e.data;
    if (m.type === "status") statusEl.textContent = m.text;
    else if (m.type === "progress") {
      bar.max = m.runs * m.total;
      bar.value = m.run * m.total + m.done;
      statusEl.textContent = `${m.name}: segment ${m.done}/${m.total} (run ${m.run + 1}/${m.runs})`;
    } else if (m.type === "row") {
      rows.push(m.row);
      addRow(m.row, rows[0]);
      plotEl.innerHTML = await plotSvg(rows, `${title} (in the browser)`);
    } else if (m.type === "done") {
      worker.terminate();
      statusEl.textContent = `done in ${m.info.seconds.toFixed(1)} s on ${m.info.executor} (${m.info.threads} thread${m.info.threads > 1 ? "s" : ""}${m.info.adapter ? `, ${m.info.adapter}` : ""})`;
      download("table.csv", csv(m.rows), "text/csv");
      download(
        "runs.jsonl",
        `${m.rows.map((r) => JSON.stringify({ ...r, info: m.info })).join("\n")}\n`,
        "application/x-ndjson",
      );
      window.kvlab = { rows: m.rows, info: m.info };
      document.body.dataset.state = "done";
      runBtn.disabled = false;
    } else if (m.type === "error") {
      worker.terminate();
      statusEl.textContent = `error: ${m.message}`;
      window.kvlab = { error: m.message };
      document.body.dataset.state = "error";
      runBtn.disabled = false;
    }
  };
  const params = new URLSearchParams(location.search);
  const threads = Number(params.get("threads"));
  // Dropped files replace the config's model/text (their bytes go to the worker, transferred).
  let modelFiles: Record<string, Uint8Array> | undefined;
  if (modelInput.files?.length) {
    modelFiles = {};
    for (const f of Array.from(modelInput.files)) modelFiles[f.name] = new Uint8Array(await f.arrayBuffer());
  }
  const text = textInput.files?.[0] ? await textInput.files[0].text() : undefined;
  const req: RunRequest = {
    type: "run",
    yaml: yamlBox.value,
    executor: executorSel.value === "webgpu" ? "webgpu" : "wasm",
    ...(Number.isInteger(threads) && threads > 0 ? { threads } : {}),
    ...(modelFiles ? { modelFiles } : {}),
    ...(text !== undefined ? { text } : {}),
  };
  worker.postMessage(req, modelFiles ? Object.values(modelFiles).map((b) => b.buffer) : []);
}

runBtn.onclick = () => void start();

// The quickstart by default; ?config=experiments/other.yaml picks another from the server.
const configUrl = new URLSearchParams(location.search).get("config") ?? "experiments/quickstart.yaml";
fetch(new URL(`../${configUrl}`, import.meta.url))
  .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`${configUrl}: HTTP ${r.status}`))))
  .then((t) => {
    yamlBox.value = t;
    document.body.dataset.state = "ready";
  })
  .catch((err: Error) => {
    statusEl.textContent = `cannot load ${configUrl}: ${err.message}`;
  });
