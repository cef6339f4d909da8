/**
 * The worker pool splits matmul output rows and attention query rows across threads that share
 * the WASM memory. Each output element is computed by exactly the same instruction sequence, so
 * 2 threads must equal 1 thread bit for bit (and the reference within tolerance, see the op tests).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

let one: WasmExecutor;
let two: WasmExecutor;
before(async () => {
  if (wasmSkip) return;
  one = await wasmExecutor(1);
  two = await wasmExecutor(2);
});
after(() => {
  one?.dispose();
  two?.dispose();
});

function inExec(e: WasmExecutor, src: Float32Array): Float32Array {
  const a = e.allocF32(src.length);
  a.set(src);
  return a;
}

test("threads: the pool really has a worker", { skip: wasmSkip }, () => {
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2);
  assert.equal(one.poolStats(), undefined);
});

test("threads: 2-thread matmul equals 1-thread matmul bit for bit", { skip: wasmSkip }, () => {
  for (const [n, dIn, dOut] of [
    [64, 576, 1536],
    [7, 301, 199],
    [1, 1536, 577],
  ] as const) {
    const r = rng(n + dIn + dOut);
    const x = randn(r, n * dIn);
    const w = randn(r, dOut * dIn, 0.05);
    const bias = randn(r, dOut);
    const a = one.allocF32(n * dOut);
    one.matmul(a, inExec(one, x), inExec(one, w), n, dIn, dOut, inExec(one, bias));
    const b = two.allocF32(n * dOut).fill(Number.NaN);
    two.matmul(b, inExec(two, x), inExec(two, w), n, dIn, dOut, inExec(two, bias));
    assert.deepEqual(b, a, `matmul ${n}x${dIn}x${dOut}`);
  }
});

test("threads: 2-thread attention equals 1-thread attention bit for bit", { skip: wasmSkip }, () => {
  for (const type of ["int4", "f16"] as const) {
    const codec = makeCodec(type);
    const d = 64;
    const nSlots = 300;
    const nRows = 96;
    const L = codec.layout(d);
    const r = rng(5);
    const kx = randn(r, nSlots * d);
    const vx = randn(r, nSlots * d);
    const q = randn(r, nRows * d);
    const slotPos = new Int32Array(nSlots).map((_, j) => j);
    const qPos = new Int32Array(nRows).map((_, i) => 200 + i);
    const outs = [one, two].map((e) => {
      const rows = () => ({
        payload: e.allocU8(L.payloadBytes * nSlots),
        scales: e.allocU16(L.scalesPerRow * nSlots),
        zeros: e.allocU16(L.zerosPerRow * nSlots),
      });
      const k = rows();
      const v = rows();
      e.encodeRows(codec, kx, nSlots, d, k, 0);
      e.encodeRows(codec, vx, nSlots, d, v, 0);
      const out = e.allocF32(nRows * d);
      const probs = e.allocF32(nRows * nSlots);
      e.attend({
        kCodec: codec,
        vCodec: codec,
        headDim: d,
        q,
        qPos,
        nRows,
        k,
        v,
        slotPos,
        nSlots,
        scale: 0.125,
        out,
        probs,
      });
      return [out.slice(), probs.slice()];
    });
    assert.deepEqual(outs[1], outs[0], type);
  }
});

test("threads: pooled jobs are counted, and the first one runs in parallel", { skip: wasmSkip }, async () => {
  const e = await wasmExecutor(2);
  const [n, dIn, dOut] = [16, 256, 256];
  const x = inExec(e, randn(rng(1), n * dIn));
  const w = inExec(e, randn(rng(2), dOut * dIn));
  const out = e.allocF32(n * dOut);
  for (let i = 0; i < 10; i++) e.matmul(out, x, w, n, dIn, dOut);
  const s = e.poolStats()!;
  assert.equal(s.parallel + s.sequential, 10);
  assert.ok(s.parallel >= 1);
  e.dispose();
});
