/**
 * 16-bit weights kept (widened inside the matmul) against weights widened to f32 on load, for a
 * prompt forward at 1 and 2 threads, in one process with rounds interleaved (fastest round of
 * each): the A/B behind results/bench/NOTES.md's 2-thread prompt finding. Reads the synth model
 * the bench's forward section writes to $TMPDIR/kvlab-bench/synth-<shape>.
 *   node --import tsx bench/ab-weights.ts [shape, default qwen2.5-0.5b] [rounds, default 4]
 */
import os from "node:os";
import path from "node:path";
import { createCache } from "../src/cache/create.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";
import { loadModel } from "../src/model/load.ts";
import type { WeightsMode } from "../src/model/tensors.ts";

const shape = process.argv[2] ?? "qwen2.5-0.5b";
const rounds = Number(process.argv[3] ?? 4);
const dir = path.join(os.tmpdir(), "kvlab-bench", `synth-${shape}`);
const n = 512; // prompt tokens, one forward
const configs: [WeightsMode, number][] = [
  ["keep", 1],
  ["f32", 1],
  ["keep", 2],
  ["f32", 2],
];
const models = [];
for (const [weights, threads] of configs)
  models.push(await loadModel(dir, { executor: await createWasmExecutor({ threads }), weights }));
const tokens = Int32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) + 5); // (n)
const positions = Int32Array.from({ length: n }, (_, i) => i); // (n)
const best = configs.map(() => 0); // tokens/s, fastest round
for (let r = 0; r < rounds; r++)
  for (let i = 0; i < models.length; i++) {
    const m = models[i]!;
    const cache = await createCache("f32", m.kvShape(n), { executor: m.executor });
    const t0 = performance.now();
    await m.forward(tokens, positions, cache, { firstLogit: n >> 1 });
    best[i] = Math.max(best[i]!, n / ((performance.now() - t0) / 1000));
    cache.dispose();
  }
for (const [i, [w, t]] of configs.entries())
  console.log(`${shape} prompt ${n}, weights ${w}, ${t} thread(s): ${best[i]!.toFixed(1)} tok/s`);
const [k1, f1, k2, f2] = best as [number, number, number, number];
console.log(
  `2 threads / 1: keep ${(k2 / k1).toFixed(2)}, f32 ${(f2 / f1).toFixed(2)}; keep / f32: 1 thread ${(k1 / f1).toFixed(2)}, 2 threads ${(k2 / f2).toFixed(2)} (load ${os.loadavg()[0]!.toFixed(1)})`,
);
process.exit(0);
