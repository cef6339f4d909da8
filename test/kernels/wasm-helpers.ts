/** Shared fixtures of the wasm executor parity tests: one executor per test file, random data. */

import { existsSync } from "node:fs";
import { createWasmExecutor, type WasmExecutor } from "../../src/kernels/wasm.ts";
import { WASM_PATH } from "../../src/kernels/wasm-loader.ts";

/** Skip reason when the module has not been built (npm test builds it first). */
export const wasmSkip: string | false = existsSync(WASM_PATH)
  ? false
  : `${WASM_PATH} missing: run npm run asbuild`;

export async function wasmExecutor(threads = 1): Promise<WasmExecutor> {
  return createWasmExecutor({ threads });
}

/** Deterministic PRNG (mulberry32) so failures reproduce from the printed seed. (src/rng.ts) */
export { mulberry32 as rng } from "../../src/rng.ts";

/** Approximately normal values (sum of uniforms) times scale. */
export function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() + r() + r() + r() - 2) * 1.7 * scale;
  return out;
}

/** Elementwise |a - b| <= tol(i), NaN matching NaN; returns the first offending index or -1. */
export function firstMismatch(a: Float32Array, b: Float32Array, tol: (i: number) => number): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return i;
      continue;
    }
    if (x === y) continue;
    if (!(Math.abs(x - y) <= tol(i))) return i;
  }
  return -1;
}
