/**
 * GpuOps: the executor op list on the GPU, taking and returning host arrays (upload, run,
 * read back). The cache and the forward path use the kernels on resident buffers instead;
 * these entry points exist for tests, for one-off use and for the `webgpu` executor.
 */
import { ShapeError } from "../errors.ts";
import type { AttendArgs } from "../kernels/executor.ts";
import type { Codec, EncodedRows, EncodeStats } from "../quant/types.ts";
import type { GpuContext } from "./device.ts";
import { GpuRuntime, type Kernel } from "./kernel.ts";
import { attendKernel, attendParams } from "./kernels/attention.ts";
import {
  decodeKernel,
  decodeParams,
  encodeKernel,
  encodeParams,
  groupsFor,
  NO_POSITIONS,
} from "./kernels/codec.ts";
import * as fwd from "./kernels/forward.ts";
import { gpuRowLayout, rowsToWords, wordsToRows } from "./layout.ts";

export class GpuOps {
  readonly rt: GpuRuntime;
  private readonly kernels = new Map<string, Kernel>();

  constructor(ctx: GpuContext) {
    this.rt = new GpuRuntime(ctx);
  }

  /** Kernels are cheap to build but their source is the pipeline-cache key: memoise by name. */
  kernel(make: () => Kernel, key: string): Kernel {
    let k = this.kernels.get(key);
    if (!k) {
      k = make();
      this.kernels.set(key, k);
    }
    return k;
  }

  encodeKernel(codec: Codec, headDim: number) {
    const L = gpuRowLayout(codec, headDim);
    return {
      L,
      kernel: this.kernel(() => encodeKernel(codec, L), `enc:${JSON.stringify(codec.options)}:${headDim}`),
    };
  }

  decodeKernel(codec: Codec, headDim: number) {
    const L = gpuRowLayout(codec, headDim);
    return {
      L,
      kernel: this.kernel(() => decodeKernel(codec, L), `dec:${JSON.stringify(codec.options)}:${headDim}`),
    };
  }

  /** Encode src (nRows, headDim) on the GPU into dst rows [dstRow, dstRow + nRows) (host layout). */
  async encodeRows(
    codec: Codec,
    src: Float32Array, // (nRows, headDim)
    nRows: number,
    headDim: number,
    dst: EncodedRows,
    dstRow: number,
  ): Promise<EncodeStats> {
    if (src.length < nRows * headDim)
      throw new ShapeError(`encodeRows: src holds ${src.length} floats, need ${nRows * headDim}`);
    if (nRows === 0) return { nonFinite: 0, saturated: 0 };
    const { L, kernel } = this.encodeKernel(codec, headDim);
    const rt = this.rt;
    const srcBuf = rt.buffer(nRows * headDim * 4, "encode src");
    const dstBuf = rt.buffer(nRows * L.rowWords * 4, "encode dst");
    const stats = rt.buffer(16, "encode stats");
    rt.upload(srcBuf, src.subarray(0, nRows * headDim));
    rt.upload(stats, new Uint32Array(4));
    rt.run([
      {
        kernel,
        params: encodeParams({
          nHeadsIn: 1,
          nNew: nRows,
          srcBase: 0,
          headStride: 0,
          dstStride: L.rowWords,
          posBase: NO_POSITIONS,
          first: [0],
        }),
        buffers: [srcBuf, dstBuf, stats],
        groups: groupsFor(nRows),
      },
    ]);
    const [words, st] = await rt.read([
      { buf: dstBuf, bytes: nRows * L.rowWords * 4 },
      { buf: stats, bytes: 8 },
    ]);
    for (const b of [srcBuf, dstBuf, stats]) b.destroy();
    wordsToRows(L, new Uint32Array(words!), nRows, L.rowWords, dst, dstRow);
    const s = new Uint32Array(st!);
    return { nonFinite: s[0]!, saturated: s[1]! };
  }

  /** Decode rows [srcRow, srcRow + nRows) of host-layout src on the GPU into dst (nRows, headDim). */
  async decodeRows(
    codec: Codec,
    src: EncodedRows,
    srcRow: number,
    nRows: number,
    headDim: number,
    dst: Float32Array, // (nRows, headDim)
  ): Promise<void> {
    if (nRows === 0) return;
    const { L, kernel } = this.decodeKernel(codec, headDim);
    const rt = this.rt;
    const rowsBuf = rt.buffer(nRows * L.rowWords * 4, "decode rows");
    const outBuf = rt.buffer(nRows * headDim * 4, "decode out");
    rt.upload(rowsBuf, rowsToWords(L, src, srcRow, nRows, L.rowWords));
    rt.run([
      {
        kernel,
        params: decodeParams(nRows, 0, L.rowWords),
        buffers: [rowsBuf, outBuf],
        groups: groupsFor(nRows * headDim),
      },
    ]);
    const [out] = await rt.read([{ buf: outBuf, bytes: nRows * headDim * 4 }]);
    rowsBuf.destroy();
    outBuf.destroy();
    dst.set(new Float32Array(out!));
  }

  /** Upload host arrays, run one dispatch, read back the listed outputs, free everything. */
  private async once(
    kernel: Kernel,
    params: ArrayBuffer,
    inputs: (ArrayBufferView | number)[],
    groups: [number, number?, number?],
    outputs: number[],
  ): Promise<ArrayBuffer[]> {
    const rt = this.rt;
    const bufs = inputs.map((a, i) => {
      const bytes = typeof a === "number" ? a : a.byteLength;
      const b = rt.buffer(bytes, `${kernel.name} arg ${i}`);
      if (typeof a !== "number") rt.upload(b, a);
      return b;
    });
    rt.run([{ kernel, params, buffers: bufs, groups }]);
    const got = await rt.read(
      outputs.map((i) => ({
        buf: bufs[i]!,
        bytes:
          typeof inputs[i] === "number" ? (inputs[i] as number) : (inputs[i] as ArrayBufferView).byteLength,
      })),
    );
    for (const b of bufs) b.destroy();
    return got;
  }

  /** out (n, dOut) = x (n, dIn) @ w^T (+ bias). */
  async matmul(
    out: Float32Array,
    x: Float32Array,
    w: Float32Array,
    n: number,
    dIn: number,
    dOut: number,
    bias?: Float32Array,
  ) {
    const k = this.kernel(fwd.matmulKernel, "matmul");
    const [o] = await this.once(
      k,
      fwd.matmulParams(n, dIn, dOut, bias !== undefined),
      [x.subarray(0, n * dIn), w.subarray(0, dOut * dIn), bias ?? new Float32Array(4), n * dOut * 4],
      fwd.grid(n * dOut),
      [3],
    );
    out.set(new Float32Array(o!));
  }

  async rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, n: number, dim: number, eps: number) {
    const k = this.kernel(fwd.rmsnormKernel, "rmsnorm");
    const [o] = await this.once(
      k,
      fwd.rmsnormParams(n, dim, eps),
      [x.subarray(0, n * dim), w, n * dim * 4],
      [n],
      [2],
    );
    out.set(new Float32Array(o!));
  }

  /** In place, rotate-half; x: (n, nHeads, headDim). */
  async rope(
    x: Float32Array,
    positions: Int32Array,
    n: number,
    nHeads: number,
    headDim: number,
    invFreq: Float32Array,
  ) {
    const k = this.kernel(fwd.ropeKernel, "rope");
    const [o] = await this.once(
      k,
      fwd.ropeParams(n, nHeads, headDim),
      [x.subarray(0, n * nHeads * headDim), fwd.ropeTable(positions.subarray(0, n), invFreq)],
      fwd.grid((n * nHeads * headDim) / 2),
      [0],
    );
    x.set(new Float32Array(o!));
  }

  async swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number) {
    const k = this.kernel(fwd.elementwiseKernel, "elementwise");
    const [o] = await this.once(
      k,
      fwd.elementwiseParams(n, fwd.SWIGLU),
      [gate.subarray(0, n), up.subarray(0, n), n * 4],
      fwd.grid(n),
      [2],
    );
    out.set(new Float32Array(o!));
  }

  /** In place: x (n, dim) row softmax. */
  async softmax(x: Float32Array, n: number, dim: number) {
    const k = this.kernel(fwd.softmaxKernel, "softmax");
    const [o] = await this.once(k, fwd.softmaxParams(n, dim), [x.subarray(0, n * dim)], [n], [0]);
    x.set(new Float32Array(o!));
  }

  /** The executor attend op (one KV head's rows, host-layout encoded rows) on the GPU. */
  async attend(a: AttendArgs): Promise<void> {
    const d = a.headDim;
    const kL = gpuRowLayout(a.kCodec, d);
    const vL = gpuRowLayout(a.vCodec, d);
    const kStride = kL.rowWords + 1;
    const kWords = rowsToWords(kL, a.k, 0, a.nSlots, kStride);
    for (let j = 0; j < a.nSlots; j++) kWords[j * kStride + kL.rowWords] = a.slotPos[j]! >>> 0;
    const vWords = rowsToWords(vL, a.v, 0, a.nSlots, vL.rowWords);
    const qin = new Uint32Array(a.nRows * d + a.nRows);
    qin.set(new Uint32Array(a.q.buffer, a.q.byteOffset, a.nRows * d));
    for (let r = 0; r < a.nRows; r++) qin[a.nRows * d + r] = a.qPos[r]! >>> 0;
    const probStride = a.probs ? a.nSlots : 0;
    const outFloats = a.nRows * d + a.nRows * probStride;
    const k = this.kernel(
      () => attendKernel(a.kCodec, kL, a.vCodec, vL),
      `att:${JSON.stringify(a.kCodec.options)}:${JSON.stringify(a.vCodec.options)}:${d}`,
    );
    const [o] = await this.once(
      k,
      attendParams({
        nQ: a.nRows,
        group: 1,
        scale: a.scale,
        probStride,
        kStride,
        vStride: vL.rowWords,
        cap: a.nSlots,
        qPosBase: a.nRows * d,
        probBase: a.nRows * d,
        nSlots: [a.nSlots],
        softcap: a.softcap,
      }),
      [qin, kWords, vWords, outFloats * 4],
      [a.nRows, 1],
      [3],
    );
    const all = new Float32Array(o!);
    a.out.set(all.subarray(0, a.nRows * d));
    if (a.probs) a.probs.set(all.subarray(a.nRows * d, outFloats));
  }
}
