/**
 * The web app (web/) end to end in a real browser: Debian's Chromium driven by playwright-core.
 * It builds the app, serves it with web/serve.mjs (COOP/COEP, so the page is cross-origin
 * isolated and the wasm executor runs 2 threads as Web Workers), runs the quickstart's cache
 * backends (experiments/quickstart.yaml, on a 256-token segment so that the test takes seconds)
 * on the built-in model in the page, and computes the same experiment on Node in this test with
 * the same kvlab.wasm, thread count and code (evaluateCaches). Served without COOP/COEP
 * (--no-isolation), the page runs one wasm thread and still agrees with Node's one-thread run.
 *
 * Tolerance, wasm: the same kernels (the same build/kvlab.wasm bytes, tiled for the same 2
 * threads), the same JS (tokenizer, log-softmax, KL) and IEEE arithmetic in both V8s, so the
 * numbers should agree exactly; we allow a relative 1e-9 on PPL and 1e-9 absolute on mean KL for
 * Math.exp/Math.log implementations differing between Chromium's and Node's V8 versions.
 * WebGPU (when headless Chromium gives an adapter: SwiftShader's Vulkan on a CPU-only machine,
 * --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader): other kernels (WGSL, f32 sums in
 * another order), so its PPL is held to the GPU forward test's 5e-4 relative (test/gpu/forward).
 *
 * Skipped, with the reason printed, without Chromium (KVLAB_CHROMIUM, default /usr/bin/chromium)
 * or build/kvlab.wasm. KVLAB_BROWSER_SCREENSHOT=<file.png> keeps the page's screenshot there
 * (results/browser/quickstart-wasm.png was made so); by default it goes to a temporary folder.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { createWasmExecutor, evaluateCaches, loadModel } from "../../src/index.ts";
import { readTextFile } from "../../src/text-file.ts";
import { parseExperiment, toProtocol } from "../../web/src/config.ts";
import type { Row, RunInfo } from "../../web/src/messages.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const CHROMIUM = process.env.KVLAB_CHROMIUM ?? "/usr/bin/chromium";
const WASM = join(root, "build/kvlab.wasm");
const THREADS = 2;
const FLAGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"];

const skip = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM}: apt-get install chromium (or set KVLAB_CHROMIUM)`
  : !existsSync(WASM)
    ? `${WASM} is missing: npm run asbuild`
    : false;
if (skip) console.log(`browser tests skipped: ${skip}`);

/** The quickstart's backends, model and text on one 256-token segment fed 32 at a time. */
function quickstartOn(protocol: string, caches?: string): string {
  let yaml = readFileSync(join(root, "experiments/quickstart.yaml"), "utf8");
  yaml = yaml
    .replace(/^protocol:.*$/m, `protocol: ${protocol}`)
    .replace(/^name:.*$/m, "name: quickstart-browser");
  if (caches) yaml = yaml.replace(/^caches:\n(?:\s+-.*\n)+/m, `caches: ${caches}\n`);
  return yaml;
}

let server: ChildProcess | undefined;
let url = "";
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  execFileSync(process.execPath, [join(root, "web/build.mjs")], { stdio: "inherit" });
  ({ proc: server, url } = await serve());
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
});

after(async () => {
  await browser?.close();
  server?.kill();
  plainServer?.kill();
});

/** web/serve.mjs on a free port; its URL. */
async function serve(...args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [join(root, "web/serve.mjs"), "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const at = await new Promise<string>((res, rej) => {
    proc.stdout!.on("data", (d) => {
      const m = /http:\/\/\S+/.exec(String(d));
      if (m) res(m[0]);
    });
    proc.once("exit", (code) => rej(new Error(`web/serve.mjs exited (${code})`)));
  });
  return { proc, url: at };
}
let plainServer: ChildProcess | undefined;

/** Run `yaml` in the page on `executor` (opened at `at`, or as it is when `at` is ""); its rows and run info. */
async function runInPage(
  page: Page,
  yaml: string,
  executor: "wasm" | "webgpu",
  at = `${url}?threads=${THREADS}`,
) {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  if (at) {
    await page.goto(at);
    await page.waitForFunction(() => document.body.dataset.state === "ready");
  }
  await page.fill("#yaml", yaml);
  await page.selectOption("#executor", executor);
  await page.click("#run");
  await page.waitForFunction(
    () => document.body.dataset.state === "done" || document.body.dataset.state === "error",
    null,
    { timeout: 300_000 },
  );
  const result = (await page.evaluate(() => (window as unknown as { kvlab: unknown }).kvlab)) as
    | { rows: Row[]; info: RunInfo }
    | { error: string };
  assert.deepEqual(errors, [], "no uncaught page errors");
  if ("error" in result) assert.fail(`the page reported: ${result.error}`);
  return result;
}

/** The same experiment on Node: same wasm bytes and threads, the same evaluateCaches. */
async function runOnNode(yaml: string, threads = THREADS) {
  const exp = parseExperiment(yaml);
  const exec = await createWasmExecutor({ wasmPath: WASM, threads });
  const model = await loadModel(join(root, exp.modelUrl!), { executor: exec });
  try {
    const tokens = model.tokenizer.encode(readTextFile(join(root, exp.textUrl!)), { addBos: true });
    return await evaluateCaches(model, tokens, toProtocol(exp.protocol, tokens.length), exp.caches, {
      seed: exp.seed,
      topK: exp.topK,
    });
  } finally {
    model.dispose();
    exec.dispose();
  }
}

test("web app in Chromium: the quickstart's backends on wasm, PPL and KL = Node's", {
  skip,
  timeout: 600_000,
}, async () => {
  const yaml = quickstartOn("{ type: chunked, ctx: 256, chunks: 1, chunkSize: 32 }");
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const { rows, info } = await runInPage(page, yaml, "wasm");
  const shot =
    process.env.KVLAB_BROWSER_SCREENSHOT ?? join(mkdtempSync(join(tmpdir(), "kvlab-web-")), "page.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok((await page.locator("#plot svg").count()) === 1, "the page shows the plot");
  await page.close();

  assert.equal(info.executor, "wasm");
  assert.equal(info.crossOriginIsolated, true, "web/serve.mjs sends COOP/COEP");
  assert.equal(info.threads, THREADS, "wasm threads run as Web Workers");
  const node = await runOnNode(yaml);
  const quickstart = parseExperiment(readFileSync(join(root, "experiments/quickstart.yaml"), "utf8"));
  assert.equal(rows.length, quickstart.caches.length, "every quickstart backend ran (f32 is the baseline)");
  assert.deepEqual(
    rows.map((r) => r.name),
    node.map((r) => r.name),
  );
  let maxRel = 0;
  let maxKl = 0;
  for (let i = 0; i < rows.length; i++) {
    const b = rows[i]!;
    const n = node[i]!;
    assert.equal(b.tokens, n.tokens);
    assert.equal(b.peakKvBytes, n.peakKvBytes, `${b.name}: cache bytes`);
    const rel = Math.abs(b.ppl - n.ppl) / n.ppl;
    maxRel = Math.max(maxRel, rel);
    maxKl = Math.max(maxKl, Math.abs(b.kl.klMean - n.kl.klMean));
    assert.ok(rel <= 1e-9, `${b.name}: browser PPL ${b.ppl} vs Node ${n.ppl}`);
    assert.ok(Math.abs(b.kl.klMean - n.kl.klMean) <= 1e-9, `${b.name}: KL ${b.kl.klMean} vs ${n.kl.klMean}`);
    assert.equal(b.kl.sameTop1, n.kl.sameTop1, `${b.name}: top-1 agreement`);
  }
  console.log(
    `browser (wasm, ${info.threads} threads) = Node over ${rows.length} backends: max |ΔPPL|/PPL ${maxRel.toExponential(1)}, max |ΔKL| ${maxKl.toExponential(1)}; screenshot ${shot}`,
  );
  for (let i = 0; i < rows.length; i++)
    console.log(
      `  ${rows[i]!.name.padEnd(24)} PPL ${rows[i]!.ppl.toFixed(4)}  tok/s browser ${rows[i]!.tokensPerSecond.toFixed(0)} node ${node[i]!.tokensPerSecond.toFixed(0)}`,
    );
});

test("web app in Chromium without cross-origin isolation: one wasm thread, PPL = Node's", {
  skip,
  timeout: 600_000,
}, async () => {
  const plain = await serve("--no-isolation");
  plainServer = plain.proc;
  const yaml = quickstartOn("{ type: chunked, ctx: 128, chunks: 1, chunkSize: 32 }", "[f32, int4]");
  const page = await browser!.newPage();
  const { rows, info } = await runInPage(page, yaml, "wasm", plain.url);
  await page.close();
  assert.equal(info.crossOriginIsolated, false);
  assert.equal(info.threads, 1, "no COOP/COEP: the wasm executor falls back to one thread");
  const node = await runOnNode(yaml, 1);
  for (let i = 0; i < rows.length; i++)
    assert.ok(
      Math.abs(rows[i]!.ppl - node[i]!.ppl) <= 1e-9 * node[i]!.ppl,
      `${rows[i]!.name}: ${rows[i]!.ppl} vs ${node[i]!.ppl}`,
    );
});

test("web app in Chromium: a model and text given as files (drop) run like the built-in ones", {
  skip,
  timeout: 600_000,
}, async () => {
  const yaml = quickstartOn("{ type: chunked, ctx: 128, chunks: 1, chunkSize: 32 }", "[f32, int8]")
    .replace(/^model:.*$/m, "model: dropped")
    .replace(/^text:.*$/m, "text: dropped");
  const page = await browser!.newPage();
  await page.goto(`${url}?threads=${THREADS}`);
  await page.waitForFunction(() => document.body.dataset.state === "ready");
  const dir = join(root, "models/sotu-llama-long");
  await page.setInputFiles(
    "#model-files",
    ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].map((f) => join(dir, f)),
  );
  await page.setInputFiles("#text-file", join(root, "data/sotu/heldout.txt"));
  const { rows } = await runInPage(page, yaml, "wasm", "");
  await page.close();
  const node = await runOnNode(
    quickstartOn("{ type: chunked, ctx: 128, chunks: 1, chunkSize: 32 }", "[f32, int8]"),
  );
  assert.deepEqual(
    rows.map((r) => [r.name, r.ppl]),
    node.map((r) => [r.name, r.ppl]),
  );
});

test("web app in Chromium: WebGPU (navigator.gpu) PPL = Node wasm within 5e-4", {
  skip,
  timeout: 600_000,
}, async (t) => {
  const page = await browser!.newPage();
  await page.goto(url);
  const adapter = await page.evaluate(async () => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) return "no navigator.gpu";
    return (await gpu.requestAdapter()) ? "" : "navigator.gpu gave no adapter";
  });
  if (adapter) {
    console.log(`WebGPU part skipped: ${adapter} (Chromium flags: ${FLAGS.join(" ")})`);
    await page.close();
    t.skip(adapter);
    return;
  }
  // SwiftShader runs WGSL on the CPU at ~15 tokens/s: a 128-token segment, two caches.
  const yaml = quickstartOn("{ type: chunked, ctx: 128, chunks: 1, chunkSize: 32 }", "[f32, f16]");
  const { rows, info } = await runInPage(page, yaml, "webgpu");
  await page.close();
  assert.equal(info.executor, "webgpu");
  const node = await runOnNode(yaml);
  for (let i = 0; i < rows.length; i++) {
    const rel = Math.abs(rows[i]!.ppl - node[i]!.ppl) / node[i]!.ppl;
    assert.ok(rel <= 5e-4, `${rows[i]!.name}: WebGPU PPL ${rows[i]!.ppl} vs Node wasm ${node[i]!.ppl}`);
    console.log(
      `WebGPU in Chromium (${info.adapter}): ${rows[i]!.name} PPL ${rows[i]!.ppl.toFixed(4)} vs Node wasm ${node[i]!.ppl.toFixed(4)} (rel ${rel.toExponential(1)}), ${rows[i]!.tokensPerSecond.toFixed(1)} tok/s`,
    );
  }
});
