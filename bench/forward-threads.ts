/**
 * 1 vs 2 threads on the forward, in one process, rounds interleaved: the same model loaded on a
 * 1-thread and a 2-thread wasm executor, then decode (one token per forward) or prompt (one
 * forward of ctx tokens) timed on each in turn; the fastest round of each is reported with the
 * f32 weight bytes it streams per second (the decode roofline: compare with the baselines
 * section's 1- and 2-thread DRAM read). No tokenizer, NLL or process start in the timing.
 *   node --import tsx bench/forward-threads.ts <shape> [decode|prompt] [rounds] [ctx]
 * <shape>: smollm2-135m | qwen2.5-0.5b, read from $TMPDIR/kvlab-bench/synth-<shape> (the forward
 * section writes it there with `kvlab synth-model`).
 */
import os from "node:os";
import path from "node:path";
import { createCache } from "../src/cache/create.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";
import type { LanguageModel } from "../src/model/llama.ts";
import { loadModel } from "../src/model/load.ts";
import { MODEL_SHAPES, paramCount } from "./lib/model-shapes.ts";

const [shapeName = "smollm2-135m", mode = "decode", roundsArg = "6", ctxArg] = process.argv.slice(2);
const shape = MODEL_SHAPES[shapeName];
if (!shape) throw new Error(`unknown shape ${shapeName}; known: ${Object.keys(MODEL_SHAPES).join(", ")}`);
if (mode !== "decode" && mode !== "prompt") throw new Error(`mode is decode or prompt, got ${mode}`);
const rounds = Number(roundsArg);
const n = Number(ctxArg ?? (mode === "decode" ? 64 : 512));
const dir = path.join(os.tmpdir(), "kvlab-bench", `synth-${shapeName}`);

const models: LanguageModel[] = [];
for (const threads of [1, 2])
  models.push(await loadModel(dir, { executor: await createWasmExecutor({ threads }) }));
const tokens = Int32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) + 5); // (n)
const positions = Int32Array.from({ length: n }, (_, i) => i); // (n)

/** Tokens per second of one round on model m. */
async function round(m: LanguageModel): Promise<number> {
  const cache = await createCache("f32", m.kvShape(n), { executor: m.executor });
  const t0 = performance.now();
  if (mode === "decode")
    for (let i = 0; i < n; i++)
      await m.forward(tokens.subarray(i, i + 1), positions.subarray(i, i + 1), cache);
  else await m.forward(tokens, positions, cache, { firstLogit: n >> 1 });
  const s = (performance.now() - t0) / 1000;
  cache.dispose();
  return n / s;
}

const best = [0, 0];
const all: string[] = [];
for (let r = 0; r < rounds; r++)
  for (let j = 0; j < 2; j++) {
    const v = await round(models[j]!);
    all.push(v.toFixed(1));
    best[j] = Math.max(best[j]!, v);
  }
const weightGBps = (tps: number) => (paramCount(shape) * 4 * tps) / (mode === "decode" ? 1 : n) / 1e9;
console.log(`rounds (1t 2t ...): ${all.join(" ")}`);
console.log(
  `${shapeName} ${mode} ctx ${n}: 1 thread ${best[0]!.toFixed(1)} tok/s (${weightGBps(best[0]!).toFixed(1)} GB/s of weights), 2 threads ${best[1]!.toFixed(1)} tok/s (${weightGBps(best[1]!).toFixed(1)} GB/s), x ${(best[1]! / best[0]!).toFixed(3)}; load average ${os.loadavg()[0]!.toFixed(2)}`,
);
for (const m of models) {
  m.dispose();
  m.executor.dispose();
}
