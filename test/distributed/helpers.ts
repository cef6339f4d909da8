/**
 * Helpers for the distributed-sweep tests: the kvlab CLI as a child process, a real
 * redis-server on a free loopback port in a temporary folder, a small experiment on the
 * built-in model, and a run folder's table without its timing columns.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REPO = join(import.meta.dirname, "..", "..");
export const BIN = join(REPO, "bin", "kvlab.js");

/** Children of every test: plain progress lines, one wasm thread each (the machine has 2 cores). */
export const CHILD_ENV = { ...process.env, CI: "true", KVLAB_THREADS: "1" };

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `kvlab <args>` to completion. */
export function kvlab(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return runProcess(process.execPath, [BIN, ...args], opts);
}

export function runProcess(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? CHILD_ENV });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `kvlab-${prefix}-`));
}

/**
 * A small perplexity sweep on the built-in model (1 segment of 128 tokens): the f32 baseline and
 * the listed backends. Returns the config's path.
 */
export function smallConfig(dir: string, name: string, caches: string[], text = "builtin:sotu"): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      "model: builtin:sotu-llama-long",
      `text: ${text}`,
      "protocol: { type: chunked, ctx: 128, chunks: 1, chunkSize: 32 }",
      "caches:",
      ...caches.map((c) => `  - ${c}`),
      "",
    ].join("\n"),
  );
  return file;
}

export const SMALL_CACHES = [
  "f16",
  "int8",
  "int4",
  "{ name: window-32, policy: { type: window, budget: 32 } }",
  "{ name: h2o-32, policy: { type: h2o, budget: 32 } }",
];

/** table.json rows of a folder without the columns that measure time (they differ between runs). */
export function tableRows(dir: string): Record<string, unknown>[] {
  const t = JSON.parse(readFileSync(join(dir, "table.json"), "utf8")) as { rows: Record<string, unknown>[] };
  return t.rows.map(({ tokensPerSecond: _t, ...rest }) => rest);
}

/** Every record line of every run file in a folder, parsed. */
export function allRecordLines(dir: string): { specHash: string; status: string; file: string }[] {
  const out: { specHash: string; status: string; file: string }[] = [];
  for (const name of readdirSync(dir).sort())
    if (/^runs(\..+)?\.jsonl$/.test(name))
      for (const line of readFileSync(join(dir, name), "utf8").split("\n"))
        if (line.trim())
          out.push({ ...(JSON.parse(line) as { specHash: string; status: string }), file: name });
  return out;
}

/** Why a test that needs redis-server must be skipped, or false when it is installed. */
export function skipUnlessRedis(): string | false {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return false;
  } catch {
    const reason = "redis-server is not installed (apt-get install redis-server; .ci/run installs it)";
    console.log(`# skipped: ${reason}`);
    return reason;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A private redis-server (no persistence) on a free loopback port, its files in a temporary folder. */
export async function startRedis(): Promise<RedisServer> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const dir = tempDir("redis");
    const child: ChildProcess = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let log = "";
    const ready = await new Promise<boolean>((resolve) => {
      child.stdout!.on("data", (d) => {
        log += d;
        if (log.includes("Ready to accept connections")) resolve(true);
      });
      child.on("exit", () => resolve(false));
    });
    if (!ready) {
      if (attempt < 3) continue; // the port was taken between probing and binding
      throw new Error(`redis-server did not start:\n${log}`);
    }
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    };
  }
}
