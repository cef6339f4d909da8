/** Run a child process, capture its output, and read its peak RSS (see rss-hook.mjs). */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Peak resident set of the child, MiB (null when the hook did not report). */
  maxRssMiB: number | null;
  timedOut: boolean;
}

export const RSS_HOOK = fileURLToPath(new URL("./rss-hook.mjs", import.meta.url));

export function runChild(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutS: number; cwd?: string },
): Promise<ChildResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutS * 1000);
    child.on("close", (code) => {
      clearTimeout(timer);
      const m = /KVLAB_BENCH_MAXRSS_KB=(\d+)/.exec(stderr);
      resolve({
        code,
        stdout,
        stderr: stderr.replace(/KVLAB_BENCH_MAXRSS_KB=\d+\n?/, ""),
        seconds: (performance.now() - t0) / 1000,
        maxRssMiB: m ? Number(m[1]) / 1024 : null,
        timedOut,
      });
    });
  });
}

/** The last JSON object line a child printed, or null. */
export function lastJson(stdout: string): Record<string, unknown> | null {
  const lines = stdout.trim().split("\n").reverse();
  for (const l of lines)
    if (l.startsWith("{"))
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {}
  return null;
}
