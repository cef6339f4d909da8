/**
 * The wasm executor's channel-axis key ops (assembly/channel.ts): quantize one group of G
 * tokens per channel, and decode a KV head's keys (quantized groups and f32 residual) into an
 * f32 scratch in one call. Both reproduce src/quant/channel.ts bit for bit. Arrays the cache
 * allocated through the executor are passed in place; others are copied (Marshal).
 * A module built before these kernels existed simply lacks them: no ops are added, and callers
 * fall back to the reference as they do for any missing optional op.
 */
import { ShapeError } from "../errors.ts";
import type { ChannelQuantOptions } from "../quant/channel.ts";
import type { EncodeStats } from "../quant/types.ts";
import { type ChannelAttendArgs, type ChannelKeyRows, type Executor, sizes } from "./executor.ts";
import { Marshal, type WasmHeap } from "./wasm-heap.ts";

/** Raw exports of assembly/channel.ts (pointers are byte offsets into the shared memory). */
interface ChannelExports {
  channelQuantize(
    bits: number,
    sym: number,
    src: number,
    nTok: number,
    headDim: number,
    codes: number,
    codeOffs: number,
    scales: number,
    zeros: number,
    stats: number,
  ): void;
  channelDecodeScratchBytes(headDim: number): number;
  channelDecode(
    bits: number,
    sym: number,
    headDim: number,
    codes: number,
    codeBytes: number,
    groupOf: number,
    scales: number,
    zeros: number,
    resid: number,
    first: number,
    n: number,
    dst: number,
    scratch: number,
  ): void;
  channelAttendScratchBytes(nSlots: number, nRows: number, headDim: number): number;
  channelAttend(
    bits: number,
    sym: number,
    headDim: number,
    q: number,
    qPos: number,
    nRows: number,
    codes: number,
    codeBytes: number,
    groupOf: number,
    scales: number,
    zeros: number,
    resid: number,
    v: number,
    slotPos: number,
    nSlots: number,
    scale: number,
    out: number,
    probs: number,
    vBits: number,
    vSym: number,
    vGroup: number,
    vScales: number,
    vZeros: number,
    vInResid: number,
    vResid: number,
    scratch: number,
  ): void;
}

const INT_BITS: Record<string, number> = { int8: 8, int4: 4, int2: 2 };

type ChannelOps = Pick<Executor, "channelQuantize" | "channelDecode" | "channelAttend">;

function need(arr: ArrayBufferView & { length: number }, n: number, what: string): void {
  if (arr.length < n) throw new ShapeError(`${what} has ${arr.length} elements, the op needs ${n}`);
}

/** vBits, vSym, vGroup, vScales, vZeros, vInResid, vResid of channelAttend (zeros: f32 values). */
function valueArgs(
  vals: ChannelAttendArgs["values"],
  vBits: number,
  d: number,
  nSlots: number,
  m: Marshal,
): [number, number, number, number, number, number, number] {
  if (!vals) return [0, 0, 0, 0, 0, 0, 0];
  const L = vals.codec.layout(d);
  need(vals.rows.payload, nSlots * L.payloadBytes, "values.payload");
  need(vals.rows.scales, nSlots * L.scalesPerRow, "values.scales");
  need(vals.rows.zeros, nSlots * L.zerosPerRow, "values.zeros");
  need(vals.inResid, nSlots, "values.inResid");
  need(vals.resid, nSlots * d, "values.resid");
  const sym = vals.codec.options.symmetric;
  return [
    vBits,
    sym ? 1 : 0,
    L.groupSize,
    m.ptr(vals.rows.scales, "in"),
    sym ? 0 : m.ptr(vals.rows.zeros, "in"),
    m.ptr(vals.inResid, "in"),
    m.ptr(vals.resid, "in"),
  ];
}

/** The channel ops over a loaded module, or {} when the module predates them (rebuild: npm run asbuild). */
export function wasmChannelOps(heap: WasmHeap, exports: object): Partial<ChannelOps> {
  const k = exports as Partial<ChannelExports>;
  if (
    typeof k.channelQuantize !== "function" ||
    typeof k.channelDecode !== "function" ||
    typeof k.channelAttend !== "function"
  )
    return {};
  const kq = k as ChannelExports;
  const stats = heap.scratch(16); // {nonFinite, saturated} i32 pair written by channelQuantize
  return {
    channelQuantize(
      src: Float32Array, // (nTok, headDim)
      nTok: number,
      headDim: number,
      opts: ChannelQuantOptions,
      codes: Uint8Array,
      codeOffsets: Int32Array, // (nTok)
      scales: Uint16Array,
      zeros: Uint16Array,
      sOff: number,
    ): EncodeStats {
      sizes("channelQuantize", { nTok, headDim, sOff });
      if (nTok === 0 || headDim === 0) return { nonFinite: 0, saturated: 0 };
      need(src, nTok * headDim, "src");
      need(codeOffsets, nTok, "codeOffsets");
      need(scales, sOff + headDim, "scales");
      if (!opts.symmetric) need(zeros, sOff + headDim, "zeros");
      const m = new Marshal(heap);
      const zs = opts.symmetric ? 0 : m.ptr(zeros.subarray(sOff, sOff + headDim), "inout");
      kq.channelQuantize(
        opts.bits,
        opts.symmetric ? 1 : 0,
        m.ptr(src.subarray(0, nTok * headDim), "in"),
        nTok,
        headDim,
        // inout: int4/int2 rows keep the padding bits of their last byte, as the reference does
        m.ptr(codes, "inout"),
        m.ptr(codeOffsets.subarray(0, nTok), "in"),
        m.ptr(scales.subarray(sOff, sOff + headDim), "inout"),
        zs,
        stats,
      );
      m.finish();
      const st = new Int32Array(heap.buffer, stats, 2);
      return { nonFinite: st[0]!, saturated: st[1]! };
    },

    channelDecode(
      rows: ChannelKeyRows,
      headDim: number,
      opts: ChannelQuantOptions,
      first: number,
      n: number,
      dst: Float32Array, // (n, headDim)
    ): void {
      sizes("channelDecode", { headDim, first, n });
      if (n === 0) return;
      need(dst, n * headDim, "dst");
      need(rows.groupOf, first + n, "groupOf");
      need(rows.codes, (first + n) * rows.codeBytes, "codes");
      need(rows.resid, (first + n) * headDim, "resid");
      const m = new Marshal(heap);
      const scratch = heap.scratch(kq.channelDecodeScratchBytes(headDim));
      kq.channelDecode(
        opts.bits,
        opts.symmetric ? 1 : 0,
        headDim,
        m.ptr(rows.codes, "in"),
        rows.codeBytes,
        m.ptr(rows.groupOf, "in"),
        m.ptr(rows.scales, "in"),
        opts.symmetric ? 0 : m.ptr(rows.zeros, "in"),
        m.ptr(rows.resid, "in"),
        first,
        n,
        m.ptr(dst.subarray(0, n * headDim), "out"),
        scratch,
      );
      heap.release(scratch);
      m.finish();
    },

    channelAttend(a: ChannelAttendArgs): boolean {
      const d = a.headDim;
      const vals = a.values;
      const vBits =
        vals && vals.codec.options.axis === "token" ? (INT_BITS[vals.codec.options.type] ?? 0) : 0;
      if (!a.v && vBits === 0) return false; // values in a codec the kernel does not read
      sizes("channelAttend", { headDim: d, nRows: a.nRows, nSlots: a.nSlots });
      if (a.nRows === 0) return true;
      need(a.q, a.nRows * d, "q");
      need(a.qPos, a.nRows, "qPos");
      need(a.out, a.nRows * d, "out");
      need(a.slotPos, a.nSlots, "slotPos");
      if (a.v) need(a.v, a.nSlots * d, "v");
      if (a.probs) need(a.probs, a.nRows * a.nSlots, "probs");
      const rows = a.keys;
      need(rows.groupOf, a.nSlots, "keys.groupOf");
      need(rows.codes, a.nSlots * rows.codeBytes, "keys.codes");
      need(rows.resid, a.nSlots * d, "keys.resid");
      const m = new Marshal(heap);
      const scratch = heap.scratch(kq.channelAttendScratchBytes(a.nSlots, a.nRows, d));
      kq.channelAttend(
        a.opts.bits,
        a.opts.symmetric ? 1 : 0,
        d,
        m.ptr(a.q.subarray(0, a.nRows * d), "in"),
        m.ptr(a.qPos.subarray(0, a.nRows), "in"),
        a.nRows,
        m.ptr(rows.codes, "in"),
        rows.codeBytes,
        m.ptr(rows.groupOf, "in"),
        m.ptr(rows.scales, "in"),
        a.opts.symmetric ? 0 : m.ptr(rows.zeros, "in"),
        m.ptr(rows.resid, "in"),
        a.v ? m.ptr(a.v.subarray(0, a.nSlots * d), "in") : m.ptr(vals!.rows.payload, "in"),
        m.ptr(a.slotPos.subarray(0, a.nSlots), "in"),
        a.nSlots,
        a.scale,
        m.ptr(a.out.subarray(0, a.nRows * d), "out"),
        a.probs ? m.ptr(a.probs.subarray(0, a.nRows * a.nSlots), "out") : 0,
        ...valueArgs(a.v ? undefined : vals, vBits, d, a.nSlots, m),
        scratch,
      );
      heap.release(scratch);
      m.finish();
      return true;
    },
  };
}
