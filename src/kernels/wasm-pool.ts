/**
 * Worker threads over the executor's shared WebAssembly memory. Each worker instantiates the
 * same compiled module over the same memory and blocks in Atomics.wait on its control word.
 * A job (op code + numeric args) is written once into a job block in the arena; every thread,
 * the main thread included, then claims tiles of it (output rows of a matmul, query rows of
 * an attention call) with Atomics.add on a shared counter until none are left. Dynamic tiles
 * rather than fixed halves because the 2 cores are shared with other processes: a descheduled
 * worker holds up at most one tile, the others take the rest. Ops stay synchronous for
 * callers (the Executor interface is synchronous); nothing is copied or messaged per call.
 *
 * Job block (arena): i32 [counter, nTiles, op, nArgs], then f64 args (pointers < 2^32 and the
 * f32 softmax scale are exact in f64). Per worker (arena): i32 [state, error], f64 scratch
 * pointer. state: 0 idle, 1 posted, 4 running, 2 done, 3 exit. A worker claims a posted job
 * (1 -> 4) when it wakes; when the main thread has run out of tiles it withdraws the job from
 * any worker that has not woken yet (1 -> 0) instead of waiting for that worker to be
 * scheduled, which on a loaded machine can take milliseconds.
 */
import { type HostThread, startThread } from "../platform/host.ts";
import type { WasmHeap } from "./wasm-heap.ts";
import type { AttendRows, KvlabWasmExports } from "./wasm-loader.ts";

export const OP_MATMUL = 1;
export const OP_ATTEND = 2;
export const OP_NLL = 3;
export const OP_RMSNORM = 4;
export const OP_SWIGLU = 5;
export const OP_ADD = 6;
export const OP_SWAP = 7;
const MAX_ARGS = 24;
const JOB_BYTES = 16 + 8 * MAX_ARGS;
const CTRL_BYTES = 16;
/** Atomics.load polls (tens of microseconds) before a thread sleeps in Atomics.wait. */
const SPIN = 20000;

/**
 * Run tile t of a job on one thread. Self-contained (no imports, no closure): its source is
 * also the worker's (Function.prototype.toString), so main thread and workers tile alike.
 * matmul args: [out, x, w, bias, n, dIn, dOut, rowsPerTile, weight type (0 f32, 1 f16, 2 bf16, 3 q8_0)] (16-bit weights use the scratch, when given, for several tokens); attend args: the 17 leading
 * arguments of the attend kernel, then rowsPerTile, then the q8 codes and scales (0, 0 for f32
 * queries); or, split by slots (flash-decoding), the same with out = the parts buffer
 * (attendPart, one part per tile) and -slotsPerTile; scratch is the calling thread's own.
 * nll args: [out, logits, targets, vocab, nRows, rowsPerTile]; rmsnorm: [out, x, w, n, dim, eps,
 * rowsPerTile]; swiglu: [out, gate, up, n, elementsPerTile]; add: [x, y, n, elementsPerTile];
 * swap (out (b, a, d) = x (a, b, d)): [out, x, a, b, d, outRowsPerTile].
 */
export function runTile(k: KvlabWasmExports, op: number, a: Float64Array, t: number, scratch: number): void {
  if (op === 1) {
    const per = a[7]!;
    const o0 = t * per;
    const o1 = Math.min(a[6]!, o0 + per);
    if (a[8] === 1) k.matmulF16(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, o0, o1, scratch);
    else if (a[8] === 2) k.matmulBf16(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, o0, o1, scratch);
    else if (a[8] === 3) k.matmulQ8_0(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, o0, o1, scratch);
    else k.matmul(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, o0, o1);
    return;
  }
  if (op === 3) {
    const r0 = t * a[5]!;
    k.nllRows(a[0]!, a[1]!, a[2]!, a[3]!, r0, Math.min(a[4]!, r0 + a[5]!));
    return;
  }
  if (op === 4) {
    const r0 = t * a[6]!;
    const off = r0 * a[4]! * 4;
    k.rmsnorm(a[0]! + off, a[1]! + off, a[2]!, Math.min(a[3]!, r0 + a[6]!) - r0, a[4]!, a[5]!);
    return;
  }
  if (op === 5) {
    const i0 = t * a[4]!;
    const off = i0 * 4;
    k.swiglu(a[0]! + off, a[1]! + off, a[2]! + off, Math.min(a[3]!, i0 + a[4]!) - i0);
    return;
  }
  if (op === 6) {
    const i0 = t * a[3]!;
    const off = i0 * 4;
    k.addInPlace(a[0]! + off, a[1]! + off, Math.min(a[2]!, i0 + a[3]!) - i0);
    return;
  }
  if (op === 7) {
    const b0 = t * a[5]!;
    k.swapAxes01(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, b0, Math.min(a[3]!, b0 + a[5]!));
    return;
  }
  const d = a[2]!;
  const nRows = a[5]!;
  const nSlots = a[13]!;
  const per = a[17]!;
  const rows = Array.from(a.subarray(0, 13)) as AttendRows; // descriptors ... slotPos
  if (per < 0) {
    // Slot range split: tile t attends all rows over its slots into part t.
    const j0 = -t * per;
    const j1 = Math.min(nSlots, j0 - per);
    const part = a[15]! + t * k.attendPartFloats(nRows, d) * 4;
    k.attendPart(...rows, j0, j1, a[14]!, part, scratch, a[18]!, a[19]!);
    return;
  }
  // Row split: tile t attends query rows [r0, r1) over every slot.
  const r0 = t * per;
  const r1 = Math.min(nRows, r0 + per);
  rows[3] += r0 * d * 4; // q
  rows[4] += r0 * 4; // qPos
  rows[5] = r1 - r0; // nRows
  k.attend(
    ...rows,
    nSlots,
    a[14]!,
    a[15]! + r0 * d * 4,
    a[16]! ? a[16]! + r0 * nSlots * 4 : 0,
    scratch,
    a[18]! ? a[18]! + r0 * d : 0,
    a[18]! ? a[19]! + r0 * Math.ceil(d / 32) * 4 : 0,
  );
}

// Plain JS (CommonJS) so the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { module, memory, job, ctrl } = workerData;
const runTile = ${runTile.toString()};
WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error("kvlab.wasm aborted"); } } }).then((inst) => {
  const k = inst.exports;
  const ji = new Int32Array(memory.buffer, job, 4);
  const args = new Float64Array(memory.buffer, job + 16, ${MAX_ARGS});
  const st = new Int32Array(memory.buffer, ctrl, 2);
  const scr = new Float64Array(memory.buffer, ctrl + 8, 1);
  parentPort.postMessage("ready");
  for (;;) {
    // Spin briefly before sleeping: a forward posts jobs microseconds apart, and a futex wake
    // costs more than a small matmul tile.
    for (let i = 0; i < ${SPIN} && Atomics.load(st, 0) === 0; i++);
    Atomics.wait(st, 0, 0);
    if (Atomics.load(st, 0) === 3) break;
    if (Atomics.compareExchange(st, 0, 1, 4) !== 1) continue; // withdrawn before we woke
    try {
      const op = ji[2];
      const nTiles = ji[1];
      for (let t = Atomics.add(ji, 0, 1); t < nTiles; t = Atomics.add(ji, 0, 1)) runTile(k, op, args, t, scr[0]);
      st[1] = 0;
    } catch {
      st[1] = 1;
    }
    Atomics.store(st, 0, 2);
    Atomics.notify(st, 0);
  }
});
`;

/** How the pool's jobs ran: in parallel, or on the main thread alone because workers were late. */
export interface PoolStats {
  parallel: number;
  sequential: number;
  /** Times the pool switched to main-thread-only after consecutive late workers. */
  backoffs: number;
}

/** Consecutive jobs where waiting for workers took longer than the main thread's own share. */
const LATE_LIMIT = 3;
/** Jobs run on the main thread alone after LATE_LIMIT late jobs, before trying workers again. */
const BACKOFF_JOBS = 64;

export interface WorkerPool {
  /** Worker threads (the main thread is one more). */
  readonly size: number;
  readonly stats: PoolStats;
  /**
   * Run nTiles tiles of a job on the main thread and all workers, and wait for all of them.
   * scratchBytes: per-thread scratch (attention), allocated per call.
   */
  run(op: number, args: number[], nTiles: number, scratchBytes: number): void;
  dispose(): void;
}

export async function createWorkerPool(
  module: WebAssembly.Module,
  heap: WasmHeap,
  k: KvlabWasmExports,
  nWorkers: number,
): Promise<WorkerPool> {
  const job = heap.scratch(JOB_BYTES);
  new Uint8Array(heap.buffer, job, JOB_BYTES).fill(0);
  const ji = new Int32Array(heap.buffer, job, 4);
  const args = new Float64Array(heap.buffer, job + 16, MAX_ARGS);
  const workers: { w: HostThread; st: Int32Array; scr: Float64Array; ctrl: number }[] = [];
  for (let i = 0; i < nWorkers; i++) {
    const ctrl = heap.scratch(CTRL_BYTES);
    new Uint8Array(heap.buffer, ctrl, CTRL_BYTES).fill(0);
    // Node: a worker_threads Worker (unref'd); browsers: a Web Worker (src/platform/host*.ts).
    const w = await startThread(WORKER_SOURCE, { module, memory: heap.memory, job, ctrl });
    workers.push({
      w,
      ctrl,
      st: new Int32Array(heap.buffer, ctrl, 2),
      scr: new Float64Array(heap.buffer, ctrl + 8, 1),
    });
  }
  let disposed = false;
  const stats: PoolStats = { parallel: 0, sequential: 0, backoffs: 0 };
  // On a machine shared with other processes a worker that claimed a tile can be descheduled
  // for a whole time slice, and the main thread then waits far longer than the job takes.
  // When that happens LATE_LIMIT jobs in a row, run the next BACKOFF_JOBS on this thread alone
  // (same results: tiles are independent), then try the workers again.
  let late = 0;
  let backoff = 0;
  return {
    size: nWorkers,
    stats,
    run(op, a, nTiles, scratchBytes) {
      if (a.length > MAX_ARGS) throw new Error(`pool job has ${a.length} args, at most ${MAX_ARGS}`);
      if (backoff > 0) {
        backoff--;
        stats.sequential++;
        const scratch = scratchBytes > 0 ? heap.scratch(scratchBytes) : 0;
        args.set(a);
        try {
          for (let t = 0; t < nTiles; t++) runTile(k, op, args, t, scratch);
        } finally {
          if (scratch) heap.release(scratch);
        }
        return;
      }
      stats.parallel++;
      const scratch = scratchBytes > 0 ? heap.scratch(scratchBytes * (workers.length + 1)) : 0;
      args.set(a);
      Atomics.store(ji, 1, nTiles);
      Atomics.store(ji, 2, op);
      Atomics.store(ji, 0, 0);
      workers.forEach((wk, i) => {
        wk.scr[0] = scratch ? scratch + (i + 1) * scratchBytes : 0;
        Atomics.store(wk.st, 0, 1);
        Atomics.notify(wk.st, 0);
      });
      let failed = false;
      const t0 = performance.now();
      let t1 = t0;
      try {
        for (let t = Atomics.add(ji, 0, 1); t < nTiles; t = Atomics.add(ji, 0, 1))
          runTile(k, op, args, t, scratch);
        t1 = performance.now();
      } finally {
        for (const wk of workers) {
          if (Atomics.compareExchange(wk.st, 0, 1, 0) === 1) continue; // never started: withdrawn
          for (let i = 0; i < SPIN && Atomics.load(wk.st, 0) !== 2; i++);
          while (Atomics.load(wk.st, 0) !== 2) Atomics.wait(wk.st, 0, 4);
          if (wk.st[1] !== 0) failed = true;
          Atomics.store(wk.st, 0, 0);
        }
        if (scratch) heap.release(scratch);
      }
      if (failed) throw new Error("a kvlab.wasm worker failed while running a kernel");
      const waited = performance.now() - t1;
      late = waited > t1 - t0 + 0.05 ? late + 1 : 0;
      if (late >= LATE_LIMIT) {
        late = 0;
        backoff = BACKOFF_JOBS;
        stats.backoffs++;
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const wk of workers) {
        Atomics.store(wk.st, 0, 3);
        Atomics.notify(wk.st, 0);
        wk.w.terminate();
        heap.release(wk.ctrl);
      }
      heap.release(job);
    },
  };
}
