/**
 * Section 4, forward: tokens/s of `kvlab ppl` on `kvlab synth-model` outputs (smollm2-135m and
 * qwen2.5-0.5b shapes), each run as a child process with KVLAB_THREADS=1 and 2:
 *   - prompt processing: the llamacpp protocol, ctx 512 (one 512-token forward per segment);
 *   - decoding: the chunked protocol with chunk size 1 (token by token), ctx 128 to bound time.
 * synth-model writes f16 weights and kvlab keeps them 16-bit (src/kernels/weights.ts), so the
 * child's peak RSS is compared with f16 weights + KV cache (f32) + activations. Timed runs go
 * through src/cli.ts under tsx (the checkout's form); each configuration also runs once as an
 * installed kvlab runs (dist/cli.js, no TypeScript loader; bench/lib/kvlab-cli.ts), and the RSS
 * target holds that figure, with the checkout's beside it. The 1-2B shapes (qwen2.5-1.5b,
 * llama-3.2-1b) and their llama.cpp comparison: forward-large.ts.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { lastJson } from "../lib/child.ts";
import type { BenchContext } from "../lib/context.ts";
import { installedPeakRss, runKvlab, whyFailed } from "../lib/kvlab-cli.ts";
import { MODEL_SHAPES, type ModelShape, paramCount } from "../lib/model-shapes.ts";
import { check, newSection, type SectionResult, skip } from "../lib/report.ts";
import { runForwardLarge } from "./forward-large.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PP_CTX = 512;
const DECODE_CTX = 64;
/** Runs per configuration in a full run (--quick: 1); the fastest is reported. */
const FULL_ROUNDS = 3;

export interface ForwardRecord {
  model: string;
  threads: number;
  mode: "prompt" | "decode";
  tokensPerS: number;
  wallS: number;
  maxRssMiB: number | null;
  /** Peak RSS of the same run as an installed kvlab runs it (dist/cli.js, no tsx), MiB; null when not measured. */
  maxRssDistMiB: number | null;
  /** weights f16 + KV f32 + activations, MiB (the RSS target's denominator). */
  modelMemMiB: number;
  /** f16 weight bytes streamed per second: weight bytes per forward call x forward calls per second. */
  weightGBps: number;
  /** weightGBps / the DRAM read bandwidth of as many threads (roofline: 1 = at the memory limit). */
  xDramRead: number | null;
}

const kvlab = runKvlab;
const why = whyFailed;

/** Bytes the model needs: f16 weights (kept 16-bit), f32 KV for nCtx, and one forward's activations. */
export function modelBytes(s: ModelShape, nCtx: number): number {
  const weights = paramCount(s) * 2;
  const kv = s.nLayers * nCtx * s.nKvHeads * s.headDim * 2 * 4;
  // Per token: residual + norm + q/k/v/attn out (~4 dim), MLP gate/up/act (3 hidden), logits (vocab),
  // plus one layer's attention scores (nHeads x nCtx).
  const act = nCtx * (4 * s.dim + 3 * s.hiddenDim + s.vocabSize + s.nHeads * nCtx) * 4;
  return weights + kv + act;
}

/**
 * Weight bytes one forward call reads: every matrix once in f16 (the tied embedding once, as
 * the LM head; the embedding lookup reads only n rows), norms and biases (f32, counted as f16:
 * under 0.1% of the bytes).
 */
export function weightBytesPerForward(s: ModelShape): number {
  return paramCount(s) * 2;
}

/** The larger of two optional figures. */
function maxOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

/**
 * The RSS target for one model's prompt runs (1 and 2 threads): the worst installed-form
 * (dist) peak over the model memory, the checkout's (tsx) worst beside it in the detail; the
 * tsx figure is the value only where no dist figure was measured (it is the larger one).
 */
export function rssTarget(name: string, pp: ForwardRecord[]) {
  const label = `peak RSS kvlab ppl / f16 weights + KV + activations (${name})`;
  const dist = pp.reduce<number | null>((a, r) => maxOf(a, r.maxRssDistMiB), null);
  const tsx = pp.reduce<number | null>((a, r) => maxOf(a, r.maxRssMiB), null);
  const mem = pp[0]?.modelMemMiB;
  if (mem === undefined || (dist === null && tsx === null))
    return check(label, "<= 1.3", null, "not measured");
  const tsxPart =
    tsx !== null ? `checkout (tsx) ${tsx.toFixed(0)} MiB = ${(tsx / mem).toFixed(2)}` : "tsx not measured";
  return dist !== null
    ? check(
        label,
        "<= 1.3",
        dist / mem,
        `installed (dist) ${dist.toFixed(0)} vs ${mem.toFixed(0)} MiB; ${tsxPart}`,
      )
    : check(
        label,
        "<= 1.3",
        tsx! / mem,
        `dist not measured, so the checkout's (tsx) ${tsx!.toFixed(0)} vs ${mem.toFixed(0)} MiB`,
      );
}

/** The roofline's memory side: 256 MiB, well past the last-level cache. */
const DRAM_BYTES = 256 * 2 ** 20;

/** A text excerpt for the runs: WikiText-2 test if /work/shared is there, else kvlab's SOTU data. */
async function textFile(dir: string): Promise<string | null> {
  const candidates = [
    path.join(REPO, "../shared/data/wikitext-2-raw/wiki.test.raw"),
    "/work/shared/data/wikitext-2-raw/wiki.test.raw",
  ];
  const sotu = path.join(REPO, "data/sotu");
  let src = candidates.find((c) => existsSync(c));
  if (!src && existsSync(sotu)) {
    const { readdirSync } = await import("node:fs");
    const f = readdirSync(sotu).find((n) => n.endsWith(".txt"));
    if (f) src = path.join(sotu, f);
  }
  if (!src) return null;
  // ~12K words: enough tokens for a few 512-token segments, cheap to tokenize.
  const out = path.join(dir, "forward-text.txt");
  await writeFile(out, readFileSync(src).subarray(0, 64 * 1024));
  return out;
}

/** "" when synth-model's config.json has the shape the peer's GGUF is written with, else what differs. */
function configMismatch(file: string, s: ModelShape): string {
  const c = JSON.parse(readFileSync(file, "utf8")) as Record<string, number>;
  const want: Record<string, number> = {
    hidden_size: s.dim,
    intermediate_size: s.hiddenDim,
    num_hidden_layers: s.nLayers,
    num_attention_heads: s.nHeads,
    num_key_value_heads: s.nKvHeads,
    vocab_size: s.vocabSize,
  };
  return Object.entries(want)
    .filter(([k, v]) => c[k] !== v)
    .map(([k, v]) => `${k} ${c[k]} vs ${v}`)
    .join(", ");
}

/** Does the CLI know `synth-model`? (Read the command list rather than guess.) */
function hasSynthModel(): boolean {
  return existsSync(path.join(REPO, "src/commands/synth-model.ts"));
}

export async function runForward(ctx: BenchContext): Promise<SectionResult> {
  const section = newSection("forward");
  if (!hasSynthModel()) {
    skip(section, "`kvlab synth-model` does not exist yet (src/commands/synth-model.ts)");
    section.targets.push(check("forward 2 threads / 1 thread", ">= 1.7", null, "synth-model missing"));
    section.targets.push(
      check("peak RSS kvlab ppl / f16 weights + KV + activations", "<= 1.3", null, "synth-model missing"),
    );
    return section;
  }
  const dir = path.join(os.tmpdir(), "kvlab-bench");
  await mkdir(dir, { recursive: true });
  const text = await textFile(dir);
  if (!text) {
    skip(section, "no text to evaluate (neither /work/shared WikiText-2 nor data/sotu)");
    return section;
  }
  // DRAM read bandwidth at 1 and 2 threads (cached from the baselines section when it ran).
  const dram: Record<number, number | null> = { 1: null, 2: null };
  try {
    dram[1] = await ctx.readGBps(DRAM_BYTES);
    dram[2] = await ctx.readGBpsThreads(DRAM_BYTES, 2);
  } catch (err) {
    skip(section, `DRAM read baseline: ${(err as Error).message}`);
  }
  const models = ctx.args.quick ? ["smollm2-135m"] : ["smollm2-135m", "qwen2.5-0.5b"];
  const records: ForwardRecord[] = [];
  const rows: (string | number | null)[][] = [];
  for (const name of models) {
    const shape = MODEL_SHAPES[name]!;
    const modelDir = path.join(dir, `synth-${name}`);
    if (!existsSync(path.join(modelDir, "config.json"))) {
      const r = await kvlab(["synth-model", "--shape", name, "--out", modelDir], {}, 600);
      if (r.code !== 0) {
        skip(section, `synth-model --shape ${name}: ${why(r)}`);
        continue;
      }
    }
    const mismatch = configMismatch(path.join(modelDir, "config.json"), shape);
    if (mismatch) skip(section, `synth-model ${name}: config differs from the peer's shape (${mismatch})`);
    const memMiB = modelBytes(shape, PP_CTX) / 2 ** 20;
    const runs: [ForwardRecord["mode"], string[]][] = [
      ["prompt", ["--protocol", "llamacpp", "--ctx", String(PP_CTX), "--chunks", "1"]],
      [
        "decode",
        ["--protocol", "chunked", "--ctx", String(DECODE_CTX), "--chunks", "1", "--chunk-size", "1"],
      ],
    ];
    // Each configuration runs `rounds` times, the rounds interleaved (1 and 2 threads side by
    // side), and keeps its fastest run, as every other timed figure here does: on a shared
    // machine a run is only ever slowed by other processes. Peak RSS is the largest of the runs.
    const rounds = ctx.args.quick ? 1 : FULL_ROUNDS;
    const best = new Map<string, ForwardRecord & { ppl: unknown; fallbacks: unknown }>();
    const pplArgv = (protocol: string[]) => [
      "ppl",
      "--model",
      modelDir,
      "--text",
      text,
      ...protocol,
      "--executor",
      "wasm",
      "--json",
    ];
    for (let round = 0; round < rounds; round++)
      for (const threads of [1, 2])
        for (const [mode, protocol] of runs) {
          const env = { KVLAB_THREADS: String(threads) };
          const argv = pplArgv(protocol);
          let r = await kvlab(argv, env, 600);
          if (r.code !== 0 && !r.timedOut) {
            console.log(`  retrying ${name} ${mode} t${threads} after ${why(r)}`);
            r = await kvlab(argv, env, 600);
          }
          const j = lastJson(r.stdout);
          if (r.code !== 0 || !j || typeof j.tokensPerSecond !== "number") {
            skip(
              section,
              `kvlab ppl ${name} ${mode} t${threads}: ${j ? "no tokensPerSecond in its JSON" : why(r)}`,
            );
            continue;
          }
          // prompt: one forward call per ctx tokens; decode: one per token.
          const perForward = mode === "prompt" ? PP_CTX : 1;
          const weightGBps = (weightBytesPerForward(shape) * j.tokensPerSecond) / perForward / 1e9;
          const bw = dram[threads] ?? null;
          console.log(
            `  ${name} ${mode} ${threads} thread(s), run ${round + 1}/${rounds}: ${j.tokensPerSecond.toFixed(1)} tok/s, peak RSS ${r.maxRssMiB?.toFixed(0)} MiB`,
          );
          const key = `${mode}/${threads}`;
          const prev = best.get(key);
          const maxRssMiB =
            prev?.maxRssMiB != null && r.maxRssMiB !== null
              ? Math.max(prev.maxRssMiB, r.maxRssMiB)
              : (r.maxRssMiB ?? prev?.maxRssMiB ?? null);
          if (prev && prev.tokensPerS >= j.tokensPerSecond) {
            prev.maxRssMiB = maxRssMiB;
            continue;
          }
          best.set(key, {
            model: name,
            threads,
            mode,
            tokensPerS: j.tokensPerSecond,
            wallS: r.seconds,
            maxRssMiB,
            maxRssDistMiB: null,
            modelMemMiB: memMiB,
            weightGBps,
            xDramRead: bw ? weightGBps / bw : null,
            ppl: j.ppl,
            fallbacks: j.fallbacks,
          });
        }
    // Peak RSS as installed: each configuration once more through dist/cli.js (RSS does not
    // depend on the machine's load, so one run is its figure); its ppl must be the timed runs'.
    for (const threads of [1, 2])
      for (const [mode, protocol] of runs) {
        const b = best.get(`${mode}/${threads}`);
        if (!b) continue;
        const env = { KVLAB_THREADS: String(threads) };
        const r = await installedPeakRss(pplArgv(protocol), env, 600, b.ppl);
        if ("why" in r) {
          skip(section, `kvlab ppl (dist/cli.js) ${name} ${mode} t${threads}: ${r.why}`);
          continue;
        }
        b.maxRssDistMiB = r.mib;
        console.log(
          `  ${name} ${mode} ${threads} thread(s), installed form (dist/cli.js): peak RSS ${r.mib.toFixed(0)} MiB (tsx ${b.maxRssMiB?.toFixed(0)})`,
        );
      }
    for (const threads of [1, 2])
      for (const [mode] of runs) {
        const b = best.get(`${mode}/${threads}`);
        if (!b) continue;
        const { ppl: _ppl, fallbacks: _fb, ...rec } = b;
        records.push(rec);
        section.records.push({ ...b, runs: rounds });
        const one = records.find((x) => x.model === name && x.mode === mode && x.threads === 1);
        rows.push([
          name,
          mode,
          threads,
          rec.tokensPerS,
          one && threads > 1 ? rec.tokensPerS / one.tokensPerS : null,
          rec.weightGBps,
          dram[threads] ?? null,
          rec.xDramRead,
          rec.maxRssDistMiB,
          rec.maxRssDistMiB !== null ? rec.maxRssDistMiB / memMiB : null,
          rec.maxRssMiB,
          rec.maxRssMiB !== null ? rec.maxRssMiB / memMiB : null,
          rec.wallS,
        ]);
      }
  }
  section.tables.push({
    title: "Forward: kvlab ppl on synth-model shapes, wasm executor, f32 cache",
    columns: [
      "model",
      "mode",
      "threads",
      "tokens/s",
      "x 1 thread",
      "weight GB/s",
      "DRAM read GB/s",
      "x DRAM read",
      "peak RSS MiB (installed)",
      "RSS x model mem (installed)",
      "peak RSS MiB (checkout, tsx)",
      "RSS x model mem (tsx)",
      "wall s",
    ],
    rows,
    notes: [
      `prompt = llamacpp protocol, ctx ${PP_CTX}; decode = chunked protocol, chunk size 1, ctx ${DECODE_CTX}. Threads via KVLAB_THREADS.`,
      "model mem = f16 weights (synth-model writes f16; kvlab keeps them 16-bit) + f32 KV (ctx 512) + activations of one 512-token forward incl. logits (bench/sections/forward.ts modelBytes).",
      `tokens/s as reported by kvlab ppl (tokensPerSecond), the fastest of ${ctx.args.quick ? 1 : FULL_ROUNDS} interleaved run(s) per row; peak RSS (tsx) the largest of them; wall s (of the fastest run) includes node start-up, model load and tokenization.`,
      `weight GB/s = f16 weight bytes per forward call (${models.map((m) => `${m} ${(weightBytesPerForward(MODEL_SHAPES[m]!) / 1e6).toFixed(0)} MB`).join(", ")}) x forward calls/s (decode: one per token; prompt: one per ${PP_CTX} tokens).`,
      `peak RSS (installed) = one more run of the same command through dist/cli.js, as the npm package's bin/kvlab.js runs it (no TypeScript loader; dist built by the bench when missing or older than src/); peak RSS (checkout, tsx) = the timed runs, node --import tsx src/cli.ts, as bin/kvlab.js runs it in a checkout: the loader adds about 30 MiB (results/bench/rss/README.md). The RSS target holds the installed figure (the tsx one where dist could not be built).`,
      `DRAM read GB/s = the WASM SIMD read pass over ${DRAM_BYTES / 2 ** 20} MiB with as many threads (baselines section); x DRAM read near 1 means the forward streams its weights at the memory limit (roofline), and more threads can only help as far as the 2-thread read is faster than the 1-thread one.`,
    ],
  });
  for (const name of models)
    for (const mode of ["prompt", "decode"] as const) {
      const one = records.find((x) => x.model === name && x.mode === mode && x.threads === 1);
      const two = records.find((x) => x.model === name && x.mode === mode && x.threads === 2);
      section.targets.push(
        check(
          `forward ${mode} 2 threads / 1 thread (${name})`,
          ">= 1.7",
          one && two ? two.tokensPerS / one.tokensPerS : null,
          one && two ? `${two.tokensPerS.toFixed(1)} vs ${one.tokensPerS.toFixed(1)} tok/s` : "not measured",
        ),
      );
    }
  for (const name of models) {
    const pp = records.filter((x) => x.model === name && x.mode === "prompt");
    section.targets.push(rssTarget(name, pp));
  }
  // 1-2B shapes with weights kept 16-bit, and llama.cpp on the same weight type.
  await runForwardLarge(section, { quick: ctx.args.quick, dir, text });
  return section;
}
