/**
 * Issue 12, item 1: one caught error must not poison an executor. Every error path below
 * (sizes that are NaN, fractional, negative, infinite or too large; shapes with a zero
 * dimension; API misuse of a cache, including use after dispose) is taken on a live executor,
 * and after each one the executor must still compute matmul and attend bit for bit as before,
 * with no arena memory leaked by the failed call.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createCache } from "../../src/cache/create.ts";
import type { KVCache, KVShape } from "../../src/cache/types.ts";
import { KvlabError, ShapeError, UsageError } from "../../src/errors.ts";
import type { Executor } from "../../src/kernels/executor.ts";
import { createRefExecutor } from "../../src/kernels/ref.ts";
import { Arena } from "../../src/kernels/wasm-arena.ts";
import { f32 } from "../../src/quant/f32.ts";
import { randn, rng, wasmExecutor, wasmSkip } from "../kernels/wasm-helpers.ts";

const BAD_SIZES = [
  Number.NaN,
  -1,
  -16,
  1.5,
  0.1,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 53,
  2 ** 40,
];

test("arena: a size that is not a safe non-negative integer throws and leaves the arena as it was", () => {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const arena = new Arena(mem, 64);
  const a = arena.alloc(100);
  for (const bad of [...BAD_SIZES, 5 * 65536 /* past the memory's maximum: grow fails */]) {
    const end = arena.end;
    const used = arena.bytesInUse;
    assert.throws(() => arena.alloc(bad), KvlabError, `alloc(${bad})`);
    assert.equal(arena.end, end, `alloc(${bad}) moved the top`);
    assert.equal(arena.bytesInUse, used, `alloc(${bad}) changed the bytes in use`);
  }
  // Later blocks are distinct, aligned and after the live one (the NaN top made them all 0 before).
  const b = arena.alloc(32);
  const c = arena.alloc(32);
  assert.ok(Number.isInteger(b) && Number.isInteger(c));
  assert.notEqual(b, c);
  assert.ok(b >= a + 112 && c >= a + 112);
  assert.equal(arena.release(Number.NaN), false);
});

interface Probe {
  mm: Float32Array;
  att: Float32Array;
}

/** A fixed matmul and a fixed attend through a fresh int4 cache: the numbers that must not change. */
async function probe(exec: Executor): Promise<Probe> {
  const r = rng(7);
  const n = 5;
  const dIn = 48;
  const dOut = 40;
  const x = randn(r, n * dIn);
  const w = randn(r, dOut * dIn);
  const mm = exec.allocF32(n * dOut);
  exec.matmul(mm, x, w, n, dIn, dOut);
  const shape: KVShape = { nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 32, maxTokens: 64 };
  const cache = await createCache("int4", shape, { executor: exec });
  const nTok = 9;
  for (let l = 0; l < 2; l++) {
    const k = randn(r, 2 * nTok * 32);
    const v = randn(r, 2 * nTok * 32);
    await cache.append(
      l,
      k,
      v,
      Int32Array.from({ length: nTok }, (_, i) => i),
    );
  }
  const q = randn(r, 4 * 3 * 32);
  const att = new Float32Array(q.length);
  await cache.attend(1, q, Int32Array.of(2, 5, 8), att);
  cache.dispose();
  const res = { mm: mm.slice(), att };
  exec.free(mm);
  return res;
}

/** Error paths, each expected to throw a KvlabError. */
function errorPaths(exec: Executor): [string, () => unknown][] {
  const shape: KVShape = { nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, maxTokens: 4 };
  const paths: [string, () => unknown][] = [];
  for (const bad of BAD_SIZES) {
    paths.push([`allocF32(${bad})`, () => exec.allocF32(bad)]);
    paths.push([`allocU8(${bad})`, () => exec.allocU8(bad)]);
    const x = new Float32Array(64);
    paths.push([`matmul n=${bad}`, () => exec.matmul(new Float32Array(64), x, x, bad, 8, 8)]);
    paths.push([`matmul dIn=${bad}`, () => exec.matmul(new Float32Array(64), x, x, 1, bad, 8)]);
    paths.push([`rmsnorm dim=${bad}`, () => exec.rmsnorm(new Float32Array(64), x, x, 1, bad, 1e-5)]);
    paths.push([`swiglu n=${bad}`, () => exec.swiglu(new Float32Array(64), x, x, bad)]);
    paths.push([
      `decodeRows nRows=${bad}`,
      () =>
        exec.decodeRows(
          f32,
          { payload: new Uint8Array(64), scales: new Uint16Array(0), zeros: new Uint16Array(0) },
          0,
          bad,
          4,
          x,
        ),
    ]);
    for (const key of ["nLayers", "nHeads", "nKvHeads", "headDim", "maxTokens"] as const)
      paths.push([
        `createCache ${key}=${bad}`,
        () => createCache("int4", { ...shape, [key]: bad }, { executor: exec }),
      ]);
  }
  // The example: head_count 0 gives headDim = dim / 0.
  paths.push([
    "createCache headDim 0",
    () => createCache("int4", { ...shape, headDim: 0 }, { executor: exec }),
  ]);
  paths.push([
    "createCache headDim dim/0",
    () => createCache("int4", { ...shape, headDim: 64 / 0 }, { executor: exec }),
  ]);
  paths.push([
    "createCache nKvHeads 3 of 4",
    () => createCache("int4", { ...shape, nKvHeads: 3 }, { executor: exec }),
  ]);
  return paths;
}

/** Cache misuse: each callback gets a live cache with 2 tokens in layer 0 and must throw. */
const MISUSE: [string, (c: KVCache, kv: Float32Array, q: Float32Array) => unknown, typeof KvlabError][] = [
  ["append layer 0.5", (c, kv) => c.append(0.5, kv, kv, Int32Array.of(2)), ShapeError],
  ["append layer -1", (c, kv) => c.append(-1, kv, kv, Int32Array.of(2)), ShapeError],
  ["append layer 2", (c, kv) => c.append(2, kv, kv, Int32Array.of(2)), ShapeError],
  ["append layer NaN", (c, kv) => c.append(Number.NaN, kv, kv, Int32Array.of(2)), ShapeError],
  [
    "attend layer 1.5",
    (c, _, q) => c.attend(1.5, q, Int32Array.of(2), new Float32Array(q.length)),
    ShapeError,
  ],
  ["attend layer 7", (c, _, q) => c.attend(7, q, Int32Array.of(2), new Float32Array(q.length)), ShapeError],
  [
    "attend layer NaN",
    (c, _, q) => c.attend(Number.NaN, q, Int32Array.of(2), new Float32Array(q.length)),
    ShapeError,
  ],
  [
    "append past maxTokens",
    (c) => c.append(0, new Float32Array(2 * 3 * 8), new Float32Array(2 * 3 * 8), Int32Array.of(2, 3, 4)),
    ShapeError,
  ],
  ["append position repeated", (c, kv) => c.append(0, kv, kv, Int32Array.of(1)), ShapeError],
  ["append position going back", (c, kv) => c.append(0, kv, kv, Int32Array.of(0)), ShapeError],
  [
    "append positions not increasing in a chunk",
    (c) => c.append(1, new Float32Array(32), new Float32Array(32), Int32Array.of(3, 3)),
    ShapeError,
  ],
  ["append negative position", (c, kv) => c.append(1, kv, kv, Int32Array.of(-1)), ShapeError],
  [
    "append Float64Array k",
    (c, kv) => c.append(1, new Float64Array(kv.length) as unknown as Float32Array, kv, Int32Array.of(0)),
    ShapeError,
  ],
  [
    "append positions as Float64Array",
    (c, kv) => c.append(1, kv, kv, Float64Array.of(0) as unknown as Int32Array),
    ShapeError,
  ],
  [
    "attend q as Float64Array",
    (c, _, q) =>
      c.attend(
        0,
        new Float64Array(q.length) as unknown as Float32Array,
        Int32Array.of(2),
        new Float32Array(q.length),
      ),
    ShapeError,
  ],
  [
    "append wrong k length",
    (c) => c.append(1, new Float32Array(3), new Float32Array(3), Int32Array.of(0)),
    ShapeError,
  ],
];

for (const name of ["ref", "wasm", "wasm-2-threads"]) {
  const skip = name.startsWith("wasm") ? wasmSkip : false;
  test(`${name}: after every error path, matmul and attend are exactly as before and no memory leaks`, {
    skip,
  }, async () => {
    const exec: Executor = name === "ref" ? createRefExecutor() : await wasmExecutor(name === "wasm" ? 1 : 2);
    const inUse = () => ("bytesInUse" in exec ? (exec as { bytesInUse(): number }).bytesInUse() : 0);
    try {
      const base = await probe(exec);
      const used = inUse();
      const check = async (what: string) => {
        const now = await probe(exec);
        assert.deepEqual(now.mm, base.mm, `matmul changed after ${what}`);
        assert.deepEqual(now.att, base.att, `attend changed after ${what}`);
        assert.equal(inUse(), used, `arena bytes in use changed after ${what}`);
      };
      for (const [what, f] of errorPaths(exec)) {
        await assert.rejects(async () => f(), KvlabError, what);
        await check(what);
      }
      const shape: KVShape = { nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, maxTokens: 4 };
      const kv = new Float32Array(2 * 8);
      const q = new Float32Array(4 * 8);
      for (const [what, f, cls] of MISUSE) {
        const cache = await createCache("int4", shape, { executor: exec });
        await cache.append(0, new Float32Array(32), new Float32Array(32), Int32Array.of(0, 1));
        await assert.rejects(async () => f(cache, kv, q), cls, what);
        // The failed call stored nothing: the cache still holds 2 tokens and takes the next one.
        assert.equal(cache.memory().tokenSlots, 2 * 2, `${what}: slots`);
        await cache.append(0, kv, kv, Int32Array.of(2));
        cache.dispose();
        await check(what);
      }
      // Disposed caches throw on use; dispose is idempotent and frees nothing twice.
      const a = await createCache("int4", shape, { executor: exec });
      await a.append(0, kv, kv, Int32Array.of(0));
      a.dispose();
      a.dispose();
      const b = await createCache("int4", shape, { executor: exec }); // may reuse a's blocks
      await b.append(
        0,
        kv.map((_, i) => i),
        kv,
        Int32Array.of(0),
      );
      await assert.rejects(async () => a.append(0, kv, kv, Int32Array.of(1)), UsageError);
      await assert.rejects(
        async () => a.attend(0, q, Int32Array.of(1), new Float32Array(q.length)),
        UsageError,
      );
      assert.throws(() => a.memory(), UsageError);
      assert.throws(() => a.reset(), UsageError);
      assert.equal(a.stats().appended, 1, "stats() stays readable after dispose");
      assert.equal(b.memory().tokenSlots, 2);
      b.dispose();
      await check("dispose twice and use after dispose");
    } finally {
      if (name !== "ref") exec.dispose();
    }
  });
}
