/**
 * The queue worker's side of its compute threads (compute-thread.ts): one thread per
 * concurrency slot, each running one job at a time. A thread that dies (out of memory, a crash
 * in native code) fails its job with the reason and is replaced.
 */
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { RunRecord } from "../experiment/types.ts";
import type { FromThread, ToThread } from "./compute-thread.ts";
import type { JobPayload } from "./jobs.ts";

interface Slot {
  thread: Worker;
  ready: Promise<void>;
  busy: boolean;
  pending?: {
    id: number;
    resolve: (r: RunRecord) => void;
    reject: (e: Error) => void;
    onProgress: (done: number, total: number) => void;
  };
}

export class ComputePool {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  /** Scratch folder of this process's threads (baseline distributions), removed by close(). */
  readonly scratch = join(tmpdir(), `kvlab-worker-${process.pid}`);

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    // From the TypeScript sources (the repository, through tsx) each thread registers tsx first;
    // from the compiled package (dist/) the thread runs the compiled module directly.
    const fromSource = import.meta.url.endsWith(".ts");
    const entry = new URL(fromSource ? "./compute-thread.ts" : "./compute-thread.js", import.meta.url);
    const thread = new Worker(fromSource ? new URL("./ts-thread.js", import.meta.url) : entry, {
      workerData: { entry: entry.href, scratch: this.scratch },
    });
    const slot: Slot = { thread, busy: false, ready: Promise.resolve() };
    slot.ready = new Promise<void>((resolve, reject) => {
      const onReady = (m: FromThread) => {
        if (m.id === -1) {
          thread.off("message", onReady);
          resolve();
        }
      };
      thread.on("message", onReady);
      thread.once("error", reject);
    });
    slot.ready.catch(() => {});
    thread.on("message", (m: FromThread) => {
      const p = slot.pending;
      if (!p || m.id !== p.id) return;
      if (m.type === "progress") p.onProgress(m.done, m.total);
      else {
        slot.pending = undefined;
        slot.busy = false;
        if (m.type === "record") p.resolve(m.record);
        else p.reject(new Error(m.message));
      }
    });
    const died = (reason: string) => {
      const p = slot.pending;
      slot.pending = undefined;
      const i = this.slots.indexOf(slot);
      if (i >= 0 && !this.closed) this.slots[i] = this.spawn();
      p?.reject(new Error(`the compute thread died: ${reason}`));
    };
    thread.on("error", (err) => died(err.message));
    thread.on("exit", (code) => {
      if (!this.closed) died(`exit code ${code}`);
    });
    return slot;
  }

  private closed = false;

  /** Run one job on a free thread (the caller never runs more than `size` at once). */
  async run(payload: JobPayload, onProgress: (done: number, total: number) => void): Promise<RunRecord> {
    const slot = this.slots.find((s) => !s.busy);
    if (!slot) throw new Error("internal: more jobs than compute threads");
    slot.busy = true;
    try {
      await slot.ready;
    } catch (err) {
      slot.busy = false;
      throw err;
    }
    const id = this.nextId++;
    return new Promise<RunRecord>((resolve, reject) => {
      slot.pending = { id, resolve, reject, onProgress };
      slot.thread.postMessage({ id, payload } satisfies ToThread);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.thread.terminate()));
    await rm(this.scratch, { recursive: true, force: true });
  }
}
