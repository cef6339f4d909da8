/**
 * The `ref` executor: plain TypeScript, written for clarity. It is the oracle the `wasm` and
 * `webgpu` executors are tested against. Attention decodes stored rows a block of slots at a
 * time into a small scratch shared by all query rows (never a full f32 copy of the cache) and
 * uses a two-pass stable softmax.
 */
import { ShapeError } from "../errors.ts";
import { type ChannelQuantOptions, dequantizeChannelRow, quantizeChannelGroup } from "../quant/channel.ts";
import { f32 as f32Codec } from "../quant/f32.ts";
import { hadamardRows } from "../quant/hadamard.ts";
import { q8wValues, q8wWeightedSum } from "../quant/q8-weights.ts";
import type { Codec, EncodedRows } from "../quant/types.ts";
import {
  type AttendArgs,
  type ChannelAttendArgs,
  type ChannelKeyRows,
  checkSize,
  type Executor,
  need,
  sizes,
} from "./executor.ts";
import { type Matrix, matrixType, storedLength, widenInto } from "./weights.ts";

export function refAttend(a: AttendArgs): void {
  const { headDim: d, nRows, nSlots } = a;
  // Slots are decoded in blocks of SLOT_BLOCK rows shared by every query row (decode is
  // deterministic, so this equals decoding per query row, nRows times cheaper); scores and
  // sums run over slots in ascending order exactly as a row-at-a-time loop would.
  const blk = new Float32Array(Math.min(nSlots, SLOT_BLOCK) * d); // (block, headDim)
  const scores = new Float64Array(nRows * nSlots); // (nRows, nSlots)
  const max = new Float64Array(nRows).fill(Number.NEGATIVE_INFINITY);
  const cap = a.softcap; // Gemma 2: scores soft-capped before the softmax
  for (let j0 = 0; j0 < nSlots; j0 += SLOT_BLOCK) {
    const n = Math.min(SLOT_BLOCK, nSlots - j0);
    a.kCodec.decode(a.k, j0, n, d, blk);
    for (let r = 0; r < nRows; r++) {
      const qOff = r * d;
      for (let b = 0; b < n; b++) {
        const j = j0 + b;
        if (a.slotPos[j]! > a.qPos[r]!) {
          scores[r * nSlots + j] = Number.NEGATIVE_INFINITY;
          continue;
        }
        let dot = 0;
        for (let i = 0; i < d; i++) dot += a.q[qOff + i]! * blk[b * d + i]!;
        const s = cap === undefined ? dot * a.scale : cap * Math.tanh((dot * a.scale) / cap);
        scores[r * nSlots + j] = s;
        if (s > max[r]!) max[r] = s;
      }
    }
  }
  const inv = new Float64Array(nRows);
  for (let r = 0; r < nRows; r++) {
    let sum = 0;
    for (let j = 0; j < nSlots; j++) {
      const at = r * nSlots + j;
      const e = scores[at] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(scores[at]! - max[r]!);
      scores[at] = e;
      sum += e;
    }
    inv[r] = sum > 0 ? 1 / sum : 0; // a row with no visible slot outputs zeros
  }
  const acc = new Float64Array(nRows * d);
  // query: q8w over int8 / int4 values: the weights in q8_0 per block of 32 slots (q8-weights.ts)
  const q8w = a.q8?.weights ? q8wValues(a.vCodec, d) : null;
  if (q8w) {
    for (let r = 0; r < nRows; r++) {
      const p = scores.subarray(r * nSlots, (r + 1) * nSlots);
      for (let j = 0; j < nSlots; j++) p[j] = p[j]! * inv[r]!;
      if (a.probs) for (let j = 0; j < nSlots; j++) a.probs[r * nSlots + j] = p[j]!;
      q8wWeightedSum(q8w, a.v, d, p, nSlots, acc, r * d);
    }
    for (let i = 0; i < nRows * d; i++) a.out[i] = acc[i]!;
    return;
  }
  for (let j0 = 0; j0 < nSlots; j0 += SLOT_BLOCK) {
    const n = Math.min(SLOT_BLOCK, nSlots - j0);
    a.vCodec.decode(a.v, j0, n, d, blk);
    for (let r = 0; r < nRows; r++)
      for (let b = 0; b < n; b++) {
        const j = j0 + b;
        const p = scores[r * nSlots + j]! * inv[r]!;
        if (a.probs) a.probs[r * nSlots + j] = p;
        if (p === 0) continue;
        for (let i = 0; i < d; i++) acc[r * d + i]! += p * blk[b * d + i]!;
      }
  }
  for (let i = 0; i < nRows * d; i++) a.out[i] = acc[i]!;
}

/** Slots decoded at a time by refAttend (a bounded scratch: never a full f32 copy of the cache). */
const SLOT_BLOCK = 64;

export function refMatmul(
  out: Float32Array,
  x: Float32Array,
  w: Matrix,
  n: number,
  dIn: number,
  dOut: number,
  bias?: Float32Array,
): void {
  // 16-bit and Q8_0 weights: each row widened (exactly) to f32 first, so the products and sums are the
  // ones the matrix widened on load gives (src/kernels/weights.ts).
  const row = w instanceof Float32Array ? undefined : new Float32Array(dIn);
  for (let o = 0; o < dOut; o++) {
    let wr: Float32Array;
    let wo = 0;
    if (row) {
      widenInto(w, o * dIn, row);
      wr = row;
    } else {
      wr = w as Float32Array;
      wo = o * dIn;
    }
    for (let t = 0; t < n; t++) {
      const xo = t * dIn;
      let acc = 0;
      for (let i = 0; i < dIn; i++) acc += x[xo + i]! * wr[wo + i]!;
      out[t * dOut + o] = acc + (bias ? bias[o]! : 0);
    }
  }
}

export function refRmsnorm(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  n: number,
  dim: number,
  eps: number,
) {
  for (let t = 0; t < n; t++) {
    const o = t * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * inv * w[i]!;
  }
}

export function refRope(
  x: Float32Array,
  positions: Int32Array,
  n: number,
  nHeads: number,
  headDim: number,
  invFreq: Float32Array,
): void {
  const half = headDim / 2;
  for (let t = 0; t < n; t++) {
    const pos = positions[t]!;
    for (let h = 0; h < nHeads; h++) {
      const o = (t * nHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = pos * invFreq[i]!;
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = x[o + i]!;
        const b = x[o + i + half]!;
        x[o + i] = a * c - b * s;
        x[o + i + half] = b * c + a * s;
      }
    }
  }
}

export function refSwiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

/** An allocation the JS heap refuses becomes a ShapeError naming the size. */
function allocOr<T>(make: () => T, op: string, n: number): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof RangeError) throw new ShapeError(`${op}: cannot allocate ${n} elements (${e.message})`);
    throw e;
  }
}

/** -log softmax(logits)[target] in double precision (the NLL every protocol scores). logits: (vocab). */
export function nllOf(logits: Float32Array, target: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return Math.log(sum) + max - logits[target]!;
}

/** dst (b, a, d) = src (a, b, d): (n, nH, d) -> (nH, n, d) and back. Plain loops: no views per row. */
function refSwapAxes01(dst: Float32Array, src: Float32Array, a: number, b: number, d: number): void {
  for (let j = 0; j < b; j++)
    for (let i = 0; i < a; i++) {
      const s = (i * b + j) * d;
      const o = (j * a + i) * d;
      for (let c = 0; c < d; c++) dst[o + c] = src[s + c]!;
    }
}

/** Slots [first, first + n) of channel-axis keys decoded into dst (n, headDim); residual slots copied. */
function refChannelDecode(
  rows: ChannelKeyRows,
  headDim: number,
  opts: ChannelQuantOptions,
  first: number,
  n: number,
  dst: Float32Array,
): void {
  const d = headDim;
  for (let t = 0; t < n; t++) {
    const slot = first + t;
    const g = rows.groupOf[slot]!;
    if (g === -1) dst.set(rows.resid.subarray(slot * d, (slot + 1) * d), t * d);
    else
      dequantizeChannelRow(
        rows.codes,
        slot * rows.codeBytes,
        rows.scales,
        rows.zeros,
        g * d,
        d,
        opts,
        dst,
        t * d,
      );
  }
}

/**
 * Attention from channel-axis keys: the keys decoded to f32 (refChannelDecode), values given as
 * f32 rows or decoded here (window rows as stored, the rest through their codec), then refAttend
 * over f32 rows: the same arithmetic as decoding into a scratch and calling attend.
 */
function refChannelAttend(a: ChannelAttendArgs): boolean {
  const d = a.headDim;
  const keys = new Float32Array(a.nSlots * d); // (nSlots, headDim)
  refChannelDecode(a.keys, d, a.opts, 0, a.nSlots, keys);
  let v = a.v;
  if (!v) {
    const vs = a.values!;
    v = new Float32Array(a.nSlots * d); // (nSlots, headDim)
    for (let j = 0; j < a.nSlots; j++)
      if (vs.inResid[j]) v.set(vs.resid.subarray(j * d, (j + 1) * d), j * d);
      else vs.codec.decode(vs.rows, j, 1, d, v.subarray(j * d, (j + 1) * d));
  }
  const rows = (x: Float32Array): EncodedRows => ({
    payload: new Uint8Array(x.buffer, x.byteOffset, a.nSlots * d * 4),
    scales: new Uint16Array(0),
    zeros: new Uint16Array(0),
  });
  refAttend({ ...a, kCodec: f32Codec, vCodec: f32Codec, k: rows(keys), v: rows(v) });
  return true;
}

export function createRefExecutor(): Executor {
  return {
    name: "ref",
    fallbacks: new Map(),
    allocF32: (n) => {
      checkSize("allocF32", "n", n);
      return allocOr(() => new Float32Array(n), "allocF32", n);
    },
    allocU8: (n) => {
      checkSize("allocU8", "n", n);
      return allocOr(() => new Uint8Array(n), "allocU8", n);
    },
    allocU16: (n) => {
      checkSize("allocU16", "n", n);
      return allocOr(() => new Uint16Array(n), "allocU16", n);
    },
    allocI32: (n) => {
      checkSize("allocI32", "n", n);
      return allocOr(() => new Int32Array(n), "allocI32", n);
    },
    free: () => {},
    encodeRows: (codec: Codec, src, nRows, headDim, dst: EncodedRows, dstRow) => {
      sizes("encodeRows", { nRows, headDim, dstRow });
      need("encodeRows", src, nRows * headDim, "src");
      return codec.encode(src, nRows, headDim, dst, dstRow);
    },
    decodeRows: (codec: Codec, src, srcRow, nRows, headDim, dst) => {
      sizes("decodeRows", { srcRow, nRows, headDim });
      need("decodeRows", dst, nRows * headDim, "dst");
      codec.decode(src, srcRow, nRows, headDim, dst);
    },
    attend: (a) => {
      sizes("attend", { headDim: a.headDim, nRows: a.nRows, nSlots: a.nSlots });
      need("attend", a.q, a.nRows * a.headDim, "q");
      need("attend", a.qPos, a.nRows, "qPos");
      need("attend", a.out, a.nRows * a.headDim, "out");
      need("attend", a.slotPos, a.nSlots, "slotPos");
      if (a.probs) need("attend", a.probs, a.nRows * a.nSlots, "probs");
      refAttend(a);
    },
    matmul: (out, x, w, n, dIn, dOut, bias) => {
      sizes("matmul", { n, dIn, dOut });
      need("matmul", x, n * dIn, "x");
      const wt = matrixType(w);
      if (wt === "q8_0" && dIn % 32 !== 0)
        throw new ShapeError(`matmul: Q8_0 weights need dIn divisible by 32, got ${dIn}`);
      need("matmul", w, storedLength(wt, dOut * dIn), "w");
      need("matmul", out, n * dOut, "out");
      if (bias) need("matmul", bias, dOut, "bias");
      refMatmul(out, x, w, n, dIn, dOut, bias);
    },
    rmsnorm: (out, x, w, n, dim, eps) => {
      sizes("rmsnorm", { n, dim });
      need("rmsnorm", x, n * dim, "x");
      need("rmsnorm", out, n * dim, "out");
      need("rmsnorm", w, dim, "w");
      refRmsnorm(out, x, w, n, dim, eps);
    },
    rope: (x, positions, n, nHeads, headDim, invFreq) => {
      sizes("rope", { n, nHeads, headDim });
      need("rope", x, n * nHeads * headDim, "x");
      need("rope", positions, n, "positions");
      need("rope", invFreq, headDim >> 1, "invFreq");
      refRope(x, positions, n, nHeads, headDim, invFreq);
    },
    swiglu: (out, gate, up, n) => {
      sizes("swiglu", { n });
      need("swiglu", gate, n, "gate");
      need("swiglu", up, n, "up");
      need("swiglu", out, n, "out");
      refSwiglu(out, gate, up, n);
    },
    channelQuantize: quantizeChannelGroup,
    channelDecode: refChannelDecode,
    channelAttend: refChannelAttend,
    nll: (out, logits, targets, nRows, vocab) => {
      sizes("nll", { nRows, vocab });
      need("nll", logits, nRows * vocab, "logits");
      for (let r = 0; r < nRows; r++)
        out[r] = nllOf(logits.subarray(r * vocab, (r + 1) * vocab), targets[r]!);
    },
    addInPlace: (x, y, n) => {
      for (let i = 0; i < n; i++) x[i]! += y[i]!;
    },
    swapAxes01: refSwapAxes01,
    hadamard: hadamardRows,
    dispose: () => {},
  };
}
