// Elementwise and per-row model ops: rmsnorm, rotary embedding (rotate-half pairing), SwiGLU.
import { exp4 } from "./exp";

/** out (n, dim) = x / sqrt(mean(x^2) + eps) * w per row; w: (dim). f32, SIMD body + scalar tail. */
export function rmsnorm(out: usize, x: usize, w: usize, n: i32, dim: i32, eps: f32): void {
  for (let t = 0; t < n; t++) {
    const xr = x + ((<usize>t * <usize>dim) << 2);
    const orow = out + ((<usize>t * <usize>dim) << 2);
    let a = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= dim; i += 4) {
      const v = v128.load(xr + (<usize>i << 2));
      a = f32x4.add(a, f32x4.mul(v, v));
    }
    let ss = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
    for (; i < dim; i++) {
      const v = load<f32>(xr + (<usize>i << 2));
      ss += v * v;
    }
    const inv = <f32>1 / Mathf.sqrt(ss / <f32>dim + eps);
    const vinv = f32x4.splat(inv);
    i = 0;
    for (; i + 4 <= dim; i += 4) {
      const k = <usize>i << 2;
      v128.store(orow + k, f32x4.mul(f32x4.mul(v128.load(xr + k), vinv), v128.load(w + k)));
    }
    for (; i < dim; i++) {
      const k = <usize>i << 2;
      store<f32>(orow + k, load<f32>(xr + k) * inv * load<f32>(w + k));
    }
  }
}

/**
 * In-place rotary embedding, x: (n, nHeads, headDim), element i pairs with i + headDim/2.
 * Angles and the rotation are computed in f64 like the reference (pos * invFreq[i] in f64);
 * cos/sin per (token, pair) are computed once into scratch (headDim f64) and reused by all heads.
 */
export function rope(x: usize, positions: usize, n: i32, nHeads: i32, headDim: i32, invFreq: usize, scratch: usize): void {
  const half = headDim >> 1;
  const cs = scratch; // (half) f64 cos
  const sn = scratch + (<usize>half << 3); // (half) f64 sin
  for (let t = 0; t < n; t++) {
    const pos = <f64>load<i32>(positions + (<usize>t << 2));
    for (let i = 0; i < half; i++) {
      const angle = pos * <f64>load<f32>(invFreq + (<usize>i << 2));
      store<f64>(cs + (<usize>i << 3), Math.cos(angle));
      store<f64>(sn + (<usize>i << 3), Math.sin(angle));
    }
    for (let h = 0; h < nHeads; h++) {
      const a0 = x + ((<usize>(t * nHeads + h) * <usize>headDim) << 2);
      const b0 = a0 + (<usize>half << 2);
      let i = 0;
      for (; i + 2 <= half; i += 2) {
        const a = f64x2.promote_low_f32x4(v128.load64_zero(a0 + (<usize>i << 2)));
        const b = f64x2.promote_low_f32x4(v128.load64_zero(b0 + (<usize>i << 2)));
        const c = v128.load(cs + (<usize>i << 3));
        const s = v128.load(sn + (<usize>i << 3));
        const ra = f64x2.sub(f64x2.mul(a, c), f64x2.mul(b, s));
        const rb = f64x2.add(f64x2.mul(b, c), f64x2.mul(a, s));
        v128.store64_lane(a0 + (<usize>i << 2), f32x4.demote_f64x2_zero(ra), 0);
        v128.store64_lane(b0 + (<usize>i << 2), f32x4.demote_f64x2_zero(rb), 0);
      }
      for (; i < half; i++) {
        const a = <f64>load<f32>(a0 + (<usize>i << 2));
        const b = <f64>load<f32>(b0 + (<usize>i << 2));
        const c = load<f64>(cs + (<usize>i << 3));
        const s = load<f64>(sn + (<usize>i << 3));
        store<f32>(a0 + (<usize>i << 2), <f32>(a * c - b * s));
        store<f32>(b0 + (<usize>i << 2), <f32>(b * c + a * s));
      }
    }
  }
}

/** out (n) = silu(gate) * up = gate / (1 + exp(-gate)) * up. SIMD body (exp4) + scalar tail. */
export function swiglu(out: usize, gate: usize, up: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const k = <usize>i << 2;
    const g = v128.load(gate + k);
    v128.store(out + k, f32x4.mul(f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g)))), v128.load(up + k)));
  }
  for (; i < n; i++) {
    const k = <usize>i << 2;
    const g = load<f32>(gate + k);
    const e = f32x4.extract_lane(exp4(f32x4.splat(-g)), 0);
    store<f32>(out + k, (g / (<f32>1 + e)) * load<f32>(up + k));
  }
}

/** x (n) += y (n): the residual add. SIMD body + scalar tail (the same f32 add per element). */
export function addInPlace(x: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const k = <usize>i << 2;
    v128.store(x + k, f32x4.add(v128.load(x + k), v128.load(y + k)));
  }
  for (; i < n; i++) {
    const k = <usize>i << 2;
    store<f32>(x + k, load<f32>(x + k) + load<f32>(y + k));
  }
}

/**
 * out (b, a, d) = x (a, b, d), for the output rows [b0, b1) of its first axis: token-major
 * (n, nHeads, d) to head-major (nHeads, n, d) and back. d-float rows copied whole (memory.copy).
 */
export function swapAxes01(out: usize, x: usize, a: i32, b: i32, d: i32, b0: i32, b1: i32): void {
  const rowB = <usize>d << 2;
  for (let j = b0; j < b1; j++) {
    let o = out + <usize>j * <usize>a * rowB;
    let s = x + <usize>j * rowB;
    const step = <usize>b * rowB;
    for (let i = 0; i < a; i++) {
      memory.copy(o, s, rowB);
      o += rowB;
      s += step;
    }
  }
}
