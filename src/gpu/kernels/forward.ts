/**
 * The model forward ops in WGSL (as data): matmul (x @ w^T + bias, PyTorch Linear layout),
 * RMSNorm, LayerNorm with bias (GPT-2), RoPE rotate-half (cos/sin from a host table: WGSL's
 * sin/cos promise only 2^-11 absolute accuracy, and only on [-pi, pi]), SwiGLU, GeGLU and the
 * GELU tanh approximation (HF gelu_new / gelu_pytorch_tanh), scaling, soft-capping
 * (cap * tanh(x / cap), Gemma 2's final logits), row softmax, residual add, and the
 * (n, nH, d) <-> (nH, n, d) permutation the cache interface uses.
 * All f32, one invocation per output element except the row reductions (a workgroup per row).
 */
import { type Kernel, Params } from "../kernel.ts";

const WG = 64;

/**
 * out (n, dOut) = x (n, dIn) @ w^T (+ bias (dOut) when hasBias = 1). Word offsets let views
 * share buffers; `oStride`/`oCol` let a weight split into row blocks (a tensor over the
 * device's binding-size limit) write its block of columns of a wider output.
 */
export function matmulKernel(): Kernel {
  return {
    name: "matmul",
    storage: ["read", "read", "read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P {
  n: u32, dIn: u32, dOut: u32, hasBias: u32, xOff: u32, wOff: u32, bOff: u32, oOff: u32,
  oStride: u32, oCol: u32, _a: u32, _b: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${WG}u;
  if (e >= p.n * p.dOut) { return; }
  let t = e / p.dOut;
  let o = e % p.dOut;
  let xo = p.xOff + t * p.dIn;
  let wo = p.wOff + o * p.dIn;
  var acc = 0.0;
  for (var i = 0u; i < p.dIn; i = i + 1u) { acc = acc + x[xo + i] * w[wo + i]; }
  if (p.hasBias != 0u) { acc = acc + b[p.bOff + o]; }
  out[p.oOff + t * p.oStride + p.oCol + o] = acc;
}
`,
  };
}

export function matmulParams(
  n: number,
  dIn: number,
  dOut: number,
  hasBias: boolean,
  off: { x?: number; w?: number; b?: number; o?: number; oStride?: number; oCol?: number } = {},
): ArrayBuffer {
  return new Params()
    .u(n, dIn, dOut, hasBias ? 1 : 0, off.x ?? 0, off.w ?? 0, off.b ?? 0, off.o ?? 0)
    .u(off.oStride ?? dOut, off.oCol ?? 0, 0, 0)
    .build();
}

/** tanh written from exp(-2|x|), which never overflows (a backend's tanh may give NaN for large |x|). */
export const TANH_WGSL = `fn tanh_(x: f32) -> f32 {
  let t = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - t) / (1.0 + t);
}`;

/** Sums part[0..WG) into part[0] (a tree over the workgroup), after each thread wrote its part. */
const SUM_PART = `  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { part[lid.x] = part[lid.x] + part[lid.x + s]; }
    workgroupBarrier();
  }`;

/** out (n, dim) = x / sqrt(mean(x^2) + eps) * w; one workgroup per row. */
export function rmsnormKernel(): Kernel {
  return {
    name: "rmsnorm",
    storage: ["read", "read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { n: u32, dim: u32, eps: f32, xOff: u32, oOff: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x;
  let xo = p.xOff + row * p.dim;
  var ss = 0.0;
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) { let v = x[xo + i]; ss = ss + v * v; }
  part[lid.x] = ss;
${SUM_PART}
  let inv = 1.0 / sqrt(part[0] / f32(p.dim) + p.eps);
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) { out[p.oOff + row * p.dim + i] = x[xo + i] * inv * w[i]; }
}
`,
  };
}

export function rmsnormParams(n: number, dim: number, eps: number, xOff = 0, oOff = 0): ArrayBuffer {
  return new Params().u(n, dim).f(eps).u(xOff, oOff, 0, 0, 0).build();
}

/**
 * LayerNorm (PyTorch nn.LayerNorm, GPT-2's ln_1/ln_2/ln_f): out (n, dim) = (x - mean) /
 * sqrt(var + eps) * w + b with the biased variance of the row; one workgroup per row, the
 * mean first and the variance of the centred row second (as the CPU forward computes it).
 */
export function layernormKernel(): Kernel {
  return {
    name: "layernorm",
    storage: ["read", "read", "read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { n: u32, dim: u32, eps: f32, xOff: u32, oOff: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let xo = p.xOff + wid.x * p.dim;
  var acc = 0.0;
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) { acc = acc + x[xo + i]; }
  part[lid.x] = acc;
${SUM_PART}
  let mean = part[0] / f32(p.dim);
  workgroupBarrier();
  var ss = 0.0;
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) { let v = x[xo + i] - mean; ss = ss + v * v; }
  part[lid.x] = ss;
${SUM_PART}
  let inv = 1.0 / sqrt(part[0] / f32(p.dim) + p.eps);
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) {
    out[p.oOff + wid.x * p.dim + i] = (x[xo + i] - mean) * inv * w[i] + b[i];
  }
}
`,
  };
}

/** LayerNorm's parameters are RMSNorm's (n, dim, eps, xOff, oOff). */
export const layernormParams = rmsnormParams;

/**
 * In-place RoPE, rotate-half pairing (i with i + headDim/2). x: (n, nHeads, headDim) at xOff;
 * cs: (n, headDim/2, 2) cos/sin of position * invFreq, computed on the host in f64.
 */
export function ropeKernel(): Kernel {
  return {
    name: "rope",
    storage: ["rw", "read"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { n: u32, nHeads: u32, headDim: u32, xOff: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let half = p.headDim / 2u;
  let e = gid.x;
  if (e >= p.n * p.nHeads * half) { return; }
  let i = e % half;
  let th = e / half;
  let t = th / p.nHeads;
  let o = p.xOff + th * p.headDim;
  let c = cs[(t * half + i) * 2u];
  let s = cs[(t * half + i) * 2u + 1u];
  let a = x[o + i];
  let b = x[o + i + half];
  x[o + i] = a * c - b * s;
  x[o + i + half] = b * c + a * s;
}
`,
  };
}

export function ropeParams(n: number, nHeads: number, headDim: number, xOff = 0): ArrayBuffer {
  return new Params().u(n, nHeads, headDim, xOff).build();
}

/** cos/sin table (n, headDim/2, 2) for the rope kernel, in f64 then rounded once to f32. */
export function ropeTable(positions: Int32Array, invFreq: Float32Array): Float32Array {
  const half = invFreq.length;
  const cs = new Float32Array(positions.length * half * 2);
  for (let t = 0; t < positions.length; t++)
    for (let i = 0; i < half; i++) {
      const angle = positions[t]! * invFreq[i]!;
      cs[(t * half + i) * 2] = Math.cos(angle);
      cs[(t * half + i) * 2 + 1] = Math.sin(angle);
    }
  return cs;
}

/**
 * Elementwise over n: op SWIGLU out = silu(g) * u; ADD out += g (residual add); GELU
 * out = gelu_tanh(g); GEGLU out = gelu_tanh(g) * u; SCALE out *= s; SOFTCAP out = s * tanh(out / s).
 * tanh is written from exp(-2|x|), which never overflows (a backend's tanh may give NaN for
 * large |x|: GELU's x^3 reaches that).
 */
export function elementwiseKernel(): Kernel {
  return {
    name: "elementwise",
    storage: ["read", "read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { n: u32, op: u32, s: f32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${TANH_WGSL}
fn gelu(x: f32) -> f32 {
  return 0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${WG}u;
  if (e >= p.n) { return; }
  switch p.op {
    case 0u: { let x = g[e]; out[e] = x / (1.0 + exp(-x)) * u[e]; }
    case 1u: { out[e] = out[e] + g[e]; }
    case 2u: { out[e] = gelu(g[e]); }
    case 3u: { out[e] = gelu(g[e]) * u[e]; }
    case 4u: { out[e] = out[e] * p.s; }
    default: { out[e] = p.s * tanh_(out[e] / p.s); }
  }
}
`,
  };
}

export const SWIGLU = 0;
export const ADD = 1;
export const GELU = 2;
export const GEGLU = 3;
export const SCALE = 4;
export const SOFTCAP = 5;

/** Parameters of elementwiseKernel; `s` is the factor of SCALE and the cap of SOFTCAP. */
export function elementwiseParams(n: number, op: number, s = 0): ArrayBuffer {
  return new Params().u(n, op).f(s).u(0).build();
}

/** Row softmax in place: x (n, dim); one workgroup per row, max-subtracted. */
export function softmaxKernel(): Kernel {
  return {
    name: "softmax",
    storage: ["rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { n: u32, dim: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let o = wid.x * p.dim;
  var m = -3.0e38;
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) { m = max(m, x[o + i]); }
  part[lid.x] = m;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { part[lid.x] = max(part[lid.x], part[lid.x + s]); }
    workgroupBarrier();
  }
  let mx = part[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) { let e = exp(x[o + i] - mx); x[o + i] = e; sum = sum + e; }
  part[lid.x] = sum;
${SUM_PART}
  let inv = 1.0 / part[0];
  for (var i = lid.x; i < p.dim; i = i + ${WG}u) { x[o + i] = x[o + i] * inv; }
}
`,
  };
}

export function softmaxParams(n: number, dim: number): ArrayBuffer {
  return new Params().u(n, dim, 0, 0).build();
}

/**
 * Permute (a, b, d) -> (b, a, d): token-major (n, nH, d) to head-major (nH, n, d) with
 * a = n, b = nH, and back with a = nH, b = n. Offsets in words.
 */
export function permuteKernel(): Kernel {
  return {
    name: "permute",
    storage: ["read", "rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { a: u32, b: u32, d: u32, srcOff: u32, dstOff: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * ${WG}u;
  if (e >= p.a * p.b * p.d) { return; }
  let i = e % p.d;
  let ab = e / p.d;
  let bi = ab % p.b;
  let ai = ab / p.b;
  dst[p.dstOff + (bi * p.a + ai) * p.d + i] = src[p.srcOff + e];
}
`,
  };
}

export function permuteParams(a: number, b: number, d: number, srcOff = 0, dstOff = 0): ArrayBuffer {
  return new Params().u(a, b, d, srcOff, dstOff, 0, 0, 0).build();
}

/** Workgroup grid for `n` invocations of a 1-D kernel, folding into y past the x limit. */
export function grid(n: number, maxX = 65535): [number, number] {
  const groups = Math.ceil(n / WG);
  if (groups <= maxX) return [Math.max(groups, 1), 1];
  return [maxX, Math.ceil(groups / maxX)];
}
