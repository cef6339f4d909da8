/**
 * The randomized Hadamard rotation of src/quant/hadamard.ts (QuaRot, Ashkboos et al. 2024,
 * arXiv:2404.00456; TurboQuant's rotation, Zandieh et al. 2025, arXiv:2504.19874) on the GPU,
 * bit for bit: R = H D / sqrt(n) per power-of-two block of the head (65 = 64 + 1), with the
 * same seeded signs (a HadamardRotation's `signs`, baked into the shader). One invocation per
 * row rotates it in place in a private array: signs (exact), butterflies in the reference's
 * order (f32 adds, correctly rounded on every WebGPU backend), then the block's 1/sqrt(size).
 *
 * That last factor is an f64 constant in the reference (x * (1 / Math.sqrt(size)) rounded
 * once to f32). For even log2(size) it is a power of two (an exact f32 multiply). For odd
 * log2(size) it is 2^-m * C with C = fl64(1 / fl64(sqrt 2)), and the f32 result of y * C is
 * computed exactly in integers (the 24-bit mantissa of y times C's 53-bit mantissa in 16-bit
 * limbs, rounded to nearest even), which no f32 multiply can reproduce. Zero, subnormal and
 * non-finite y take a plain f32 multiply.
 *
 * The inverse (R^T, the reference's `invert`) runs the butterflies first, then 1/sqrt(size),
 * then the signs.
 */
import { blocksOf, type HadamardRotation } from "../../quant/hadamard.ts";
import type { Kernel } from "../kernel.ts";
import { Params } from "../kernel.ts";

const WG = 64;

/** C = fl64(1 / fl64(sqrt 2)) as its 53-bit integer mantissa (C = M * 2^-53), in 16-bit limbs. */
function invSqrt2Limbs(): number[] {
  const c = 1 / Math.SQRT2;
  const m = BigInt(c * 2 ** 53); // exact: c in [0.5, 1) has 53 significant bits
  return [0, 1, 2, 3].map((i) => Number((m >> BigInt(16 * i)) & 0xffffn));
}

const MUL_WGSL = (limbs: number[]) => /* wgsl */ `
// fround(y * C * 2^-m) for f32 y, C = fl64(1/fl64(sqrt 2)), exactly (see the file header).
fn mul_inv_sqrt2(y: f32, m: u32) -> f32 {
  let b = bitcast<u32>(y);
  let e = (b >> 23u) & 0xffu;
  if (e == 0u || e == 0xffu) { return y * ${1 / Math.SQRT2} * exp2(-f32(m)); }
  let my = (b & 0x7fffffu) | 0x800000u;
  let y0 = my & 0xffffu;
  let y1 = my >> 16u;
  var c = array<u32, 4>(${limbs.map((l) => `${l}u`).join(", ")});
  // 16-bit limbs of my * C (up to 77 bits): partial products split into halves, then carried.
  var l = array<u32, 6>(0u, 0u, 0u, 0u, 0u, 0u);
  for (var k = 0u; k < 4u; k = k + 1u) {
    let p0 = y0 * c[k];
    let p1 = y1 * c[k];
    l[k] = l[k] + (p0 & 0xffffu);
    l[k + 1u] = l[k + 1u] + (p0 >> 16u) + (p1 & 0xffffu);
    l[k + 2u] = l[k + 2u] + (p1 >> 16u);
  }
  for (var k = 0u; k < 5u; k = k + 1u) { l[k + 1u] = l[k + 1u] + (l[k] >> 16u); l[k] = l[k] & 0xffffu; }
  let w0 = l[0] | (l[1] << 16u);
  let w1 = l[2] | (l[3] << 16u);
  let w2 = l[4] | (l[5] << 16u);
  // The product lies in [2^75, 2^77): keep its top 24 bits.
  var sh = 52u;
  if ((w2 & 0x1000u) != 0u) { sh = 53u; }
  var r = ((w1 >> (sh - 32u)) | (w2 << (64u - sh))) & 0xffffffu;
  let rb = sh - 33u;
  let round = (w1 >> rb) & 1u;
  let sticky = (w1 & ((1u << rb) - 1u)) != 0u || w0 != 0u;
  var ex = i32(e) - 53 + i32(sh) - i32(m);
  if (round == 1u && (sticky || (r & 1u) == 1u)) { r = r + 1u; }
  if (r == 0x1000000u) { r = 0x800000u; ex = ex + 1; }
  if (ex <= 0) { return y * ${1 / Math.SQRT2} * exp2(-f32(m)); }
  return bitcast<f32>((b & 0x80000000u) | (u32(ex) << 23u) | (r & 0x7fffffu));
}
`;

/** x * (1 / sqrt(size)) rounded once to f32, as the reference's f64 factor. */
function normExpr(x: string, size: number): string {
  const k = Math.log2(size);
  if (k === 0) return x;
  if (k % 2 === 0) return `(${x} * ${2 ** (-k / 2)})`;
  return `mul_inv_sqrt2(${x}, ${(k - 1) / 2}u)`;
}

/** WGSL statements: the unnormalized fast Walsh-Hadamard transform of x[start, start + size). */
function fwht(start: number, size: number): string {
  if (size === 1) return "";
  return `  for (var h = 1u; h < ${size}u; h = h * 2u) {
    for (var i = 0u; i < ${size}u; i = i + 2u * h) {
      for (var j = i; j < i + h; j = j + 1u) {
        let a = x[${start}u + j];
        let c = x[${start}u + j + h];
        x[${start}u + j] = a + c;
        x[${start}u + j + h] = a - c;
      }
    }
  }
`;
}

/**
 * Rotate rows in place: params (nRows, base), rows of n = rot.n f32 at word base + r * n of the
 * one storage buffer. `inverse` gives R^T (hadamard.ts invert).
 */
export function rotationKernel(rot: HadamardRotation, inverse: boolean): Kernel {
  const n = rot.n;
  const blocks = blocksOf(n);
  const signs = Array.from(rot.signs, (s) => (s < 0 ? "-1.0" : "1.0")).join(", ");
  const body: string[] = [];
  if (!inverse) {
    body.push(`  for (var i = 0u; i < ${n}u; i = i + 1u) { x[i] = x[i] * SIGNS[i]; }\n`);
    for (const b of blocks) {
      body.push(fwht(b.start, b.size));
      if (b.size > 1)
        body.push(
          `  for (var i = ${b.start}u; i < ${b.start + b.size}u; i = i + 1u) { x[i] = ${normExpr("x[i]", b.size)}; }\n`,
        );
    }
  } else
    for (const b of blocks) {
      body.push(fwht(b.start, b.size));
      body.push(
        `  for (var i = ${b.start}u; i < ${b.start + b.size}u; i = i + 1u) { x[i] = ${normExpr("x[i]", b.size)} * SIGNS[i]; }\n`,
      );
    }
  const hash = Array.from(rot.signs, (s) => (s < 0 ? "1" : "0")).join("");
  return {
    name: `hadamard-${inverse ? "inv" : "fwd"}-d${n}-${hash}`,
    storage: ["rw"],
    workgroupSize: WG,
    code: /* wgsl */ `
struct P { nRows: u32, base: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
var<private> SIGNS: array<f32, ${n}> = array<f32, ${n}>(${signs});
${MUL_WGSL(invSqrt2Limbs())}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.nRows) { return; }
  let o = p.base + r * ${n}u;
  var x: array<f32, ${n}>;
  for (var i = 0u; i < ${n}u; i = i + 1u) { x[i] = buf[o + i]; }
${body.join("")}  for (var i = 0u; i < ${n}u; i = i + 1u) { buf[o + i] = x[i]; }
}
`,
  };
}

export function rotationParams(nRows: number, base: number): ArrayBuffer {
  return new Params().u(nRows, base, 0, 0).build();
}

/** Workgroups for nRows rows. */
export function rotationGroups(nRows: number): [number] {
  return [Math.ceil(nRows / WG)];
}
