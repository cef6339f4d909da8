/**
 * The standard cache's working memory, shared by its KV heads and reused across calls: query
 * positions and rows, staging rows, softmax rows, and the decoded path's keys/values/positions.
 * Transient (not in memory()), counted in stats().physical (part scratch). What kernels read in
 * place is in the executor's memory.
 */
import type { Executor } from "../../kernels/executor.ts";
import { q8Blocks, quantizeQ8 } from "../../quant/q8-query.ts";
import { bytesOf } from "../accounting.ts";

export class Scratch {
  qPos: Int32Array = new Int32Array(0); // (nRows) query rows' positions (executor memory)
  qRot = new Float32Array(0); // (nRows, headDim) transformed query rows (allocated when a Transform stages them)
  probs = new Float32Array(0); // (nRows, nSlots)
  kTmp = new Float32Array(0); // (nNew, headDim) transformed keys on append
  vTmp = new Float32Array(0); // (nNew, headDim) rotated values on append
  kScr: Float32Array = new Float32Array(0); // (nSlots, headDim) decoded keys (executor memory)
  vScr: Float32Array = new Float32Array(0); // (nSlots, headDim) decoded values (executor memory)
  posScr: Int32Array = new Int32Array(0); // (nSlots) their positions (executor memory)
  ropePos = new Int32Array(0); // RoPE positions of pre-RoPE keys: negated on append, ranks at attention
  // query: q8 (spec.query): the dequantized rows, their int8 codes and block scales (q8-query.ts)
  private q8Hat: Float32Array = new Float32Array(0);
  private q8Codes: Int8Array = new Int8Array(0);
  private q8Scales: Float32Array = new Float32Array(0);

  constructor(
    private readonly exec: Executor,
    private readonly headDim: number,
    private readonly q8: boolean, // spec.query "q8"
  ) {}

  /** The query positions of nRows = group x qPositions rows (query heads of one KV head are contiguous). */
  queries(qPositions: Int32Array, group: number): Int32Array {
    const nRows = group * qPositions.length;
    if (this.qPos.length < nRows) {
      this.exec.free(this.qPos);
      this.qPos = this.exec.allocI32(nRows);
    }
    for (let g = 0; g < group; g++) this.qPos.set(qPositions, g * qPositions.length);
    return this.qPos.subarray(0, nRows);
  }

  probsFor(n: number): Float32Array {
    if (this.probs.length < n) this.probs = new Float32Array(n);
    return this.probs.subarray(0, n);
  }

  /** Staging for n rows of keys or values, holding a copy of src's n rows. */
  staged(which: "kTmp" | "vTmp" | "qRot", src: Float32Array, n: number): Float32Array {
    if (this[which].length < n * this.headDim) this[which] = new Float32Array(n * this.headDim);
    const t = this[which].subarray(0, n * this.headDim);
    t.set(src.subarray(0, n * this.headDim));
    return t;
  }

  /** RoPE positions for at least n rows (allocated `size` when grown). */
  ranks(n: number, size = n): Int32Array {
    if (this.ropePos.length < n) this.ropePos = new Int32Array(size);
    return this.ropePos;
  }

  /** Room for n decoded slots: keys and positions, values too when `values`; grown by doubling. */
  decoded(n: number, values: boolean): this {
    const d = this.headDim;
    if (this.kScr.length < n * d) {
      const cap = Math.max(n, 2 * (this.kScr.length / d)) * d;
      this.free();
      this.kScr = this.exec.allocF32(cap);
      if (values) this.vScr = this.exec.allocF32(cap);
      this.posScr = this.exec.allocI32(cap / d);
    }
    this.ranks(n, this.posScr.length);
    return this;
  }

  /** Room for n decoded value rows alone (channel-axis attention over values it cannot read in place). */
  values(n: number): Float32Array {
    const d = this.headDim;
    if (this.vScr.length < n * d) {
      this.exec.free(this.vScr);
      this.vScr = this.exec.allocF32(Math.max(n, 2 * (this.vScr.length / d)) * d);
    }
    return this.vScr.subarray(0, n * d);
  }

  /**
   * The query rows an attend call uses: q itself, or with spec.query "q8" its q8_0 form
   * (every executor attends over qHat; `q8` lets one score with integer dot products).
   */
  query(q: Float32Array, nRows: number) {
    if (!this.q8) return { q };
    const d = this.headDim;
    if (this.q8Hat.length < nRows * d) {
      for (const a of [this.q8Hat, this.q8Codes, this.q8Scales]) this.exec.free(a);
      this.q8Hat = this.exec.allocF32(nRows * d);
      const u8 = this.exec.allocU8(nRows * d);
      this.q8Codes = new Int8Array(u8.buffer, u8.byteOffset, u8.length);
      this.q8Scales = this.exec.allocF32(nRows * q8Blocks(d));
    }
    const qHat = this.q8Hat.subarray(0, nRows * d);
    const codes = this.q8Codes.subarray(0, nRows * d);
    const scales = this.q8Scales.subarray(0, nRows * q8Blocks(d));
    return quantizeQ8(q, nRows, d, codes, scales, qHat) ? { q: qHat, q8: { codes, scales } } : { q };
  }

  /** Bytes held: every buffer above as allocated, the q8 query rows included. */
  bytes(): number {
    const { qPos, qRot, probs, kTmp, vTmp, kScr, vScr, posScr, ropePos, q8Hat, q8Codes, q8Scales } = this;
    return bytesOf(qPos, qRot, probs, kTmp, vTmp, kScr, vScr, posScr, ropePos, q8Hat, q8Codes, q8Scales);
  }

  private free(): void {
    for (const a of [this.kScr, this.vScr, this.posScr]) this.exec.free(a);
  }

  dispose(): void {
    this.free();
    for (const a of [this.qPos, this.q8Hat, this.q8Codes, this.q8Scales]) this.exec.free(a);
    this.qPos = new Int32Array(0);
    this.kScr = new Float32Array(0);
    this.vScr = new Float32Array(0);
    this.posScr = new Int32Array(0);
  }
}
