/**
 * Between what the cache receives and what it stores, chosen once from the resolved spec:
 * - Hadamard rotation (QuaRot arXiv:2404.00456, TurboQuant arXiv:2504.19874), any codec: keys
 *   rotated and queries alike (scores unchanged); values rotated and the attention output rotated
 *   back (sum_j p_j R v_j = R sum_j p_j v_j), through the executor's `hadamard` op (ref and
 *   wasm have it; elsewhere each call is a counted fallback);
 * - pre-RoPE keys (KVQuant arXiv:2401.18079; StreamingLLM arXiv:2309.17453 with positions:
 *   cache): un-rotated (RoPE at -position) before encoding, rotated again at attention time at
 *   their absolute position or at their rank among the retained tokens (queries moved alike).
 */
import type { Executor } from "../../kernels/executor.ts";
import type { HadamardRotation } from "../../quant/hadamard.ts";
import type { Scratch } from "./scratch.ts";

export class Transform {
  constructor(
    private readonly exec: Executor,
    private readonly scratch: Scratch,
    private readonly headDim: number,
    private readonly rotation: { keys?: HadamardRotation; values?: HadamardRotation },
    /** Pre-RoPE storage: the model's RoPE frequencies (headDim / 2), and whether positions are ranks. */
    readonly preRope: { invFreq: Float32Array; ranks: boolean } | undefined,
  ) {}

  /** x (nRows, headDim) rotated in place (an executor op, counted where an executor lacks it); returns x. */
  private rotate(rot: HadamardRotation, x: Float32Array, nRows: number, inverse = false): Float32Array {
    this.exec.hadamard(x, nRows, rot.n, rot.signs, inverse);
    return x;
  }

  /** Keys (n, headDim) post-RoPE at `positions`, as stored: k itself or a transformed copy. */
  keys(k: Float32Array, positions: Int32Array, n: number): Float32Array {
    const rot = this.rotation.keys;
    if (!this.preRope && !rot) return k;
    const t = this.scratch.staged("kTmp", k, n);
    if (this.preRope) {
      // Undo the model's RoPE: rotating by -p inverts rotating by p.
      const neg = this.scratch.ranks(n);
      for (let i = 0; i < n; i++) neg[i] = -positions[i]!;
      this.exec.rope(t, neg, n, 1, this.headDim, this.preRope.invFreq);
    }
    if (rot) this.rotate(rot, t, n);
    return t;
  }

  /** Values (n, headDim) as stored: v itself or a rotated copy. */
  values(v: Float32Array, n: number): Float32Array {
    const rot = this.rotation.values;
    return rot ? this.rotate(rot, this.scratch.staged("vTmp", v, n), n) : v;
  }

  /** The attention output (nRows, headDim) back in the model's basis, in place. */
  output(out: Float32Array, nRows: number): void {
    if (this.rotation.values) this.rotate(this.rotation.values, out, nRows, true);
  }

  /** Query rows (nRows, headDim) against keys stored post-RoPE: q, or rotated like the keys. */
  query(q: Float32Array, nRows: number): Float32Array {
    const rot = this.rotation.keys;
    return rot ? this.rotate(rot, this.scratch.staged("qRot", q, nRows), nRows) : q;
  }

  /**
   * Decoded stored keys (nTot, headDim) at positions pos into the attention basis, in place;
   * returns the query rows (one per qPos) to attend with.
   */
  decoded(
    keys: Float32Array,
    pos: Int32Array,
    nTot: number,
    q: Float32Array,
    qPos: Int32Array,
  ): Float32Array {
    const nRows = qPos.length;
    if (!this.preRope) return this.query(q, nRows);
    // Back to the unrotated basis, then RoPE at each token's absolute position (KVQuant) or at
    // its rank among the retained tokens (StreamingLLM's positions within the cache).
    const d = this.headDim;
    const { invFreq } = this.preRope;
    if (this.rotation.keys) this.rotate(this.rotation.keys, keys, nTot, true);
    if (!this.preRope.ranks) {
      this.exec.rope(keys, pos, nTot, 1, d, invFreq);
      return q;
    }
    const order = Array.from({ length: nTot }, (_, i) => i);
    order.sort((a, b) => pos[a]! - pos[b]!);
    const ranks = this.scratch.ropePos;
    const sorted = new Int32Array(nTot);
    for (let i = 0; i < nTot; i++) {
      ranks[order[i]!] = i;
      sorted[i] = pos[order[i]!]!;
    }
    this.exec.rope(keys, ranks, nTot, 1, d, invFreq);
    // Queries arrive rotated at their absolute position p; rotating by (rank - p) moves them to rank.
    const qr = this.scratch.staged("qRot", q, nRows);
    const delta = new Int32Array(nRows);
    for (let r = 0; r < nRows; r++) {
      let rank = 0; // retained tokens before the query's position
      while (rank < nTot && sorted[rank]! < qPos[r]!) rank++;
      delta[r] = rank - qPos[r]!;
    }
    this.exec.rope(qr, delta, nRows, 1, d, invFreq);
    return qr;
  }
}
