/**
 * GpuOps: the executor op list on the GPU, taking and returning host arrays (upload, run,
 * read back). The cache and the forward path use the kernels on resident buffers instead;
 * these entry points exist for tests, for one-off use and for the `webgpu` executor.
 */
import { ShapeError } from "../errors.ts";
import type { Codec, EncodedRows, EncodeStats } from "../quant/types.ts";
import type { GpuContext } from "./device.ts";
import { GpuRuntime, type Kernel } from "./kernel.ts";
import {
  decodeKernel,
  decodeParams,
  encodeKernel,
  encodeParams,
  groupsFor,
  NO_POSITIONS,
} from "./kernels/codec.ts";
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
}
