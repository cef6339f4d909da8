// Tokens/s of the wasm executor in headless Chromium (the web app) next to Node, same machine,
// same model, text, protocol (the quickstart's: 1024-token segment fed 32 at a time, one
// segment), caches (f32, int4) and kvlab.wasm, at 1 and 2 threads; runs alternate browser/Node,
// REPS times each, and the median is printed. Needs Chromium (KVLAB_CHROMIUM, /usr/bin/chromium).
//   node --import tsx tools/browser-throughput.mts   [REPS=3]
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { createWasmExecutor, evaluateCaches, loadModel } from "../src/index.ts";
import { readTextFile } from "../src/text-file.ts";
import { parseExperiment, toProtocol } from "../web/src/config.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const reps = Number(process.env.REPS ?? 3);
const yaml = readFileSync(join(root, "experiments/quickstart.yaml"), "utf8")
  .replace(/^protocol:.*$/m, "protocol: { type: chunked, ctx: 1024, chunks: 1, chunkSize: 32 }")
  .replace(/^caches:\n(?:\s+-.*\n)+/m, "caches: [f32, int4]\n");

execFileSync(process.execPath, [join(root, "web/build.mjs")], { stdio: "inherit" });
const server = spawn(process.execPath, [join(root, "web/serve.mjs"), "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise<string>((res) =>
  server.stdout!.on("data", (d) => {
    const m = /http:\/\/\S+/.exec(String(d));
    if (m) res(m[0]);
  }),
);
const browser = await chromium.launch({ executablePath: process.env.KVLAB_CHROMIUM ?? "/usr/bin/chromium" });

type Tps = Record<string, number>;
async function inBrowser(threads: number): Promise<Tps> {
  const page = await browser.newPage();
  await page.goto(`${url}?threads=${threads}`);
  await page.waitForFunction(() => document.body.dataset.state === "ready");
  await page.fill("#yaml", yaml);
  await page.click("#run");
  await page.waitForFunction(() => document.body.dataset.state !== "running", null, { timeout: 600_000 });
  const r = (await page.evaluate(() => (window as unknown as { kvlab: unknown }).kvlab)) as {
    rows: { name: string; tokensPerSecond: number }[];
    info: { threads: number };
  };
  await page.close();
  if (r.info.threads !== threads) throw new Error(`page ran ${r.info.threads} threads, asked ${threads}`);
  return Object.fromEntries(r.rows.map((x) => [x.name, x.tokensPerSecond]));
}
async function onNode(threads: number): Promise<Tps> {
  const exp = parseExperiment(yaml);
  const exec = await createWasmExecutor({ wasmPath: join(root, "build/kvlab.wasm"), threads });
  const model = await loadModel(join(root, exp.modelUrl!), { executor: exec });
  const tokens = model.tokenizer.encode(readTextFile(join(root, exp.textUrl!)), { addBos: true });
  const rows = await evaluateCaches(model, tokens, toProtocol(exp.protocol, tokens.length), exp.caches);
  model.dispose();
  exec.dispose();
  return Object.fromEntries(rows.map((x) => [x.name, x.tokensPerSecond]));
}
const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
for (const threads of [1, 2]) {
  const b: Tps[] = [];
  const n: Tps[] = [];
  for (let i = 0; i < reps; i++) {
    b.push(await inBrowser(threads));
    n.push(await onNode(threads));
  }
  for (const name of Object.keys(b[0]!))
    console.log(
      `${threads} thread(s) ${name.padEnd(10)} tokens/s: browser ${median(b.map((x) => x[name]!)).toFixed(0)} [${b.map((x) => x[name]!.toFixed(0)).join(", ")}]  node ${median(n.map((x) => x[name]!)).toFixed(0)} [${n.map((x) => x[name]!.toFixed(0)).join(", ")}]`,
    );
}
await browser.close();
server.kill();
