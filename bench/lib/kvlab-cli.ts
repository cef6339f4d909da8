/**
 * How the bench runs `kvlab` as a child process, in its two forms:
 *   - "dist": the compiled dist/cli.js, which is what an installed kvlab (the npm package's
 *     bin/kvlab.js) runs, with no TypeScript loader. Built here (tools/build-dist.mjs) when it is
 *     missing or older than any file under src/, so it is never a stale build that is measured.
 *   - "tsx": src/cli.ts under the tsx loader, as bin/kvlab.js runs it in a checkout. The loader
 *     and its transpiled sources cost about 30 MiB of peak RSS more than dist
 *     (results/bench/rss/README.md), so the forward sections report both figures and hold the
 *     peak RSS target to the installed one.
 * Both load rss-hook.mjs, which reports the child's peak RSS (bench/lib/child.ts).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type ChildResult, lastJson, RSS_HOOK, runChild } from "./child.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const CLI_TS = path.join(REPO, "src/cli.ts");
export const CLI_DIST = path.join(REPO, "dist/cli.js");

export type KvlabForm = "dist" | "tsx";

/** Node arguments that run `kvlab <args>` in the given form with the peak-RSS hook. */
export function kvlabArgv(form: KvlabForm, args: string[]): string[] {
  return form === "dist"
    ? ["--import", RSS_HOOK, CLI_DIST, ...args]
    : ["--import", "tsx", "--import", RSS_HOOK, CLI_TS, ...args];
}

/** Newest modification time (ms) of the files under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    newest = Math.max(newest, statSync(path.join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

let distState: Promise<{ ok: boolean; detail: string }> | null = null;

/**
 * Make sure dist/cli.js is there and built from the current src/ (building it when missing or
 * stale, once per bench process). ok false, with the reason, when the build fails: the caller
 * then reports the installed form as not measured rather than measuring something else.
 */
export function ensureDist(): Promise<{ ok: boolean; detail: string }> {
  distState ??= (async () => {
    const have = existsSync(CLI_DIST);
    if (have && statSync(CLI_DIST).mtimeMs >= newestMtime(path.join(REPO, "src")))
      return { ok: true, detail: "dist/ up to date" };
    console.log(
      `  ${have ? "dist/ is older than src/" : "no dist/"}: building it (node tools/build-dist.mjs)`,
    );
    const r = spawnSync(process.execPath, [path.join(REPO, "tools/build-dist.mjs")], {
      cwd: REPO,
      encoding: "utf8",
      timeout: 600_000,
    });
    if (r.status !== 0 || !existsSync(CLI_DIST))
      return {
        ok: false,
        detail: `tools/build-dist.mjs failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ")}`,
      };
    return { ok: true, detail: "dist/ built by the bench" };
  })();
  return distState;
}

/** `kvlab <args>` as a child in the given form, from the repository root, with its peak RSS. */
export function runKvlab(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutS: number,
  form: KvlabForm = "tsx",
): Promise<ChildResult> {
  return runChild(process.execPath, kvlabArgv(form, args), { cwd: REPO, env, timeoutS });
}

/** One line on why a kvlab child failed: its first error line (else its last line) and exit code. */
export function whyFailed(r: ChildResult): string {
  if (r.timedOut) return "timed out";
  const lines = (r.stderr || r.stdout).trim().split("\n");
  const err = lines.find((l) => /Error|error:/.test(l)) ?? lines.at(-1) ?? "";
  return `exit ${r.code}: ${err.trim()}`;
}

/**
 * Peak RSS (MiB) of a `kvlab ppl ... --json` run as installed (dist/cli.js), whose ppl must equal
 * `ppl`, the timed (tsx) run's: the same computation, so only the form differs. Else why not.
 */
export async function installedPeakRss(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutS: number,
  ppl: unknown,
): Promise<{ mib: number } | { why: string }> {
  const dist = await ensureDist();
  if (!dist.ok) return { why: `dist/cli.js not built: ${dist.detail}` };
  const r = await runKvlab(args, env, timeoutS, "dist");
  const j = lastJson(r.stdout);
  if (r.code !== 0 || !j) return { why: whyFailed(r) };
  if (j.ppl !== ppl) return { why: `ppl ${j.ppl} differs from src's ${ppl}` };
  if (r.maxRssMiB === null) return { why: "no peak RSS reported" };
  return { mib: r.maxRssMiB };
}
