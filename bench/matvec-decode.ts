/**
 * Whole decode steps, two wasm modules (A: before, B: after) in one process: the synth model
 * (weights kept as in the file, f16) on each, a KV cache holding `context` tokens of random K/V,
 * then windows of greedy decode steps alternating A B B A for `rounds` rounds (1 thread unless
 * given). Prints
 * tokens/s per window (fastest and median) and B / A time per round, the whole-step effect of a
 * kernel change (bench/matvec.ts times the matmuls alone). Reads the synth model the bench's
 * forward section writes to $TMPDIR/kvlab-bench/synth-<shape>.
 *   node --import tsx bench/matvec-decode.ts [A.wasm, default tmp/matvec-old.wasm] [B.wasm,
 *     default build/kvlab.wasm] [shape, default smollm2-135m-f16] [context, default 4096]
 *     [cache, default f16] [rounds, default 6] [window tokens, default 16] [threads, default 1]
 */
import os from "node:os";
import path from "node:path";
import { createCache } from "../src/cache/create.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";
import { loadModel } from "../src/model/load.ts";
import { fillAllLayers } from "./lib/cache.ts";

const a = process.argv.slice(2);
const files = [a[0] ?? "tmp/matvec-old.wasm", a[1] ?? "build/kvlab.wasm"];
const shape = a[2] ?? "smollm2-135m-f16";
const context = Number(a[3] ?? 4096);
const cacheSpec = a[4] ?? "f16";
const rounds = Number(a[5] ?? 6);
const window = Number(a[6] ?? 16);
const threads = Number(a[7] ?? 1);
const dir = path.join(os.tmpdir(), "kvlab-bench", `synth-${shape}`);

interface Side {
  wasmPath: string;
  step: () => Promise<void>;
  tps: number[];
}
const sides: Side[] = [];
for (const wasmPath of files) {
  const exec = await createWasmExecutor({ threads, wasmPath });
  const model = await loadModel(dir, { executor: exec });
  const s = model.kvShape(context + (2 * rounds + 1) * window + 8);
  const cache = await createCache(cacheSpec, s, { executor: exec });
  await fillAllLayers(cache, s, context);
  const one = new Int32Array([5]); // (1)
  const pos = new Int32Array([context]); // (1)
  const vocab = model.config.vocabSize;
  const step = async () => {
    const logits = await model.forward(one, pos, cache);
    pos[0]!++;
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[i]! > logits[best]!) best = i;
    one[0] = best;
  };
  sides.push({ wasmPath, step, tps: [] });
}
const run = async (side: Side) => {
  const t0 = performance.now();
  for (let i = 0; i < window; i++) await side.step();
  const ms = performance.now() - t0;
  side.tps.push((window * 1000) / ms);
  return ms;
};
for (const s of sides) await run(s); // warm-up window, not counted
for (const s of sides) s.tps.length = 0;
const ratios: number[] = [];
for (let r = 0; r < rounds; r++) {
  const t = [0, 0];
  for (const i of [0, 1, 1, 0]) t[i]! += await run(sides[i]!);
  ratios.push(t[1]! / t[0]!);
}
const med = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
console.log(
  `${process.version}; ${shape}, ${cacheSpec} cache, context ${context}, ${threads} thread(s), ${rounds} rounds of ${window}-token windows A B B A; load ${os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(" ")}`,
);
for (const [i, s] of sides.entries())
  console.log(
    `${"AB"[i]} ${s.wasmPath}: decode ${Math.max(...s.tps).toFixed(1)} tok/s fastest window, ${med(s.tps).toFixed(1)} median`,
  );
const sr = [...ratios].sort((x, y) => x - y);
console.log(
  `B / A time per round: median ${med(ratios).toFixed(3)} [${sr[0]!.toFixed(3)}, ${sr[sr.length - 1]!.toFixed(3)}]; fastest windows B / A time ${(Math.max(...sides[0]!.tps) / Math.max(...sides[1]!.tps)).toFixed(3)}`,
);
process.exit(0);
