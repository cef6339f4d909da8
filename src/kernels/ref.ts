/**
 * The `ref` executor: plain TypeScript, written for clarity. It is the oracle the `wasm` and
 * `webgpu` executors are tested against. Attention decodes one stored row at a time into a
 * headDim scratch (never a full f32 copy of the cache) and uses a two-pass stable softmax.
 */
import type { Codec, EncodedRows } from "../quant/types.ts";
import type { AttendArgs, Executor } from "./executor.ts";

export function refAttend(a: AttendArgs): void {
  const { headDim: d, nRows, nSlots } = a;
  const kRow = new Float32Array(d);
  const vRow = new Float32Array(d);
  const scores = new Float64Array(nSlots);
  for (let r = 0; r < nRows; r++) {
    const qOff = r * d;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < nSlots; j++) {
      if (a.slotPos[j]! > a.qPos[r]!) {
        scores[j] = Number.NEGATIVE_INFINITY;
        continue;
      }
      a.kCodec.decode(a.k, j, 1, d, kRow);
      let dot = 0;
      for (let i = 0; i < d; i++) dot += a.q[qOff + i]! * kRow[i]!;
      scores[j] = dot * a.scale;
      if (scores[j]! > max) max = scores[j]!;
    }
    let sum = 0;
    for (let j = 0; j < nSlots; j++) {
      const e = scores[j] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(scores[j]! - max);
      scores[j] = e;
      sum += e;
    }
    const inv = sum > 0 ? 1 / sum : 0; // a row with no visible slot outputs zeros
    const acc = new Float64Array(d);
    for (let j = 0; j < nSlots; j++) {
      const p = scores[j]! * inv;
      if (a.probs) a.probs[r * nSlots + j] = p;
      if (p === 0) continue;
      a.vCodec.decode(a.v, j, 1, d, vRow);
      for (let i = 0; i < d; i++) acc[i]! += p * vRow[i]!;
    }
    for (let i = 0; i < d; i++) a.out[qOff + i] = acc[i]!;
  }
}

export function refMatmul(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  n: number,
  dIn: number,
  dOut: number,
  bias?: Float32Array,
): void {
  for (let t = 0; t < n; t++) {
    const xo = t * dIn;
    for (let o = 0; o < dOut; o++) {
      const wo = o * dIn;
      let acc = 0;
      for (let i = 0; i < dIn; i++) acc += x[xo + i]! * w[wo + i]!;
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

export function createRefExecutor(): Executor {
  return {
    name: "ref",
    fallbacks: new Map(),
    allocF32: (n) => new Float32Array(n),
    allocU8: (n) => new Uint8Array(n),
    allocU16: (n) => new Uint16Array(n),
    allocI32: (n) => new Int32Array(n),
    free: () => {},
    encodeRows: (codec: Codec, src, nRows, headDim, dst: EncodedRows, dstRow) =>
      codec.encode(src, nRows, headDim, dst, dstRow),
    decodeRows: (codec: Codec, src, srcRow, nRows, headDim, dst) =>
      codec.decode(src, srcRow, nRows, headDim, dst),
    attend: refAttend,
    matmul: refMatmul,
    rmsnorm: refRmsnorm,
    rope: refRope,
    swiglu: refSwiglu,
    dispose: () => {},
  };
}
