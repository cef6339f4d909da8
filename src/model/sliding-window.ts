/**
 * Sliding-window attention (Mistral 7B v0.1, arXiv:2310.06825; query p sees keys k with
 * p - k < window, as HF's and llama.cpp's masks) on top of caches whose attention is plainly
 * causal. Two halves make it exact:
 *  - the cache drops every key the window hides from the next query (KVShape.window, the
 *    policy wrapper in src/cache/model-window.ts), whatever policy the user asked for;
 *  - the forward feeds a chunk in pieces: the tokens at positions below the window together (the
 *    window hides nothing from them), each later token alone, so no query of a piece sees a
 *    key the window hides. Past the window a prefill thus runs token by token: exact, slower.
 */
import { assertCacheSoftcap } from "../cache/softcap.ts";
import type { KVCache } from "../cache/types.ts";
import { ShapeError } from "../errors.ts";
import type { ForwardOptions } from "./llama.ts";

/** Index ranges [start, end) of the chunk, in order, that each run as one forward. */
export function windowPieces(positions: Int32Array, window: number, lastFed?: number): [number, number][] {
  const pieces: [number, number][] = [];
  let start = 0;
  for (let t = 0; t < positions.length; t++) {
    const p = positions[t]!;
    if (p < window) continue;
    // Past the window the trimming assumed the next query is the previous position + 1.
    const prev = t > 0 ? positions[t - 1] : lastFed;
    if (prev !== p - 1)
      throw new ShapeError(
        `forward: this model attends within a sliding window of ${window}; past it, positions must follow on one by one (position ${p} after ${prev ?? "none"})`,
      );
    if (t > start) pieces.push([start, t]);
    pieces.push([t, t + 1]);
    start = t + 1;
  }
  if (start < positions.length || pieces.length === 0) pieces.push([start, positions.length]);
  return pieces;
}

/** What forwardInPieces needs of the model: one piece's forward. */
interface PieceForward {
  readonly config: { vocabSize: number; slidingWindow?: number; attnSoftcap?: number };
  forwardChunk(
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts?: ForwardOptions,
  ): Promise<Float32Array>;
}

/** Run the pieces in order and gather rows [firstLogit, n) of the logits into `out`. */
export async function forwardInPieces(
  model: PieceForward,
  pieces: [number, number][],
  tokens: ArrayLike<number>,
  positions: Int32Array,
  cache: KVCache,
  opts: ForwardOptions,
  out: Float32Array,
): Promise<Float32Array> {
  const V = model.config.vocabSize;
  const first = opts.firstLogit ?? 0;
  const toks = Array.from(tokens);
  for (const [a, b] of pieces) {
    // Rows before firstLogit need no logits: a piece wholly before it computes its last row only.
    const f = Math.min(Math.max(first - a, 0), b - a - 1);
    const lg = await model.forwardChunk(toks.slice(a, b), positions.subarray(a, b), cache, { firstLogit: f });
    const from = a + f;
    const skip = Math.max(first - from, 0);
    if (from + skip < b) out.set(lg.subarray(skip * V, (b - from) * V), (from + skip - first) * V);
  }
  return out.subarray(0, (tokens.length - first) * V);
}

/**
 * The sliding-window half of a model's forward, shared by the CPU and GPU forwards (which
 * also check here that the cache applies the model's attention soft-cap): the last position
 * fed per cache (to check positions follow on past the window) and the logits buffer
 * the pieces are gathered into. Without a window it is a plain call of forwardChunk.
 */
export class WindowedForward {
  private logits = new Float32Array(0);
  private readonly lastPos = new WeakMap<KVCache, number>();

  async forward(
    model: PieceForward,
    tokens: ArrayLike<number>,
    positions: Int32Array,
    cache: KVCache,
    opts: ForwardOptions,
  ): Promise<Float32Array> {
    // Gemma 2's attention soft-cap lives in the cache: refuse one built without it.
    assertCacheSoftcap(model.config.attnSoftcap, cache.shape);
    const w = model.config.slidingWindow;
    if (w === undefined) return model.forwardChunk(tokens, positions, cache, opts);
    const pieces = windowPieces(positions, w, this.lastPos.get(cache));
    if (positions.length > 0) this.lastPos.set(cache, positions[positions.length - 1]!);
    if (pieces.length === 1) return model.forwardChunk(tokens, positions, cache, opts);
    const m = (tokens.length - (opts.firstLogit ?? 0)) * model.config.vocabSize;
    if (this.logits.length < m) this.logits = new Float32Array(m);
    return forwardInPieces(model, pieces, tokens, positions, cache, opts, this.logits);
  }
}
