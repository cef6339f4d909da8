/**
 * Part of section 4 (forward): 1-2B-parameter shapes on wasm with weights kept 16-bit (issue 15
 * lever 3: F16 matrices stay F16 in memory and the matmul widens them in registers; f32
 * weights of these models do not fit the 4 GiB WASM memory). For synth-model's f16
 * qwen2.5-1.5b (and, in a full run, llama-3.2-1b), 2 threads, f16 KV cache:
 *   - prompt: kvlab ppl, llamacpp protocol, one PROMPT-token segment; its peak RSS against
 *     f16 weights + f16 KV + one forward's activations (the target), run once more as an
 *     installed kvlab runs it (dist/cli.js, no tsx: bench/lib/kvlab-cli.ts), which is the
 *     figure the target holds, the checkout's (tsx) beside it;
 *   - decode: kvlab ppl, chunked protocol, chunk size 1, DECODE tokens;
 *   - llama.cpp (node-llama-cpp, bench/peers/llama-bench.ts) on a GGUF of the same shape with
 *     F16 weights and an F16 cache, same threads and prompt length, run right after, so the
 *     kvlab / llama.cpp ratios come from one run; the load average is printed beside them
 *     (the machine is shared).
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { lastJson, runChild } from "../lib/child.ts";
import { installedPeakRss, runKvlab, whyFailed } from "../lib/kvlab-cli.ts";
import { MODEL_SHAPES, type ModelShape, paramCount } from "../lib/model-shapes.ts";
import { check, type SectionResult, skip } from "../lib/report.ts";
import { writeGguf } from "../peers/gguf-writer.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PROMPT = 128;
const DECODE = 32;
const THREADS = 2;

/** Bytes kvlab ppl needs at the least: f16 weights, f16 KV for nCtx, one nCtx-token forward's activations. */
export function f16ModelBytes(s: ModelShape, nCtx: number): number {
  const weights = paramCount(s) * 2;
  const kv = s.nLayers * nCtx * s.nKvHeads * s.headDim * 2 * 2;
  // Per token: residual, norm, block output, q/k/v (x2 for the transposed copies), attention
  // out (x2), gate/up (2 hidden), logits (vocab); plus one layer's attention scores.
  const qkv = (s.nHeads + 2 * s.nKvHeads) * s.headDim;
  const act = nCtx * (3 * s.dim + 2 * qkv + 2 * s.nHeads * s.headDim + 2 * s.hiddenDim + s.vocabSize) * 4;
  return weights + kv + act + s.nHeads * nCtx * nCtx * 4;
}

/** kvlab at the section's thread count. */
const kvlab = (args: string[], timeoutS: number) =>
  runKvlab(args, { KVLAB_THREADS: String(THREADS) }, timeoutS);
const why = whyFailed;

const load = () => os.loadavg()[0]!.toFixed(1);

/** Runs the 1-2B rows and adds their table, records and targets to `section`. */
export async function runForwardLarge(
  section: SectionResult,
  opts: { quick: boolean; dir: string; text: string },
): Promise<void> {
  const models = opts.quick ? ["qwen2.5-1.5b"] : ["qwen2.5-1.5b", "llama-3.2-1b"];
  const rows: (string | number | null)[][] = [];
  for (const name of models) {
    const shape = MODEL_SHAPES[name]!;
    const modelDir = path.join(opts.dir, `synth-${name}`);
    if (!existsSync(path.join(modelDir, "config.json"))) {
      const r = await kvlab(["synth-model", "--shape", name, "--out", modelDir], 900);
      if (r.code !== 0) {
        skip(section, `synth-model --shape ${name}: ${why(r)}`);
        section.targets.push(
          check(`peak RSS kvlab ppl / f16 weights + KV + activations (${name})`, "<= 1.3", null, why(r)),
        );
        continue;
      }
    }
    const loadBefore = load();
    const common = ["ppl", "--model", modelDir, "--text", opts.text, "--executor", "wasm", "--cache", "f16"];
    const ppArgv = [...common, "--protocol", "llamacpp", "--ctx", String(PROMPT), "--chunks", "1", "--json"];
    const pp = await kvlab(ppArgv, 900);
    const dec = await kvlab(
      [
        ...common,
        "--protocol",
        "chunked",
        "--ctx",
        String(DECODE),
        "--chunks",
        "1",
        "--chunk-size",
        "1",
        "--json",
      ],
      900,
    );
    const jp = lastJson(pp.stdout);
    const jd = lastJson(dec.stdout);
    const ppTps = pp.code === 0 && typeof jp?.tokensPerSecond === "number" ? jp.tokensPerSecond : null;
    const decTps = dec.code === 0 && typeof jd?.tokensPerSecond === "number" ? jd.tokensPerSecond : null;
    if (ppTps === null) skip(section, `kvlab ppl ${name} prompt: ${why(pp)}`);
    if (decTps === null) skip(section, `kvlab ppl ${name} decode: ${why(dec)}`);
    const memMiB = f16ModelBytes(shape, PROMPT) / 2 ** 20;
    const rss = ppTps !== null ? pp.maxRssMiB : null;
    // The same prompt run as installed (dist/cli.js): the figure the target holds.
    let rssDist: number | null = null;
    if (ppTps !== null) {
      const r = await installedPeakRss(ppArgv, { KVLAB_THREADS: String(THREADS) }, 900, jp?.ppl);
      if ("why" in r) skip(section, `kvlab ppl (dist/cli.js) ${name} prompt: ${r.why}`);
      else rssDist = r.mib;
    }
    const rssTarget = rssDist ?? rss;
    section.targets.push(
      check(
        `peak RSS kvlab ppl / f16 weights + KV + activations (${name})`,
        "<= 1.3",
        rssTarget !== null ? rssTarget / memMiB : null,
        rssTarget !== null
          ? `${rssDist !== null ? "installed (dist)" : "dist not measured, so the checkout's (tsx)"} ${rssTarget.toFixed(0)} vs ${memMiB.toFixed(0)} MiB, ctx ${PROMPT}, wasm, weights kept f16; checkout (tsx) ${rss?.toFixed(0)} MiB`
          : "not measured",
      ),
    );
    // llama.cpp, same shape, F16 weights and cache, same threads and prompt length.
    let peer: Record<string, unknown> | null = null;
    const gguf = path.join(opts.dir, `${name}-f16.gguf`);
    try {
      if (!existsSync(gguf)) await writeGguf(gguf, shape, "F16", 4096);
      const r = await runChild(
        process.execPath,
        [
          "--import",
          "tsx",
          path.join(REPO, "bench/peers/llama-bench.ts"),
          JSON.stringify({
            model: gguf,
            threads: THREADS,
            kvType: "F16",
            promptTokens: PROMPT,
            decodeTokens: DECODE,
            decodeSeconds: 60,
            vocabSize: shape.vocabSize,
          }),
        ],
        { cwd: REPO, timeoutS: 900 },
      );
      peer = r.code === 0 ? lastJson(r.stdout) : null;
      if (!peer) skip(section, `llama.cpp ${name}: ${why(r)}`);
    } catch (err) {
      skip(section, `llama.cpp ${name}: ${(err as Error).message}`);
    }
    const lpp = typeof peer?.ppTokensPerS === "number" ? peer.ppTokensPerS : null;
    const ldec = typeof peer?.decodeTokensPerS === "number" ? peer.decodeTokensPerS : null;
    const loadAfter = load();
    const ratio = (a: number | null, b: number | null) => (a !== null && b !== null ? a / b : null);
    console.log(
      `  ${name} (2 threads, load ${loadBefore} -> ${loadAfter}): kvlab prompt ${ppTps?.toFixed(2)} decode ${decTps?.toFixed(2)} tok/s, peak RSS ${rssDist?.toFixed(0)} MiB installed, ${rss?.toFixed(0)} MiB tsx; llama.cpp prompt ${lpp?.toFixed(2)} decode ${ldec?.toFixed(2)} tok/s`,
    );
    section.records.push({
      model: name,
      params: paramCount(shape),
      weights: "f16 (kept)",
      threads: THREADS,
      promptTokens: PROMPT,
      decodeTokens: DECODE,
      kvlabPromptTokensPerS: ppTps,
      kvlabDecodeTokensPerS: decTps,
      maxRssMiB: rss,
      maxRssDistMiB: rssDist,
      modelMemMiB: memMiB,
      llamaCppPromptTokensPerS: lpp,
      llamaCppDecodeTokensPerS: ldec,
      loadAverage: [Number(loadBefore), Number(loadAfter)],
    });
    rows.push([
      name,
      paramCount(shape) / 1e9,
      ppTps,
      lpp,
      ratio(ppTps, lpp),
      decTps,
      ldec,
      ratio(decTps, ldec),
      rssDist,
      rssDist !== null ? rssDist / memMiB : null,
      rss,
      rss !== null ? rss / memMiB : null,
      `${loadBefore} -> ${loadAfter}`,
    ]);
  }
  section.tables.push({
    title: "Forward, 1-2B shapes: f16 weights kept 16-bit (wasm) vs llama.cpp F16 weights, 2 threads, f16 KV",
    columns: [
      "model",
      "params (B)",
      "kvlab prompt tok/s",
      "llama.cpp prompt tok/s",
      "prompt kvlab / llama.cpp",
      "kvlab decode tok/s",
      "llama.cpp decode tok/s",
      "decode kvlab / llama.cpp",
      "peak RSS MiB (installed)",
      "RSS / (f16 weights+KV+act) (installed)",
      "peak RSS MiB (checkout, tsx)",
      "RSS / (f16 weights+KV+act) (tsx)",
      "load avg (1 min)",
    ],
    rows,
    notes: [
      `kvlab: synth-model (f16 safetensors), kvlab ppl --executor wasm --cache f16, KVLAB_THREADS=${THREADS}; prompt = llamacpp protocol, one ${PROMPT}-token segment (tokensPerSecond includes the first call's page faults); decode = chunked protocol, chunk size 1, ${DECODE} tokens.`,
      `llama.cpp: node-llama-cpp (bench/peers/llama-bench.ts) on a GGUF of the same shape (random F16 weights), ${THREADS} threads, F16 KV, flash attention, a ${PROMPT}-token prompt then up to ${DECODE} decoded tokens; run right after kvlab.`,
      "peak RSS (installed): the prompt run once more through dist/cli.js, as the npm package runs it (no TypeScript loader); (checkout, tsx): the timed prompt run, node --import tsx src/cli.ts. The target holds the installed figure (the tsx one where dist could not be built).",
      "RSS denominator: f16 weights + f16 KV for the segment + one segment's activations incl. logits and one layer's scores (bench/sections/forward-large.ts f16ModelBytes).",
      "Single runs on a shared machine: the load average beside each row says how contended it was.",
    ],
  });
}
