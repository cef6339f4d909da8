/**
 * Long-context decode with a compressed KV cache, kvlab against llama.cpp with its own cache
 * types (issue 15 lever 4): SmolLM2-135M shape, F16 weights on disk on both sides, a
 * `promptTokens`-token context (4096) then `windows` x `windowTokens` (3 x 128) greedy decode
 * steps, K/V f16 / q8_0 / q4_0, the same thread counts; each window is one repeat, the median
 * is reported, and kvlab's and llama.cpp's runs of one (threads, KV type) follow each other.
 *
 *   node --import tsx bench/peers/decode-vs-llamacpp.ts [--threads 1,2] [--kv f16,q8_0,q4_0]
 *     [--prompt 4096] [--windows 3] [--window 128] [--out results/bench/peer-decode]
 *     [--window-budget 25] [--llama-timeout 600]
 *   [--extra q8_0+q8-query,q4_0+q8-query,int8,int4]
 *   (--extra names kvlab-only specs; "<preset>+q8-query" runs a preset with query: q8, which
 *   for q8_0 / q4_0 is what llama.cpp computes, so it gets its own ratio against that llama.cpp
 *   row; the preset's own row is kvlab exact, f32 queries)
 *
 * kvlab: `kvlab synth-model --shape smollm2-135m --dtype f16` (random weights, kept 16-bit and
 * widened inside the matmul, loadModel's default; kvlab computes in f32), wasm executor, the cache filled with `promptTokens` tokens of
 * random K/V through cache.append (the codec encodes them exactly as a prefill would; decode's
 * work does not depend on the values, and kvlab's ref-run q8_0/q4_0 prefill of 4K tokens would
 * take many minutes), then one forward per token with the argmax of its logits fed back.
 * Time spent in cache.attend is measured per window (the attention share of a decode step).
 * llama.cpp: bench/peers/decode-llamacpp-child.ts on a GGUF of the same shape with random F16
 * weights (bench/peers/gguf-writer.ts), a real prefill of the prompt, flash attention on.
 * Random weights give garbage tokens but the same work per token as trained ones.
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createCache } from "../../src/cache/create.ts";
import type { KVCache } from "../../src/cache/types.ts";
import { createWasmExecutor } from "../../src/kernels/wasm.ts";
import { argmax } from "../../src/model/generate.ts";
import { loadModel } from "../../src/model/load.ts";
import { fillAllLayers } from "../lib/cache.ts";
import { lastJson, runChild } from "../lib/child.ts";
import { MODEL_SHAPES } from "../lib/model-shapes.ts";
import { writeGguf } from "./gguf-writer.ts";

const PEERS_DIR = fileURLToPath(new URL("./", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const SHAPE = "smollm2-135m";
/**
 * kvlab-only extra names ending so run the preset with query: q8 (e.g. q8_0+q8-query). For a
 * q8_0 or q4_0 cache this is the computation llama.cpp's CPU flash attention does (ggml-cpu
 * ops.cpp, ggml_compute_forward_flash_attn_ext_f16_one_chunk: the query row is converted with
 * the from_float of the K type's vec_dot_type, which ggml-cpu.c's type_traits_cpu gives as
 * GGML_TYPE_Q8_0 for both, so the scores are ggml_vec_dot_q8_0_q8_0 / q4_0_q8_0 over a q8_0
 * query; V rows are dequantized to f32 (v_to_float) and accumulated in f32 (ggml_vec_mad_f32)),
 * so such a row is compared with llama.cpp's row of the preset (likeLlamaCpp).
 */
const Q8_SUFFIX = "+q8-query";
/** Untimed decode steps before the first window on both sides (first-call costs, cache warm). */
const WARMUP = 8;
/**
 * kvlab also warms up for at least this long (up to WARMUP_MAX steps): V8 runs a wasm function
 * in its baseline compiler (Liftoff) until it is hot, then compiles it with TurboFan in the
 * background, and the largest attention kernels take ~0.3 s each to compile on an idle core
 * (--trace-wasm-compilation-times). With 8 steps (~0.4 s) a cache type whose kernels were not
 * used before ran its first window slow (17.7 then 22.6, 22.1 tok/s in the Dec 6 08:41 run).
 */
const WARMUP_S = 2;
const WARMUP_MAX = 64;

export interface DecodeCompareOptions {
  threads: number[];
  /** Cache types as both sides name them: f16, q8_0, q4_0. */
  kvTypes: string[];
  /** kvlab-only cache specs measured alongside (its wasm-kernel codecs, e.g. int8, int4). */
  kvlabExtra: string[];
  promptTokens: number;
  windows: number;
  windowTokens: number;
  /** A kvlab window ends after this many seconds even if short of windowTokens steps (ref-run codecs). */
  windowBudgetS: number;
  /** The llama.cpp child (prefill + decode of one cache type) is stopped after this many seconds. */
  llamaTimeoutS: number;
}

export const DEFAULT_DECODE_OPTIONS: DecodeCompareOptions = {
  threads: [1, 2],
  kvTypes: ["f16", "q8_0", "q4_0"],
  kvlabExtra: ["q8_0+q8-query", "q4_0+q8-query", "int8", "int4"],
  promptTokens: 4096,
  windows: 3,
  windowTokens: 128,
  windowBudgetS: 25,
  llamaTimeoutS: 600,
};

export interface DecodeRow {
  side: "kvlab" | "llama.cpp";
  threads: number;
  kv: string;
  /** tokens/s of each measured window. */
  windows: number[];
  /** Decode steps in each window (fewer than windowTokens when kvlab's window budget ran out). */
  steps: number[];
  median: number;
  /** kvlab: share of decode time inside cache.attend; llama.cpp: null. */
  attendShare: number | null;
  /** kvlab: ops run by ref instead of wasm during decode (name x calls). */
  fallbacks: string;
  promptSeconds: number | null;
  load: number;
}

export interface DecodeCompareResult {
  options: DecodeCompareOptions;
  rows: DecodeRow[];
  skipped: string[];
  llamaCppRelease: string;
  nodeLlamaCpp: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The cache with the time spent in attend summed (every other member the cache's own, bound). */
export function timeAttend(cache: KVCache): { cache: KVCache; ms: () => number } {
  let ms = 0;
  const proxy = new Proxy(cache, {
    get(target, prop) {
      if (prop === "attend")
        return async (...a: Parameters<KVCache["attend"]>) => {
          const t0 = performance.now();
          await target.attend(...a);
          ms += performance.now() - t0;
        };
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { cache: proxy, ms: () => ms };
}

async function ensureKvlabModel(dir: string): Promise<string | null> {
  if (existsSync(path.join(dir, "config.json"))) return null;
  const r = await runChild(
    process.execPath,
    [
      "--import",
      "tsx",
      path.join(REPO, "src/cli.ts"),
      "synth-model",
      "--shape",
      SHAPE,
      "--out",
      dir,
      "--dtype",
      "f16",
    ],
    { cwd: REPO, timeoutS: 600 },
  );
  return r.code === 0
    ? null
    : `synth-model failed (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`;
}

export async function runDecodeComparison(
  o: DecodeCompareOptions,
  log: (s: string) => void = console.log,
  /** Called after each measured row (the CLI rewrites its output, so a stopped run keeps what it measured). */
  onRow: (partial: DecodeCompareResult) => Promise<void> = async () => {},
): Promise<DecodeCompareResult> {
  const shape = MODEL_SHAPES[SHAPE]!;
  const work = path.join(os.tmpdir(), "kvlab-bench");
  await mkdir(work, { recursive: true });
  const modelDir = path.join(work, `synth-${SHAPE}-f16`);
  const gguf = path.join(work, `${SHAPE}-f16-ctx8192.gguf`);
  const result: DecodeCompareResult = {
    options: o,
    rows: [],
    skipped: [],
    llamaCppRelease: "",
    nodeLlamaCpp: "",
  };
  const err = await ensureKvlabModel(modelDir);
  if (err) result.skipped.push(err);
  if (!existsSync(gguf)) await writeGguf(gguf, shape, "F16", 8192);
  const haveLlama = existsSync(path.join(PEERS_DIR, "node_modules/node-llama-cpp/package.json"));
  if (!haveLlama)
    result.skipped.push(
      "bench/peers/node_modules is absent (npm install --no-save in bench/peers): no llama.cpp side",
    );
  const decodeTokens = o.windows * o.windowTokens;

  for (const threads of o.threads) {
    const exec = err ? null : await createWasmExecutor({ threads });
    const model = exec ? await loadModel(modelDir, { executor: exec }) : null;
    for (const kv of [...o.kvTypes, ...o.kvlabExtra]) {
      if (model && exec) {
        // "<preset>+q8-query": the preset with the integer-query option (query: q8), as
        // llama.cpp's CPU path quantizes the query to q8_0 for its quantized-K dot products
        const spec = kv.endsWith(Q8_SUFFIX)
          ? { preset: kv.slice(0, -Q8_SUFFIX.length), query: "q8" as const }
          : kv;
        const raw = await createCache(spec, model.kvShape(o.promptTokens + WARMUP_MAX + decodeTokens + 1), {
          executor: exec,
        });
        // Fill: promptTokens tokens of random K/V per layer, in chunks of 512, through the codec.
        await fillAllLayers(raw, shape, o.promptTokens);
        const { cache, ms } = timeAttend(raw);
        exec.fallbacks.clear();
        const one = new Int32Array([5]); // (1)
        const pos = new Int32Array(1); // (1)
        const windows: number[] = [];
        const steps: number[] = [];
        let attendMs = 0;
        let decodeMs = 0;
        let p = o.promptTokens;
        const step = async () => {
          pos[0] = p++;
          const logits = await model.forward(one, pos, cache);
          one[0] = argmax(logits.subarray(0, shape.vocabSize));
        };
        const w0 = performance.now();
        for (let i = 0; i < WARMUP_MAX && (i < WARMUP || performance.now() - w0 < WARMUP_S * 1000); i++)
          await step();
        for (let w = 0; w < o.windows; w++) {
          const a0 = ms();
          const t0 = performance.now();
          let i = 0;
          while (i < o.windowTokens && (performance.now() - t0) / 1000 < o.windowBudgetS) {
            await step();
            i++;
          }
          const dt = performance.now() - t0;
          windows.push((i * 1000) / dt);
          steps.push(i);
          attendMs += ms() - a0;
          decodeMs += dt;
        }
        raw.dispose();
        const row: DecodeRow = {
          side: "kvlab",
          threads,
          kv,
          windows,
          steps,
          median: median(windows),
          attendShare: attendMs / decodeMs,
          fallbacks: [...exec.fallbacks].map(([k, n]) => `${k} x${n}`).join(", "),
          promptSeconds: null,
          load: os.loadavg()[0]!,
        };
        result.rows.push(row);
        await onRow(result);
        log(
          `  kvlab     t${threads} ${kv.padEnd(5)} decode ${windows.map((x) => x.toFixed(1)).join(" ")} tok/s (median ${row.median.toFixed(1)}), attend ${(100 * row.attendShare!).toFixed(0)}%${row.fallbacks ? `, ref fallbacks: ${row.fallbacks}` : ""}, load ${row.load.toFixed(1)}`,
        );
      }
      if (!haveLlama || !o.kvTypes.includes(kv)) continue;
      const opts = {
        model: gguf,
        threads,
        kvType: kv.toUpperCase(),
        promptTokens: o.promptTokens,
        warmup: WARMUP,
        windows: o.windows,
        windowTokens: o.windowTokens,
        vocabSize: shape.vocabSize,
      };
      const r = await runChild(
        process.execPath,
        ["--import", "tsx", path.join(PEERS_DIR, "decode-llamacpp-child.ts"), JSON.stringify(opts)],
        { cwd: REPO, timeoutS: o.llamaTimeoutS },
      );
      const j = lastJson(r.stdout);
      if (r.code !== 0 || !j) {
        result.skipped.push(
          `llama.cpp t${threads} ${kv}: ${r.timedOut ? `timed out after ${o.llamaTimeoutS} s` : `exit ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ")}`}`,
        );
        continue;
      }
      result.llamaCppRelease = String(j.llamaCppRelease ?? "");
      const windows = j.decodeTokensPerS as number[];
      const row: DecodeRow = {
        side: "llama.cpp",
        threads,
        kv,
        windows,
        steps: windows.map(() => o.windowTokens),
        median: median(windows),
        attendShare: null,
        fallbacks: "",
        promptSeconds: j.promptSeconds as number,
        load: os.loadavg()[0]!,
      };
      result.rows.push(row);
      await onRow(result);
      log(
        `  llama.cpp t${threads} ${kv.padEnd(5)} decode ${windows.map((x) => x.toFixed(1)).join(" ")} tok/s (median ${row.median.toFixed(1)}), prompt ${row.promptSeconds!.toFixed(1)} s, flash attention ${j.flashAttention}, load ${row.load.toFixed(1)}`,
      );
    }
    model?.dispose();
  }
  if (haveLlama) {
    const { readFileSync } = await import("node:fs");
    result.nodeLlamaCpp = String(
      JSON.parse(readFileSync(path.join(PEERS_DIR, "node_modules/node-llama-cpp/package.json"), "utf8"))
        .version,
    );
  }
  return result;
}

/**
 * The llama.cpp cache type a kvlab row is compared with: a measured type itself (kvlab exact,
 * f32 queries), "<q8_0|q4_0>+q8-query" that type (kvlab with q8_0 queries, the math llama.cpp's
 * CPU path does for these K types, see Q8_SUFFIX), else null (kvlab only, e.g. int8).
 */
export function likeLlamaCpp(kv: string, kvTypes: string[]): string | null {
  if (kvTypes.includes(kv)) return kv;
  const base = kv.endsWith(Q8_SUFFIX) ? kv.slice(0, -Q8_SUFFIX.length) : null;
  return base && (base === "q8_0" || base === "q4_0") && kvTypes.includes(base) ? base : null;
}

/** The targets-table name of a kvlab row compared with llama.cpp (likeLlamaCpp not null). */
export function decodeTargetName(ctx: string, kv: string, threads: number): string {
  const q8 = kv.endsWith(Q8_SUFFIX);
  const base = q8 ? kv.slice(0, -Q8_SUFFIX.length) : kv;
  return q8
    ? `decode tok/s at ${ctx} context ${base} cache, q8_0 queries as llama.cpp, kvlab / llama.cpp (${threads} thr)`
    : `decode tok/s at ${ctx} context ${base} cache kvlab / llama.cpp (${threads} thr)`;
}

/**
 * kvlab median / llama.cpp median for one (threads, KV type), or null when a side is missing;
 * a "+q8-query" row against llama.cpp's row of its preset (likeLlamaCpp).
 */
export function decodeRatio(
  rows: DecodeRow[],
  threads: number,
  kv: string,
  kvTypes?: string[],
): number | null {
  const peer = kvTypes ? likeLlamaCpp(kv, kvTypes) : kv;
  const a = rows.find((r) => r.side === "kvlab" && r.threads === threads && r.kv === kv);
  const b = rows.find((r) => r.side === "llama.cpp" && r.threads === threads && r.kv === peer);
  return a && b ? a.median / b.median : null;
}

export function decodeMarkdown(res: DecodeCompareResult, command: string): string {
  const o = res.options;
  const f = (x: number | null, d = 1) => (x === null ? "-" : x.toFixed(d));
  const lines = [
    "# Long-context decode: kvlab vs llama.cpp (issue 15 lever 4)",
    "",
    `${new Date().toISOString()}; ${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores, node ${process.version}; node-llama-cpp ${res.nodeLlamaCpp || "-"}, llama.cpp release "${res.llamaCppRelease || "-"}" as node-llama-cpp records it.`,
    `Command: \`${command}\``,
    "",
    `SmolLM2-135M shape, random F16 weights on both sides (kvlab keeps them 16-bit and widens inside the matmul), ${o.promptTokens}-token context then ${WARMUP} untimed (kvlab: at least ${WARMUP} and ${WARMUP_S} s, at most ${WARMUP_MAX}: V8 compiles hot wasm functions with TurboFan in the background) and ${o.windows} windows of ${o.windowTokens} greedy decode steps (a kvlab window stops early after ${o.windowBudgetS} s; context up to ${o.promptTokens + WARMUP_MAX + o.windows * o.windowTokens} tokens); tok/s per window and their median. kvlab: wasm executor, cache filled with ${o.promptTokens} tokens of random K/V through its codec; llama.cpp: real prefill, flash attention on, K and V of the named type.`,
    "",
    "| threads | KV | kvlab tok/s (windows) | kvlab median | attend share | llama.cpp tok/s (windows) | llama.cpp median | kvlab / llama.cpp | load |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const t of o.threads)
    for (const kv of [...o.kvTypes, ...o.kvlabExtra]) {
      const peer = likeLlamaCpp(kv, o.kvTypes);
      const a = res.rows.find((r) => r.side === "kvlab" && r.threads === t && r.kv === kv);
      const b = res.rows.find((r) => r.side === "llama.cpp" && r.threads === t && r.kv === peer);
      if (!a && !b) continue;
      // exact: kvlab with f32 queries; a +q8-query row is compared with llama.cpp's row of its preset
      const label =
        peer === kv && peer !== "f16"
          ? `${kv} (exact)`
          : peer && peer !== kv
            ? `${kv} (vs llama.cpp ${peer})`
            : kv;
      lines.push(
        `| ${t} | ${label} | ${a ? a.windows.map((x, i) => (a.steps[i] === o.windowTokens ? x.toFixed(1) : `${x.toFixed(2)} (${a.steps[i]} steps)`)).join(", ") : "-"} | ${f(a?.median ?? null)} | ${a?.attendShare != null ? `${(100 * a.attendShare).toFixed(0)}%` : "-"} | ${b ? b.windows.map((x) => x.toFixed(1)).join(", ") : "-"} | ${f(b?.median ?? null)} | ${f(decodeRatio(res.rows, t, kv, o.kvTypes), 3)} | ${Math.max(a?.load ?? 0, b?.load ?? 0).toFixed(1)} |`,
      );
    }
  const fb = res.rows.filter((r) => r.fallbacks);
  if (fb.length) {
    lines.push("", "kvlab ops run by `ref` (TypeScript) instead of wasm kernels during decode:");
    for (const r of fb) lines.push(`- t${r.threads} ${r.kv}: ${r.fallbacks}`);
  }
  for (const s of res.skipped) lines.push("", `- skipped: ${s}`);
  return `${lines.join("\n")}\n`;
}

function parseCli(argv: string[]): { o: DecodeCompareOptions; out: string } {
  const o = { ...DEFAULT_DECODE_OPTIONS };
  let out = path.join(REPO, "results/bench/peer-decode");
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1] ?? ""];
    if (k === "--threads") o.threads = v.split(",").map(Number);
    else if (k === "--kv") o.kvTypes = v.split(",");
    else if (k === "--extra") o.kvlabExtra = v ? v.split(",") : [];
    else if (k === "--prompt") o.promptTokens = Number(v);
    else if (k === "--windows") o.windows = Number(v);
    else if (k === "--window") o.windowTokens = Number(v);
    else if (k === "--window-budget") o.windowBudgetS = Number(v);
    else if (k === "--llama-timeout") o.llamaTimeoutS = Number(v);
    else if (k === "--out") out = v;
    else
      throw new Error(
        `decode-vs-llamacpp: unknown option ${k}; see the header of bench/peers/decode-vs-llamacpp.ts`,
      );
  }
  return { o, out };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { o, out } = parseCli(process.argv.slice(2));
  const command =
    `node --import tsx bench/peers/decode-vs-llamacpp.ts ${process.argv.slice(2).join(" ")}`.trim();
  console.log(
    `${command}; load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  await mkdir(out, { recursive: true });
  // Rewritten after every row, so a run stopped early keeps what it measured.
  const save = async (res: DecodeCompareResult, complete: boolean): Promise<string> => {
    const json = { date: new Date().toISOString(), command, complete, ...res };
    await writeFile(path.join(out, "decode.json"), `${JSON.stringify(json, null, 2)}\n`);
    const md = `${decodeMarkdown(res, command)}${complete ? "" : "\n(incomplete: written while the run was still going)\n"}`;
    await writeFile(path.join(out, "decode.md"), md);
    return md;
  };
  const res = await runDecodeComparison(o, console.log, async (r) => {
    await save(r, false);
  });
  console.log(await save(res, true));
  process.exit(0);
}
