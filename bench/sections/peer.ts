/**
 * Section 5, the native peer: llama.cpp through node-llama-cpp (installed in bench/peers/ with
 * its own package.json; prebuilt binaries ship inside npm packages). Same model shapes as the
 * forward section, written as GGUF with random weights by bench/peers/gguf-writer.ts, same
 * thread counts: prompt processing (one 512-token batch from an empty cache) and decode
 * (one token per evaluation) tokens/s, KV cache types f16, q8_0, q4_0.
 * Then long-context decode against llama.cpp's own cache types (issue 15 lever 4): a 4096-token
 * context then 3 x 128 decode steps, K/V f16 / q8_0 / q4_0, F16 weights on both sides
 * (bench/peers/decode-vs-llamacpp.ts, run as a child; --quick: 1 thread, 1 window).
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { lastJson, runChild } from "../lib/child.ts";
import type { BenchContext } from "../lib/context.ts";
import { MODEL_SHAPES, paramCount } from "../lib/model-shapes.ts";
import { check, newSection, type SectionResult, skip } from "../lib/report.ts";
import {
  type DecodeCompareResult,
  decodeRatio,
  decodeTargetName,
  likeLlamaCpp,
} from "../peers/decode-vs-llamacpp.ts";
import { writeGguf } from "../peers/gguf-writer.ts";

const PEERS_DIR = fileURLToPath(new URL("../peers/", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const PROMPT_TOKENS = 512;
/** Weights in f32: kvlab computes in f32, so this compares kernels, not formats. */
const WEIGHT_TYPE = "F32";

export interface PeerRecord {
  model: string;
  threads: number;
  kvType: string;
  ppTokensPerS: number;
  decodeTokensPerS: number;
  maxRssMiB: number | null;
}

/**
 * Install the peer from bench/peers/package-lock.json when it is missing. `npm install
 * --no-save`, not `npm ci`: the lock holds node-llama-cpp's prebuilt binaries for Linux only
 * (written where the registry serves no other platform's), which `npm ci` refuses as out of sync
 * with the optional dependencies of every platform; install resolves the same versions from
 * the lock, skips optional packages it cannot fetch, and leaves the lock as committed.
 */
async function ensurePeer(section: SectionResult): Promise<boolean> {
  if (existsSync(path.join(PEERS_DIR, "node_modules/node-llama-cpp/package.json"))) return true;
  console.log("  installing node-llama-cpp in bench/peers (npm install --no-save)...");
  const r = await runChild("npm", ["install", "--no-audit", "--no-fund", "--no-save"], {
    cwd: PEERS_DIR,
    timeoutS: 600,
    env: { NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" },
  });
  if (r.code !== 0) {
    skip(
      section,
      `npm install in bench/peers failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ")}`,
    );
    return false;
  }
  return true;
}

export async function runPeer(ctx: BenchContext, done: SectionResult[]): Promise<SectionResult> {
  const section = newSection("peer");
  if (!(await ensurePeer(section))) return section;
  const dir = path.join(os.tmpdir(), "kvlab-bench");
  await mkdir(dir, { recursive: true });
  const models = ctx.args.quick ? ["smollm2-135m"] : ["smollm2-135m", "qwen2.5-0.5b"];
  const decodeTokens = 32;
  const threadList = [1, 2];
  const rows: (string | number | null)[][] = [];
  const records: PeerRecord[] = [];
  let release = "";
  for (const name of models) {
    const shape = MODEL_SHAPES[name]!;
    const file = path.join(dir, `${name}-${WEIGHT_TYPE.toLowerCase()}.gguf`);
    if (!existsSync(file)) {
      const t0 = Date.now();
      await writeGguf(file, shape, WEIGHT_TYPE, 4096);
      console.log(
        `  wrote ${file} (${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    // KV types on the first model at 1 thread; otherwise f16 only (2 threads = the scaling figure), for time.
    for (const threads of threadList)
      for (const kvType of ctx.args.quick || threads > 1 || name !== models[0]
        ? ["F16"]
        : ["F16", "Q8_0", "Q4_0"]) {
        const opts = {
          model: file,
          threads,
          kvType,
          promptTokens: PROMPT_TOKENS,
          decodeTokens,
          decodeSeconds: 15,
          vocabSize: shape.vocabSize,
        };
        const r = await runChild(
          process.execPath,
          ["--import", "tsx", path.join(PEERS_DIR, "llama-bench.ts"), JSON.stringify(opts)],
          {
            cwd: REPO,
            timeoutS: 300,
          },
        );
        const j = lastJson(r.stdout);
        if (r.code !== 0 || !j) {
          const why = r.timedOut
            ? "timed out after 300 s"
            : `exit ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-4).join(" | ")}`;
          skip(section, `llama.cpp ${name} t${threads} ${kvType}: ${why}`);
          continue;
        }
        release = String(j.llamaCppRelease ?? "");
        const rec: PeerRecord = {
          model: name,
          threads,
          kvType: kvType.toLowerCase(),
          ppTokensPerS: j.ppTokensPerS as number,
          decodeTokensPerS: j.decodeTokensPerS as number,
          maxRssMiB: (j.maxRssMiB as number) ?? null,
        };
        records.push(rec);
        console.log(
          `  llama.cpp ${name} ${threads} thread(s) KV ${rec.kvType}: pp ${rec.ppTokensPerS.toFixed(1)} tok/s, decode ${rec.decodeTokensPerS.toFixed(1)} tok/s`,
        );
        section.records.push({
          ...rec,
          weights: WEIGHT_TYPE,
          params: paramCount(shape),
          flashAttention: j.flashAttention,
        });
        const t1 = records.find((x) => x.model === name && x.kvType === rec.kvType && x.threads === 1);
        rows.push([
          name,
          threads,
          rec.kvType,
          rec.ppTokensPerS,
          rec.decodeTokensPerS,
          t1 && threads > 1 ? rec.ppTokensPerS / t1.ppTokensPerS : null,
          rec.maxRssMiB,
        ]);
      }
  }
  peerTargets(section, records, done);
  await decodeAtLongContext(section, ctx.args.quick);
  section.tables.push({
    title: `Native peer: llama.cpp via node-llama-cpp, ${WEIGHT_TYPE} weights, ${PROMPT_TOKENS}-token prompt, up to ${decodeTokens} decode steps or 15 s`,
    columns: ["model", "threads", "KV type", "prompt tok/s", "decode tok/s", "pp x 1 thread", "peak RSS MiB"],
    rows,
    notes: [
      "GGUF of the same shape with random weights and a synthetic vocab (bench/peers/gguf-writer.ts); token ids are fed directly.",
      `flash attention on for every KV type (llama.cpp needs it for quantized V); node-llama-cpp ${peerVersion()}, llama.cpp release "${release || "?"}" as its build metadata records it.`,
    ],
  });
  return section;
}

/** kvlab prompt processing / llama.cpp's, same shape and threads (llama.cpp with its default f16 KV). */
function peerTargets(section: SectionResult, peer: PeerRecord[], done: SectionResult[]): void {
  const forward = done.find((s) => s.name === "forward")?.records ?? [];
  const rows: (string | number | null)[][] = [];
  for (const p of peer.filter((x) => x.kvType === "f16"))
    for (const mode of ["prompt", "decode"] as const) {
      const k = forward.find((r) => r.model === p.model && r.threads === p.threads && r.mode === mode);
      const kv = k ? (k.tokensPerS as number) : null;
      const theirs = mode === "prompt" ? p.ppTokensPerS : p.decodeTokensPerS;
      rows.push([p.model, p.threads, mode, kv, theirs, kv !== null && theirs > 0 ? kv / theirs : null]);
      if (mode === "prompt")
        section.targets.push(
          check(
            `prompt tok/s kvlab / llama.cpp (${p.model}, ${p.threads} thr)`,
            ">= 0.5",
            kv !== null ? kv / theirs : null,
            kv !== null ? `${kv.toFixed(1)} vs ${theirs.toFixed(1)} tok/s` : "kvlab forward not measured",
          ),
        );
    }
  section.tables.push({
    title: "kvlab vs llama.cpp, same shape and threads",
    columns: ["model", "threads", "mode", "kvlab tok/s", "llama.cpp tok/s", "kvlab / llama.cpp"],
    rows,
    notes: [
      "kvlab: wasm executor, f32 weights and f32 KV; llama.cpp: f32 weights, f16 KV. kvlab decode is measured at ctx 64, llama.cpp's after a 512-token prompt.",
    ],
  });
}

function peerVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(path.join(PEERS_DIR, "node_modules/node-llama-cpp/package.json"), "utf8"),
    );
    return String(pkg.version);
  } catch {
    return "?";
  }
}

/** Long-context decode, kvlab vs llama.cpp per cache type (issue 15 lever 4), from a child run. */
async function decodeAtLongContext(section: SectionResult, quick: boolean): Promise<void> {
  if (!existsSync(path.join(PEERS_DIR, "node_modules"))) {
    skip(
      section,
      "long-context decode: bench/peers/node_modules is absent (run npm install --no-save in bench/peers)",
    );
    return;
  }
  const out = path.join(os.tmpdir(), "kvlab-bench", "peer-decode");
  const args = quick ? ["--threads", "1", "--windows", "1", "--extra", "q8_0+q8-query"] : [];
  const r = await runChild(
    process.execPath,
    ["--import", "tsx", path.join(PEERS_DIR, "decode-vs-llamacpp.ts"), ...args, "--out", out],
    { cwd: REPO, timeoutS: 1800 },
  );
  if (r.code !== 0 || !existsSync(path.join(out, "decode.json"))) {
    skip(
      section,
      `long-context decode: ${r.timedOut ? "timed out after 1800 s" : `exit ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-4).join(" | ")}`}`,
    );
    return;
  }
  const res = JSON.parse(readFileSync(path.join(out, "decode.json"), "utf8")) as DecodeCompareResult;
  for (const s of res.skipped) skip(section, `long-context decode: ${s}`);
  const o = res.options;
  const ctxTokens = `${o.promptTokens / 1024}K`;
  const rows: (string | number | null)[][] = [];
  for (const t of o.threads)
    for (const kv of [...o.kvTypes, ...o.kvlabExtra]) {
      // The llama.cpp row this kvlab row is compared with: its own type (kvlab exact: f32
      // queries), or for "<q8_0|q4_0>+q8-query" that type, whose math it shares (llama.cpp's
      // CPU flash attention rounds the query to q8_0 for these K types); null: kvlab only.
      const peer = likeLlamaCpp(kv, o.kvTypes);
      const a = res.rows.find((x) => x.side === "kvlab" && x.threads === t && x.kv === kv);
      const b = res.rows.find((x) => x.side === "llama.cpp" && x.threads === t && x.kv === peer);
      if (!a && !b) continue;
      const ratio = decodeRatio(res.rows, t, kv, o.kvTypes);
      rows.push([
        t,
        peer === kv && kv !== "f16"
          ? `${kv} (exact)`
          : peer && peer !== kv
            ? `${kv} (vs llama.cpp ${peer})`
            : kv,
        a?.median ?? null,
        a?.attendShare ?? null,
        b?.median ?? null,
        ratio,
        a?.fallbacks || null,
      ]);
      if (peer === null) continue;
      section.records.push({
        longContextDecode: true,
        threads: t,
        kv,
        kvlab: a ?? null,
        llamacpp: b ?? null,
      });
      const name = decodeTargetName(ctxTokens, kv, t);
      const detail =
        a && b
          ? `${a.median.toFixed(1)} vs ${b.median.toFixed(1)} tok/s; kvlab attend ${(100 * (a.attendShare ?? 0)).toFixed(0)}% of decode`
          : "a side was not measured";
      section.targets.push(
        kv === "f16"
          ? { target: name, want: "baseline", measured: ratio, pass: null, detail }
          : check(name, ">= 1.0", ratio, detail),
      );
    }
  section.tables.push({
    title: `Decode at ${ctxTokens} context, smollm2-135m shape, F16 weights: kvlab (wasm) vs llama.cpp, per KV cache type`,
    columns: [
      "threads",
      "KV",
      "kvlab tok/s",
      "kvlab attend share",
      "llama.cpp tok/s",
      "kvlab / llama.cpp",
      "kvlab ref fallbacks",
    ],
    rows,
    notes: [
      `median of ${o.windows} window(s) of ${o.windowTokens} greedy decode steps after the ${o.promptTokens}-token context; kvlab fills its cache with random K/V through the codec, llama.cpp runs the prefill (flash attention on); random weights: garbage tokens, the same work.`,
      "kvlab keeps F16 weights 16-bit and widens them inside the matmul; '(exact)' rows are kvlab with f32 queries; '+q8-query' rows round the queries to q8_0, as llama.cpp's CPU flash attention does for q8_0 / q4_0 keys, and are compared with llama.cpp's row of that type; int8/int4 rows are kvlab only.",
      `full table with every window: bench/peers/decode-vs-llamacpp.ts (committed output: results/bench/peer-decode/); node-llama-cpp ${res.nodeLlamaCpp}.`,
    ],
  });
}
