/**
 * kvlab's long-context decode A/B in one process: several (cache spec, wasm build) variants on
 * the SmolLM2-135M shape, each with its own cache filled alike, timed in interleaved windows
 * (round r runs one window of every variant, in an order that rotates each round), so load
 * from other processes on a shared machine hits every variant alike. The llama.cpp side is
 * bench/peers/decode-vs-llamacpp.ts, which measures kvlab and llama.cpp one after the other:
 * under load, its kvlab rows cannot show a 5-10% difference between two kvlab variants.
 *
 *   node --import tsx bench/peers/decode-ab.ts [--specs q8_0,q8_0+q8-query] [--builds A,B]
 *     [--prompt 4096] [--rounds 6] [--window 32] [--threads 1]
 *
 * --builds: wasm files (default: the build this engine loads); each spec runs on each build
 * (rows "<spec>@<n>", n = build index). Same model and fill as decode-vs-llamacpp.ts (random F16
 * weights kept 16-bit, 4096 tokens of random K/V through the codec, greedy decode). Prints per
 * variant the median and best window tok/s and the share of decode time inside cache.attend,
 * and each variant's median per-round ratio to the first variant's window of the same round.
 */
import os from "node:os";
import path from "node:path";
import { createCache } from "../../src/cache/create.ts";
import { createWasmExecutor } from "../../src/kernels/wasm.ts";
import { argmax } from "../../src/model/generate.ts";
import { loadModel } from "../../src/model/load.ts";
import { fillAllLayers } from "../lib/cache.ts";
import { MODEL_SHAPES } from "../lib/model-shapes.ts";
import { median, timeAttend } from "./decode-vs-llamacpp.ts";

const Q8_SUFFIX = "+q8-query";
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!, process.argv[i + 1] ?? "");
for (const k of args.keys())
  if (!["--specs", "--builds", "--prompt", "--rounds", "--window", "--threads"].includes(k))
    throw new Error(`decode-ab: unknown option ${k}; see the header of bench/peers/decode-ab.ts`);
const specs = (args.get("--specs") ?? "q8_0,q8_0+q8-query").split(",");
const builds = args.get("--builds")?.split(",") ?? [undefined];
const promptTokens = Number(args.get("--prompt") ?? 4096);
const rounds = Number(args.get("--rounds") ?? 6);
const windowTokens = Number(args.get("--window") ?? 32);
const threads = Number(args.get("--threads") ?? 1);
const shape = MODEL_SHAPES["smollm2-135m"]!;
const modelDir = path.join(os.tmpdir(), "kvlab-bench", "synth-smollm2-135m-f16");

interface Variant {
  name: string;
  step: () => Promise<void>;
  attendMs: () => number;
  windows: number[];
  attend: number;
  decode: number;
}

const variants: Variant[] = [];
const disposers: (() => void)[] = [];
for (const [bi, wasmPath] of builds.entries()) {
  const exec = await createWasmExecutor({ threads, wasmPath });
  const model = await loadModel(modelDir, { executor: exec });
  disposers.push(
    () => model.dispose(),
    () => exec.dispose(),
  );
  for (const kv of specs) {
    const spec = kv.endsWith(Q8_SUFFIX)
      ? { preset: kv.slice(0, -Q8_SUFFIX.length), query: "q8" as const }
      : kv;
    const raw = await createCache(spec, model.kvShape(promptTokens + (rounds + 1) * windowTokens + 1), {
      executor: exec,
    });
    disposers.unshift(() => raw.dispose());
    await fillAllLayers(raw, shape, promptTokens);
    const { cache, ms } = timeAttend(raw);
    const one = new Int32Array([5]); // (1)
    const pos = new Int32Array(1); // (1)
    let p = promptTokens;
    const step = async () => {
      pos[0] = p++;
      const logits = await model.forward(one, pos, cache);
      one[0] = argmax(logits.subarray(0, shape.vocabSize));
    };
    const name = builds.length > 1 ? `${kv}@${bi}` : kv;
    variants.push({ name, step, attendMs: ms, windows: [], attend: 0, decode: 0 });
  }
}
console.log(
  `decode-ab: ${variants.map((v) => v.name).join(", ")}; builds ${builds.map((b) => b ?? "(default)").join(", ")}; ${promptTokens}-token context, ${rounds} rounds of ${windowTokens} steps, ${threads} thread(s); load ${os.loadavg()[0]!.toFixed(1)}`,
);
for (const v of variants) for (let i = 0; i < 4; i++) await v.step(); // first-call costs
const perRound: number[][] = [];
for (let r = 0; r < rounds; r++) {
  const row: number[] = [];
  for (let i = 0; i < variants.length; i++) {
    const v = variants[(i + r) % variants.length]!;
    const a0 = v.attendMs();
    const t0 = performance.now();
    for (let s = 0; s < windowTokens; s++) await v.step();
    const dt = performance.now() - t0;
    v.windows.push((windowTokens * 1000) / dt);
    v.attend += v.attendMs() - a0;
    v.decode += dt;
  }
  for (const v of variants) row.push(v.windows[r]!);
  perRound.push(row);
  console.log(
    `  round ${r + 1}: ${variants.map((v, i) => `${v.name} ${row[i]!.toFixed(1)}`).join(" | ")} tok/s; load ${os.loadavg()[0]!.toFixed(1)}`,
  );
}
for (const [i, v] of variants.entries()) {
  const ratio = median(perRound.map((row) => row[i]! / row[0]!));
  console.log(
    `${v.name}: median ${median(v.windows).toFixed(1)} tok/s, best ${Math.max(...v.windows).toFixed(1)}, attend ${((100 * v.attend) / v.decode).toFixed(0)}% of decode (${(v.attend / (rounds * windowTokens)).toFixed(2)} ms per token); tok/s vs ${variants[0]!.name} ${ratio.toFixed(3)} (median of per-round ratios)`,
  );
}
for (const d of disposers) d();
process.exit(0);
