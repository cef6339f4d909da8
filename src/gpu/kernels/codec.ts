/**
 * Encode / decode kernels for every codec (as data: see ../kernel.ts).
 *
 * encode: one invocation per row. Rows of the source are (nHeadsIn, nNew, headDim); row
 * (h, t) goes to destination row h * headStride + first[h] + t, at `dstStride` words per row,
 * so the same kernel fills a standalone row buffer and the per-KV-head slots of a cache
 * (where each row also carries its token position in the word after the encoded row).
 */
import type { Codec } from "../../quant/types.ts";
import type { Kernel } from "../kernel.ts";
import { Params } from "../kernel.ts";
import type { GpuRowLayout } from "../layout.ts";
import { BITS_WGSL } from "../wgsl/bits.ts";
import { decodeElemWgsl, encodeRowWgsl } from "../wgsl/codec.ts";

/** Most KV heads one dispatch addresses (per-head offsets live in the uniform block). */
export const MAX_HEADS = 64;
export const NO_POSITIONS = 0xffffffff;
const WG = 64;

function codecKey(codec: Codec, L: GpuRowLayout): string {
  const o = codec.options;
  return `${o.type}-${o.symmetric ? "s" : "a"}-g${L.cpu.groupSize}-d${L.headDim}`;
}

export function encodeKernel(codec: Codec, L: GpuRowLayout): Kernel {
  return {
    name: `encode-${codecKey(codec, L)}`,
    storage: ["read", "rw", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P {
  nHeadsIn: u32, nNew: u32, srcBase: u32, headStride: u32,
  dstStride: u32, posBase: u32, _a: u32, _b: u32,
  first: array<vec4<u32>, ${MAX_HEADS / 4}>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read_write> stats: array<atomic<u32>>;
${BITS_WGSL}
${encodeRowWgsl(codec, L, "enc_row", "src", "dst")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.nHeadsIn * p.nNew) { return; }
  let h = r / p.nNew;
  let t = r % p.nNew;
  let row = h * p.headStride + p.first[h / 4u][h % 4u] + t;
  let db = row * p.dstStride;
  let st = enc_row(p.srcBase + r * ${L.headDim}u, db);
  if (p.posBase != ${NO_POSITIONS}u) { dst[db + ${L.rowWords}u] = src[p.posBase + t]; }
  if (st.x != 0u) { atomicAdd(&stats[0], st.x); }
  if (st.y != 0u) { atomicAdd(&stats[1], st.y); }
}
`,
  };
}

export interface EncodeArgs {
  nHeadsIn: number;
  nNew: number;
  /** Word offset of the first source row in the source buffer. */
  srcBase: number;
  /** Destination rows between heads. */
  headStride: number;
  /** Words per destination row (rowWords, +1 when a position word follows). */
  dstStride: number;
  /** Word offset of nNew i32 positions in the source buffer, or NO_POSITIONS. */
  posBase: number;
  /** First destination row of each head: (nHeadsIn). */
  first: ArrayLike<number>;
}

export function encodeParams(a: EncodeArgs): ArrayBuffer {
  const p = new Params().u(a.nHeadsIn, a.nNew, a.srcBase, a.headStride, a.dstStride, a.posBase, 0, 0);
  for (let h = 0; h < MAX_HEADS; h++) p.u(h < a.nHeadsIn ? a.first[h]! : 0);
  return p.build();
}

/** decode: one invocation per element; rows [srcRow, srcRow + nRows) at `stride` words -> f32 (nRows, headDim). */
export function decodeKernel(codec: Codec, L: GpuRowLayout): Kernel {
  return {
    name: `decode-${codecKey(codec, L)}`,
    storage: ["read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { nRows: u32, srcRow: u32, stride: u32, _a: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${BITS_WGSL}
${decodeElemWgsl(codec, L, "dec", "rows")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  if (e >= p.nRows * ${L.headDim}u) { return; }
  let r = e / ${L.headDim}u;
  let i = e % ${L.headDim}u;
  out[e] = dec((p.srcRow + r) * p.stride, i);
}
`,
  };
}

export function decodeParams(nRows: number, srcRow: number, stride: number): ArrayBuffer {
  return new Params().u(nRows, srcRow, stride, 0).build();
}

export function groupsFor(n: number, wg = WG): [number] {
  return [Math.ceil(n / wg)];
}
