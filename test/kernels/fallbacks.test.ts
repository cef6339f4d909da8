/**
 * withFallbacks (src/kernels/executor.ts): a backend implements what it can; every op of the op
 * list it lacks runs ref's and counts one fallback per call under the op's name, so no caller
 * needs to test for an op and no fallback is silent. The registry's executors are complete.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Executor, OP_NAMES, type OpName, type Ops, withFallbacks } from "../../src/kernels/executor.ts";
import { createRefExecutor } from "../../src/kernels/ref.ts";
import { availableExecutors } from "../helpers/executors.ts";

test("a backend with one op of its own: the rest run ref's, each call counted under its name", () => {
  const ref = createRefExecutor();
  let own = 0;
  const { allocF32, allocU8, allocU16, allocI32, free, dispose } = ref;
  const backend: Omit<Executor, OpName> & Partial<Ops> = {
    ...{ allocF32, allocU8, allocU16, allocI32, free, dispose },
    name: "wasm",
    fallbacks: new Map(),
    swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number) {
      own++;
      ref.swiglu(out, gate, up, n);
    },
  };
  const exec: Executor = withFallbacks(backend, ref);
  for (const op of OP_NAMES) assert.equal(typeof exec[op], "function", `${op} is filled`);
  const x = Float32Array.of(1, 2, 3, 4, 5, 6);
  const w = Float32Array.of(1, 0, 0, 1, 1, 1);
  const out = new Float32Array(4);
  exec.matmul(out, x, w, 2, 3, 2);
  exec.matmul(out, x, w, 2, 3, 2);
  const want = new Float32Array(4);
  ref.matmul(want, x, w, 2, 3, 2);
  assert.deepEqual(out, want, "the fallback computes ref's result");
  exec.swiglu(out, x, x, 4);
  exec.addInPlace(out, x, 4);
  const nll = new Float64Array(1);
  exec.nll(nll, Float32Array.of(0, 0), Int32Array.of(1), 1, 2);
  assert.ok(Math.abs(nll[0]! - Math.LN2) < 1e-12);
  assert.deepEqual(Object.fromEntries(exec.fallbacks), { matmul: 2, addInPlace: 1, nll: 1 });
  assert.equal(own, 1, "an op the backend has is its own, not counted");
});

test("every available executor implements the whole op list (its own or counted ref)", async () => {
  for (const exec of await availableExecutors())
    for (const op of OP_NAMES) assert.equal(typeof exec[op], "function", `${exec.name}.${op}`);
  // ref is the reference: it never falls back.
  const ref = createRefExecutor();
  assert.equal(
    Object.keys(ref).filter((k) => (OP_NAMES as readonly string[]).includes(k)).length,
    OP_NAMES.length,
  );
});
