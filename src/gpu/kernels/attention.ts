/**
 * Attention over the encoded cache, fused: scores are computed on encoded key rows (each
 * element decoded in registers, never an f32 copy of the cache), softmax is online
 * (flash-decoding style: running max and sum, rescaling the accumulator per tile of 64
 * slots), and the weighted sum reads encoded value rows.
 *
 * One workgroup of 64 threads per (query row, KV head). Thread t scores slot base + t of
 * each tile; the tile's probabilities go through workgroup memory; thread t accumulates
 * output elements t, t + 64, ... GQA: the group * nQ query rows of a KV head are its query
 * heads' rows, contiguous in q (nHeads, nQ, headDim), exactly as the CPU cache passes them.
 *
 * Buffers (4 storage, the compatibility minimum):
 *   qin  (read)  u32: q (nHeads, nQ, headDim) as f32 bits, then qPos (group * nQ) i32 at qPosBase
 *   kbuf (read)  K records (nKvHeads, cap, kStride words): encoded row, then the slot's position
 *   vbuf (read)  V records (nKvHeads, cap, vStride words)
 *   out  (rw)    f32: out (nHeads, nQ, headDim), then, when probStride > 0, probabilities
 *                (nKvHeads, group * nQ, probStride) at probBase (masked slots 0)
 */
import type { Codec } from "../../quant/types.ts";
import { type Kernel, Params } from "../kernel.ts";
import type { GpuRowLayout } from "../layout.ts";
import { BITS_WGSL } from "../wgsl/bits.ts";
import { decodeElemWgsl, dotRowWgsl } from "../wgsl/codec.ts";
import { MAX_HEADS } from "./codec.ts";
import { TANH_WGSL } from "./forward.ts";

const WG = 64;
/** Largest head size the kernel's workgroup arrays hold. */
export const MAX_HEAD_DIM = 512;

/**
 * The WGSL both attention kernels share: the uniform block (its last scalar row differs:
 * `tail`), the four storage bindings (binding 4 named `outName`), the codec decoders, the
 * workgroup arrays and the key-row dot product.
 */
function attendHeaderWgsl(
  kCodec: Codec,
  kL: GpuRowLayout,
  vCodec: Codec,
  vL: GpuRowLayout,
  tail: string,
  outName: string,
): string {
  const D = kL.headDim;
  return `struct P {
  nQ: u32, group: u32, scale: f32, probStride: u32,
  kStride: u32, vStride: u32, cap: u32, qPosBase: u32,
  ${tail}
  nSlots: array<vec4<u32>, ${MAX_HEADS / 4}>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> qin: array<u32>;
@group(0) @binding(2) var<storage, read> kbuf: array<u32>;
@group(0) @binding(3) var<storage, read> vbuf: array<u32>;
@group(0) @binding(4) var<storage, read_write> ${outName}: array<f32>;
${BITS_WGSL}
${decodeElemWgsl(kCodec, kL, "kdec", "kbuf")}
${decodeElemWgsl(vCodec, vL, "vdec", "vbuf")}
const WG: u32 = ${WG}u;
const D: u32 = ${D}u;
const MASKED: f32 = -3.0e38;
var<workgroup> qs: array<f32, ${D}>;
var<workgroup> tile: array<f32, ${WG}>;
${dotRowWgsl(kCodec, kL, "kdot", "kbuf", "kdec")}
${TANH_WGSL}
/** A key's scaled score, soft-capped (Gemma 2: cap * tanh(s / cap)) when p.softcap > 0. */
fn score(kb: u32) -> f32 {
  let s = kdot(kb) * p.scale;
  if (p.softcap > 0.0) { return p.softcap * tanh_(s / p.softcap); }
  return s;
}
`;
}

/**
 * The body both attention kernels share, after r, kvh and tid are set: the query row into
 * workgroup memory, then the online softmax over slots [lo, hi) of KV head kvh (scores to
 * `sink` at probRow when probabilities are wanted), leaving m (max), l (sum) and acc (the
 * unnormalised output elements tid, tid + 64, ...).
 */
function attendLoopWgsl(kL: GpuRowLayout, lo: string, hi: string, sink: string): string {
  const per = Math.ceil(kL.headDim / WG);
  return `  let nRows = p.group * p.nQ;
  let qrow = kvh * nRows + r;
  let qpos = bitcast<i32>(qin[p.qPosBase + r]);
  for (var i = tid; i < D; i = i + WG) { qs[i] = bitcast<f32>(qin[qrow * D + i]); }
  workgroupBarrier();
  let n = p.nSlots[kvh / 4u][kvh % 4u];
  let lo = ${lo};
  let hi = ${hi};
  let probRow = p.probBase + (kvh * nRows + r) * p.probStride;
  var m = MASKED;
  var l = 0.0;
  var acc: array<f32, ${per}>;
  for (var c = 0u; c < ${per}u; c = c + 1u) { acc[c] = 0.0; }
  for (var base = lo; base < hi; base = base + WG) {
    let j = base + tid;
    var s = MASKED;
    if (j < hi) {
      let kb = (kvh * p.cap + j) * p.kStride;
      if (bitcast<i32>(kbuf[kb + ${kL.rowWords}u]) <= qpos) { s = score(kb); }
      if (p.probStride != 0u) { ${sink}[probRow + j] = s; }
    }
    tile[tid] = s;
    workgroupBarrier();
    var tmax = MASKED;
    for (var t = 0u; t < WG; t = t + 1u) { tmax = max(tmax, tile[t]); }
    let newm = max(m, tmax);
    workgroupBarrier();
    var pj = 0.0;
    if (s > MASKED) { pj = exp(s - newm); }
    tile[tid] = pj;
    workgroupBarrier();
    let corr = exp(m - newm);
    l = l * corr;
    for (var c = 0u; c < ${per}u; c = c + 1u) { acc[c] = acc[c] * corr; }
    let cnt = min(WG, hi - base);
    for (var t = 0u; t < cnt; t = t + 1u) {
      let pt = tile[t];
      l = l + pt;
      if (pt != 0.0) {
        let vb = (kvh * p.cap + base + t) * p.vStride;
        for (var c = 0u; c < ${per}u; c = c + 1u) {
          let i = tid + c * WG;
          if (i < D) { acc[c] = acc[c] + pt * vdec(vb, i); }
        }
      }
    }
    m = newm;
    workgroupBarrier();
  }`;
}

export function attendKernel(kCodec: Codec, kL: GpuRowLayout, vCodec: Codec, vL: GpuRowLayout): Kernel {
  const D = kL.headDim;
  const per = Math.ceil(D / WG);
  return {
    name: `attend-${kCodec.options.type}-${vCodec.options.type}-d${D}`,
    storage: ["read", "read", "read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
${attendHeaderWgsl(kCodec, kL, vCodec, vL, "probBase: u32, softcap: f32, _b: u32, _c: u32,", "out")}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.x;
  let kvh = wid.y;
  let tid = lid.x;
${attendLoopWgsl(kL, "0u", "n", "out")}
  var inv = 0.0;
  if (l > 0.0) { inv = 1.0 / l; }
  for (var c = 0u; c < ${per}u; c = c + 1u) {
    let i = tid + c * WG;
    if (i < D) { out[qrow * D + i] = acc[c] * inv; }
  }
  if (p.probStride != 0u) {
    for (var j = tid; j < n; j = j + WG) {
      let sj = out[probRow + j];
      var pr = 0.0;
      if (sj > MASKED) { pr = exp(sj - m) * inv; }
      out[probRow + j] = pr;
    }
  }
}
`,
  };
}

export interface AttendDispatchArgs {
  nQ: number;
  group: number;
  scale: number;
  /** Probabilities row stride (>= max nSlots), or 0 for none. */
  probStride: number;
  kStride: number;
  vStride: number;
  cap: number;
  qPosBase: number;
  probBase: number;
  /** Retained slots per KV head: (nKvHeads). */
  nSlots: ArrayLike<number>;
  /** Attention soft-cap (Gemma 2; src/cache/softcap.ts), or absent / 0 for none. */
  softcap?: number;
}

export function attendParams(a: AttendDispatchArgs): ArrayBuffer {
  const p = new Params()
    .u(a.nQ, a.group)
    .f(a.scale)
    .u(a.probStride, a.kStride, a.vStride, a.cap, a.qPosBase, a.probBase)
    .f(a.softcap ?? 0)
    .u(0, 0);
  for (let h = 0; h < MAX_HEADS; h++) p.u(h < a.nSlots.length ? a.nSlots[h]! : 0);
  return p.build();
}

/**
 * Eviction on the device: apply (from, to) record moves in order (a later move may read a
 * record an earlier one wrote, as the CPU store's "move the last slot into the hole" does).
 * One invocation per word column of a record, so no two invocations touch the same word.
 * moves: u32 pairs (from, to) as absolute record indices (kvHead * cap + slot).
 */
export function moveKernel(): Kernel {
  return {
    name: "move-records",
    storage: ["rw", "rw", "read"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { nMoves: u32, kStride: u32, vStride: u32, _a: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> kbuf: array<u32>;
@group(0) @binding(2) var<storage, read_write> vbuf: array<u32>;
@group(0) @binding(3) var<storage, read> moves: array<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x;
  for (var i = 0u; i < p.nMoves; i = i + 1u) {
    let src_ = moves[2u * i];
    let dst_ = moves[2u * i + 1u];
    if (w < p.kStride) { kbuf[dst_ * p.kStride + w] = kbuf[src_ * p.kStride + w]; }
    if (w < p.vStride) { vbuf[dst_ * p.vStride + w] = vbuf[src_ * p.vStride + w]; }
  }
}
`,
  };
}

export function moveParams(nMoves: number, kStride: number, vStride: number): ArrayBuffer {
  return new Params().u(nMoves, kStride, vStride, 0).build();
}

/**
 * Split attention (flash-decoding): the retained slots of a KV head are cut into ranges of
 * `splitSlots`; workgroup (row, kvHead, split) runs the online softmax over its range only and
 * writes a partial (max m, sum l, unnormalised accumulator (headDim)) to `scratch`, plus the
 * raw scores when probabilities are wanted. A second kernel combines the partials. This keeps
 * a GPU busy when few query rows attend over many tokens (decoding), where one workgroup per
 * row would leave most of the device idle.
 *
 * scratch (rw) f32: partials (nKvHeads, nRows, nSplit, headDim + 2) at 0, then scores /
 * probabilities (nKvHeads, nRows, probStride) at probBase.
 */
export function attendSplitKernel(kCodec: Codec, kL: GpuRowLayout, vCodec: Codec, vL: GpuRowLayout): Kernel {
  const D = kL.headDim;
  const per = Math.ceil(D / WG);
  return {
    name: `attend-split-${kCodec.options.type}-${vCodec.options.type}-d${D}`,
    storage: ["read", "read", "read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
${attendHeaderWgsl(kCodec, kL, vCodec, vL, "probBase: u32, nSplit: u32, splitSlots: u32, softcap: f32,", "scratch")}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.x;
  let kvh = wid.y;
  let split = wid.z;
  let tid = lid.x;
${attendLoopWgsl(kL, "split * p.splitSlots", "min(n, lo + p.splitSlots)", "scratch")}
  let part = ((kvh * nRows + r) * p.nSplit + split) * (D + 2u);
  if (tid == 0u) { scratch[part] = m; scratch[part + 1u] = l; }
  for (var c = 0u; c < ${per}u; c = c + 1u) {
    let i = tid + c * WG;
    if (i < D) { scratch[part + 2u + i] = acc[c]; }
  }
}
`,
  };
}

/** Combine the split partials: out (nHeads, nQ, headDim) at 0 of `out`; probabilities normalised in scratch. */
export function attendCombineKernel(headDim: number): Kernel {
  const D = headDim;
  return {
    name: `attend-combine-d${D}`,
    storage: ["rw", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P {
  nQ: u32, group: u32, probStride: u32, probBase: u32,
  nSplit: u32, _a: u32, _b: u32, _c: u32,
  nSlots: array<vec4<u32>, ${MAX_HEADS / 4}>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
const WG: u32 = ${WG}u;
const D: u32 = ${D}u;
const MASKED: f32 = -3.0e38;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.x;
  let kvh = wid.y;
  let tid = lid.x;
  let nRows = p.group * p.nQ;
  let row = kvh * nRows + r;
  let first = row * p.nSplit * (D + 2u);
  var mx = MASKED;
  for (var s = 0u; s < p.nSplit; s = s + 1u) { mx = max(mx, scratch[first + s * (D + 2u)]); }
  var l = 0.0;
  for (var s = 0u; s < p.nSplit; s = s + 1u) {
    let b = first + s * (D + 2u);
    l = l + scratch[b + 1u] * exp(scratch[b] - mx);
  }
  var inv = 0.0;
  if (l > 0.0) { inv = 1.0 / l; }
  for (var i = tid; i < D; i = i + WG) {
    var acc = 0.0;
    for (var s = 0u; s < p.nSplit; s = s + 1u) {
      let b = first + s * (D + 2u);
      acc = acc + scratch[b + 2u + i] * exp(scratch[b] - mx);
    }
    out[row * D + i] = acc * inv;
  }
  if (p.probStride != 0u) {
    let n = p.nSlots[kvh / 4u][kvh % 4u];
    let probRow = p.probBase + row * p.probStride;
    for (var j = tid; j < n; j = j + WG) {
      let sj = scratch[probRow + j];
      var pr = 0.0;
      if (sj > MASKED) { pr = exp(sj - mx) * inv; }
      scratch[probRow + j] = pr;
    }
  }
}
`,
  };
}

export interface SplitDispatchArgs extends AttendDispatchArgs {
  nSplit: number;
  splitSlots: number;
}

export function attendSplitParams(a: SplitDispatchArgs): ArrayBuffer {
  const p = new Params()
    .u(a.nQ, a.group)
    .f(a.scale)
    .u(a.probStride, a.kStride, a.vStride, a.cap, a.qPosBase, a.probBase, a.nSplit, a.splitSlots)
    .f(a.softcap ?? 0);
  for (let h = 0; h < MAX_HEADS; h++) p.u(h < a.nSlots.length ? a.nSlots[h]! : 0);
  return p.build();
}

export function attendCombineParams(a: SplitDispatchArgs): ArrayBuffer {
  const p = new Params().u(a.nQ, a.group, a.probStride, a.probBase, a.nSplit, 0, 0, 0);
  for (let h = 0; h < MAX_HEADS; h++) p.u(h < a.nSlots.length ? a.nSlots[h]! : 0);
  return p.build();
}
