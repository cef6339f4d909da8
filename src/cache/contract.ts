/**
 * The KVCache contract, checked the same way by every cache (StandardKVCache on `ref` and
 * `wasm`, GpuKVCache on `webgpu`) before anything is written:
 *
 * - shape: nLayers, nHeads, nKvHeads, headDim, maxTokens are positive safe integers within
 *   bounds no model reaches, and nHeads is a multiple of nKvHeads (checked when the cache is
 *   built, before anything is allocated);
 * - layer: an integer in [0, nLayers) on append and attend (a fractional index would address
 *   another layer's rows);
 * - arrays: k, v, q, out are Float32Array and positions, qPositions Int32Array (a Float64Array
 *   is refused, not reinterpreted or converted);
 * - positions: appended positions are non-negative and strictly increasing, within one append
 *   and across the appends to one layer since the last reset (a cache holds one sequence, in
 *   order; duplicates and out-of-order positions throw). Query positions may be any int32: a
 *   query sees the retained tokens at positions <= its own (none for a negative position);
 * - maxTokens: at most maxTokens tokens are appended to a layer between resets;
 * - after dispose() every method but stats() and dispose() throws a UsageError; dispose() is
 *   idempotent.
 *
 * Non-finite keys and values (NaN, +-Inf) are accepted, stored as the codec stores them and
 * counted in stats().nonFinite; attention over them is not specified (executors may differ).
 * What must not reach a result is a non-finite logit: the perplexity protocols throw on one.
 */
import { ShapeError, UsageError } from "../errors.ts";
import type { KVShape } from "./types.ts";

export function checkShape(shape: KVShape): void {
  for (const key of ["nLayers", "nHeads", "nKvHeads", "headDim", "maxTokens"] as const) {
    const x = shape[key];
    if (!Number.isSafeInteger(x) || x < 1)
      throw new ShapeError(`cache shape: ${key} must be a positive integer, got ${String(x)}`);
  }
  // Bounds far above any model, checked before one (layer, head) store is allocated.
  if (shape.nLayers * shape.nKvHeads > 1 << 20 || shape.nHeads > 1 << 16 || shape.headDim > 1 << 16)
    throw new ShapeError(
      `cache shape: ${shape.nLayers} layers x ${shape.nKvHeads} KV heads (at most 2^20 in all), ${shape.nHeads} heads, headDim ${shape.headDim} (at most 65536 each) is beyond any model`,
    );
  if (shape.maxTokens > 0x7fffffff)
    throw new ShapeError(`cache shape: maxTokens ${shape.maxTokens} exceeds the int32 positions (2^31 - 1)`);
  if (shape.nHeads % shape.nKvHeads !== 0)
    throw new ShapeError(`nHeads (${shape.nHeads}) must be a multiple of nKvHeads (${shape.nKvHeads})`);
}

export function checkLayer(op: string, layer: number, nLayers: number): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers)
    throw new ShapeError(`${op}: layer must be an integer in [0, ${nLayers}), got ${String(layer)}`);
}

export function checkLive(op: string, disposed: boolean): void {
  if (disposed) throw new UsageError(`${op}: the cache was disposed; create a new one`);
}

function isF32(x: unknown): x is Float32Array {
  return x instanceof Float32Array;
}

/**
 * Checks of one append, before anything is stored. newest(h): the largest position appended
 * to (layer, KV head h) since reset (-Infinity when none); seen(h): tokens appended to it.
 */
export function checkAppend(
  shape: KVShape,
  layer: number,
  k: Float32Array,
  v: Float32Array,
  positions: Int32Array,
  newest: number,
  seen: number,
): void {
  checkLayer("append", layer, shape.nLayers);
  if (!isF32(k) || !isF32(v))
    throw new ShapeError(
      `append: k and v must be Float32Array, got ${k?.constructor?.name}/${v?.constructor?.name}`,
    );
  if (!(positions instanceof Int32Array))
    throw new ShapeError(
      `append: positions must be an Int32Array, got ${(positions as object)?.constructor?.name}`,
    );
  const { nKvHeads, headDim: d } = shape;
  const nNew = positions.length;
  if (k.length !== nKvHeads * nNew * d || v.length !== k.length)
    throw new ShapeError(
      `append: k/v must be (nKvHeads=${nKvHeads}, nNew=${nNew}, headDim=${d}) = ${nKvHeads * nNew * d} floats, got ${k.length}/${v.length}`,
    );
  if (seen + nNew > shape.maxTokens)
    throw new ShapeError(
      `append: layer ${layer} holds ${seen} tokens since reset; ${nNew} more exceed the cache's maxTokens (${shape.maxTokens})`,
    );
  let prev = newest;
  for (let i = 0; i < nNew; i++) {
    const p = positions[i]!;
    if (p < 0) throw new ShapeError(`append: positions[${i}] = ${p} is negative`);
    if (p <= prev)
      throw new ShapeError(
        `append: positions[${i}] = ${p} is not after ${prev} (positions must increase strictly within a sequence; reset() starts a new one)`,
      );
    prev = p;
  }
}

export function checkAttend(
  shape: KVShape,
  layer: number,
  q: Float32Array,
  qPositions: Int32Array,
  out: Float32Array,
): void {
  checkLayer("attend", layer, shape.nLayers);
  if (!isF32(q) || !isF32(out))
    throw new ShapeError(
      `attend: q and out must be Float32Array, got ${q?.constructor?.name}/${out?.constructor?.name}`,
    );
  if (!(qPositions instanceof Int32Array))
    throw new ShapeError(
      `attend: qPositions must be an Int32Array, got ${(qPositions as object)?.constructor?.name}`,
    );
  const { nHeads, headDim: d } = shape;
  const nQ = qPositions.length;
  if (q.length !== nHeads * nQ * d || out.length !== q.length)
    throw new ShapeError(
      `attend: q/out must be (nHeads=${nHeads}, nQ=${nQ}, headDim=${d}) = ${nHeads * nQ * d} floats, got ${q.length}/${out.length}`,
    );
}
