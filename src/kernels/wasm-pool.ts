/**
 * Worker threads over the executor's shared WebAssembly memory. Each worker instantiates the
 * same compiled module over the same memory and then blocks in Atomics.wait on its control
 * block; the main thread writes a call (op code + numeric args) there, wakes the worker, runs
 * its own share, and waits for the worker's "done". Ops stay synchronous for callers (the
 * Executor interface is synchronous), and no message passing or copying is on the hot path.
 *
 * Control block per worker (in the arena, 256 bytes): i32 state (0 idle, 1 posted, 2 done,
 * 3 exit), i32 error flag, then f64 slots: [argCount, op, ...args]. f64 holds pointers (< 2^32)
 * and the f32 softmax scale exactly.
 */
import { Worker } from "node:worker_threads";
import type { WasmHeap } from "./wasm-heap.ts";

const CTRL_BYTES = 256;
const MAX_ARGS = 28;

// Plain JS (CommonJS) so the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { module, memory, ctrl } = workerData;
WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error("kvlab.wasm aborted"); } } }).then((inst) => {
  const k = inst.exports;
  const st = new Int32Array(memory.buffer, ctrl, 2);
  const args = new Float64Array(memory.buffer, ctrl + 8, ${MAX_ARGS + 2});
  parentPort.postMessage("ready");
  for (;;) {
    Atomics.wait(st, 0, 0);
    const s = Atomics.load(st, 0);
    if (s === 3) break;
    if (s !== 1) continue;
    const n = args[0];
    const a = Array.from(args.subarray(2, 2 + n));
    try {
      (args[1] === 1 ? k.matmul : k.attend)(...a);
      st[1] = 0;
    } catch {
      st[1] = 1;
    }
    Atomics.store(st, 0, 2);
    Atomics.notify(st, 0);
  }
});
`;

export interface WorkerPool {
  readonly size: number;
  /**
   * Run `parts` calls, part 0 on this thread and the others on workers, and wait for all.
   * makeCall(part) returns [op, ...args]; runLocal runs one call on this thread.
   */
  run(parts: number, makeCall: (part: number) => number[], runLocal: (call: number[]) => void): void;
  dispose(): void;
}

export async function createWorkerPool(
  module: WebAssembly.Module,
  heap: WasmHeap,
  nWorkers: number,
): Promise<WorkerPool> {
  const workers: { w: Worker; st: Int32Array; args: Float64Array; ctrl: number }[] = [];
  for (let i = 0; i < nWorkers; i++) {
    const ctrl = heap.scratch(CTRL_BYTES);
    new Uint8Array(heap.buffer, ctrl, CTRL_BYTES).fill(0);
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory: heap.memory, ctrl } });
    await new Promise<void>((resolve, reject) => {
      w.once("message", () => resolve());
      w.once("error", reject);
    });
    w.unref(); // a blocked worker must not keep the process alive
    workers.push({
      w,
      ctrl,
      st: new Int32Array(heap.buffer, ctrl, 2),
      args: new Float64Array(heap.buffer, ctrl + 8, MAX_ARGS + 2),
    });
  }
  let disposed = false;
  return {
    size: nWorkers,
    run(parts, makeCall, runLocal) {
      const used = Math.min(parts - 1, workers.length);
      for (let p = 1; p <= used; p++) {
        const c = makeCall(p);
        const wk = workers[p - 1]!;
        wk.args[0] = c.length - 1;
        for (let i = 0; i < c.length; i++) wk.args[i + 1] = c[i]!;
        Atomics.store(wk.st, 0, 1);
        Atomics.notify(wk.st, 0);
      }
      runLocal(makeCall(0));
      let failed = false;
      for (let p = 1; p <= used; p++) {
        const wk = workers[p - 1]!;
        while (Atomics.load(wk.st, 0) !== 2) Atomics.wait(wk.st, 0, 1);
        if (wk.st[1] !== 0) failed = true;
        Atomics.store(wk.st, 0, 0);
      }
      // Parts beyond the pool size (parts > threads) run here.
      for (let p = used + 1; p < parts; p++) runLocal(makeCall(p));
      if (failed) throw new Error("a kvlab.wasm worker failed while running a kernel");
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const wk of workers) {
        Atomics.store(wk.st, 0, 3);
        Atomics.notify(wk.st, 0);
        void wk.w.terminate();
        heap.release(wk.ctrl);
      }
    },
  };
}
