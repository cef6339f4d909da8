/** Provenance recorded with every run: kvlab version, git commit, machine. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.ts";

export interface Provenance {
  kvlabVersion: string;
  /** HEAD commit, with "-dirty" when tracked files differ; null outside a git checkout. */
  gitCommit: string | null;
  machine: {
    hostname: string;
    platform: string;
    arch: string;
    cpuModel: string;
    cpus: number;
    totalMemBytes: number;
    node: string;
  };
}

function gitCommit(): string | null {
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "ignore"],
    })
      .toString()
      .trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "ignore"],
    })
      .toString()
      .trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return null;
  }
}

let cached: Provenance | undefined;

export function provenance(): Provenance {
  if (cached) return cached;
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  const cpus = os.cpus();
  cached = {
    kvlabVersion: pkg.version,
    gitCommit: gitCommit(),
    machine: {
      hostname: os.hostname(),
      platform: os.platform(),
      arch: os.arch(),
      cpuModel: cpus[0]?.model ?? "unknown",
      cpus: cpus.length,
      totalMemBytes: os.totalmem(),
      node: process.version,
    },
  };
  return cached;
}
