/**
 * Per-op times of one prompt forward: every executor op wrapped with a timer (matmuls keyed by
 * their output rows and token count), for kept 16-bit weights and weights widened to f32 on load,
 * alternated `rounds` times in one process. Shows where a forward's time goes and whether two
 * weight modes differ op by op (results/bench/NOTES.md, the 2-thread prompt rows). Reads the synth
 * model the bench's forward section writes to $TMPDIR/kvlab-bench/synth-<shape>.
 *   node --import tsx bench/forward-ops.ts [shape, default qwen2.5-0.5b] [threads, default 2] [rounds, default 2]
 */
import os from "node:os";
import path from "node:path";
import { createCache } from "../src/cache/create.ts";
import type { Executor } from "../src/kernels/executor.ts";
import { createWasmExecutor } from "../src/kernels/wasm.ts";
import { loadModel } from "../src/model/load.ts";
import type { WeightsMode } from "../src/model/tensors.ts";

const shape = process.argv[2] ?? "qwen2.5-0.5b";
const threads = Number(process.argv[3] ?? 2);
const rounds = Number(process.argv[4] ?? 2);
const dir = path.join(os.tmpdir(), "kvlab-bench", `synth-${shape}`);
const n = 512; // prompt tokens, one forward; logits for the last n/2 (as ab-weights.ts)
const tokens = Int32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) + 5); // (n)
const positions = Int32Array.from({ length: n }, (_, i) => i); // (n)

/** Wraps every function-valued member of exec so its wall time adds to times[key]. */
function timeOps(exec: Executor, times: Map<string, number>): void {
  const target = exec as unknown as Record<string, unknown>;
  for (const name of Object.keys(target)) {
    const f = target[name];
    if (typeof f !== "function" || name === "dispose") continue;
    target[name] = function (this: unknown, ...a: unknown[]) {
      const key = name === "matmul" ? `matmul dOut=${a[5]} n=${a[3]}` : name;
      const t0 = performance.now();
      const add = () => times.set(key, (times.get(key) ?? 0) + performance.now() - t0);
      const r = (f as (...x: unknown[]) => unknown).apply(this, a);
      if (r instanceof Promise) return r.finally(add);
      add();
      return r;
    };
  }
}

for (let r = 0; r < rounds; r++)
  for (const weights of ["keep", "f32"] as WeightsMode[]) {
    const exec = await createWasmExecutor({ threads });
    const times = new Map<string, number>();
    const model = await loadModel(dir, { executor: exec, weights });
    timeOps(exec, times);
    const cache = await createCache("f32", model.kvShape(n), { executor: exec });
    times.clear();
    const t0 = performance.now();
    await model.forward(tokens, positions, cache, { firstLogit: n >> 1 });
    const total = performance.now() - t0;
    console.log(
      `round ${r + 1}, weights ${weights}, ${threads} thread(s): forward ${total.toFixed(0)} ms (load ${os.loadavg()[0]!.toFixed(1)})`,
    );
    for (const [k, v] of [...times].sort((a, b) => b[1] - a[1]).slice(0, 8))
      console.log(`  ${k}: ${v.toFixed(0)} ms`);
    cache.dispose();
    exec.dispose();
  }
process.exit(0);
