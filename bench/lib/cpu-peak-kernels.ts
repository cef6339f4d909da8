/**
 * AssemblyScript source of the CPU throughput probes (bench/cpu-peak.ts compiles it at start-up;
 * kept as strings, as bench/lib/wasm-baseline.ts does, so tsc and Biome do not read it as
 * TypeScript). Each probe repeats one attention inner-loop instruction mix over 4 KiB of codes
 * that stay in L1, so memory never limits it: it measures the multiply-accumulates per second
 * the vector units sustain for that mix, the ALU floor of any kernel doing the same work per
 * loaded vector. Four query rows stay in registers (the GQA group of Llama-3-8B's shape, 32 q /
 * 8 kv heads), as in assembly/attend-fused.ts; 8 accumulators hide the add latency.
 */

/** Probes every build has (baseline WASM SIMD). */
export const PROBES_BASELINE = `
const BUF: usize = memory.data(4096, 16);
const BUF_BYTES: i32 = 4096;

/** Fills the probe buffer with small deterministic values (bytes 1..7, so int8 and f32 reads are finite). */
export function fill(): void {
  for (let i = 0; i < BUF_BYTES; i++) store<u8>(BUF + <usize>i, <u8>(1 + (i % 7)));
}

function lanes(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

function ilanes(v: v128): f32 {
  return <f32>(i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/**
 * f32 cache, 4 rows: per loaded f32x4 of keys, 4 multiplies and 4 adds (one per row), two key
 * vectors per step so 8 accumulator chains hide the add latency. MACs per pass: 4 rows x 1024.
 */
export function f32MulAdd(passes: i32, s: f32): f32 {
  const q0 = f32x4.splat(s), q1 = f32x4.splat(s + 1), q2 = f32x4.splat(s + 2), q3 = f32x4.splat(s + 3);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let p = 0; p < passes; p++) {
    for (let o: usize = 0; o < <usize>BUF_BYTES; o += 32) {
      const k = v128.load(BUF + o);
      const l = v128.load(BUF + o, 16);
      a0 = f32x4.add(a0, f32x4.mul(q0, k));
      a1 = f32x4.add(a1, f32x4.mul(q1, k));
      a2 = f32x4.add(a2, f32x4.mul(q2, k));
      a3 = f32x4.add(a3, f32x4.mul(q3, k));
      b0 = f32x4.add(b0, f32x4.mul(q0, l));
      b1 = f32x4.add(b1, f32x4.mul(q1, l));
      b2 = f32x4.add(b2, f32x4.mul(q2, l));
      b3 = f32x4.add(b3, f32x4.mul(q3, l));
    }
  }
  return lanes(a0) + lanes(a1) + lanes(a2) + lanes(a3) + lanes(b0) + lanes(b1) + lanes(b2) + lanes(b3);
}

/** int8 cache, f32 rows (kvlab's exact mode): each 16 codes widened to 4 f32x4 (10 ops), then 16 mul + 16 add. MACs per pass: 4 x 4096. */
export function i8WidenF32(passes: i32, s: f32): f32 {
  const q0 = f32x4.splat(s), q1 = f32x4.splat(s + 1), q2 = f32x4.splat(s + 2), q3 = f32x4.splat(s + 3);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let p = 0; p < passes; p++) {
    for (let o: usize = 0; o < <usize>BUF_BYTES; o += 16) {
      const c = v128.load(BUF + o);
      const lo = i16x8.extend_low_i8x16_s(c);
      const hi = i16x8.extend_high_i8x16_s(c);
      const k0 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo));
      const k1 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo));
      const k2 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi));
      const k3 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi));
      a0 = f32x4.add(a0, f32x4.mul(q0, k0));
      a1 = f32x4.add(a1, f32x4.mul(q1, k0));
      a2 = f32x4.add(a2, f32x4.mul(q2, k0));
      a3 = f32x4.add(a3, f32x4.mul(q3, k0));
      b0 = f32x4.add(b0, f32x4.mul(q0, k1));
      b1 = f32x4.add(b1, f32x4.mul(q1, k1));
      b2 = f32x4.add(b2, f32x4.mul(q2, k1));
      b3 = f32x4.add(b3, f32x4.mul(q3, k1));
      a0 = f32x4.add(a0, f32x4.mul(q0, k2));
      a1 = f32x4.add(a1, f32x4.mul(q1, k2));
      a2 = f32x4.add(a2, f32x4.mul(q2, k2));
      a3 = f32x4.add(a3, f32x4.mul(q3, k2));
      b0 = f32x4.add(b0, f32x4.mul(q0, k3));
      b1 = f32x4.add(b1, f32x4.mul(q1, k3));
      b2 = f32x4.add(b2, f32x4.mul(q2, k3));
      b3 = f32x4.add(b3, f32x4.mul(q3, k3));
    }
  }
  return lanes(a0) + lanes(a1) + lanes(a2) + lanes(a3) + lanes(b0) + lanes(b1) + lanes(b2) + lanes(b3);
}

/**
 * int8 cache, q8 rows (query: q8, baseline build): 16 codes widened to 2 i16x8 (shared by the
 * rows), then per row 2 i32x4.dot_i16x8_s + 2 adds. MACs per pass: 4 x 4096.
 */
export function i8DotI16(passes: i32, s: i32): f32 {
  const q0 = i16x8.splat(<i16>s), q1 = i16x8.splat(<i16>(s + 1)), q2 = i16x8.splat(<i16>(s + 2)), q3 = i16x8.splat(<i16>(s + 3));
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let p = 0; p < passes; p++) {
    for (let o: usize = 0; o < <usize>BUF_BYTES; o += 16) {
      const c = v128.load(BUF + o);
      const lo = i16x8.extend_low_i8x16_s(c);
      const hi = i16x8.extend_high_i8x16_s(c);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(q0, lo));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(q1, lo));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(q2, lo));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(q3, lo));
      b0 = i32x4.add(b0, i32x4.dot_i16x8_s(q0, hi));
      b1 = i32x4.add(b1, i32x4.dot_i16x8_s(q1, hi));
      b2 = i32x4.add(b2, i32x4.dot_i16x8_s(q2, hi));
      b3 = i32x4.add(b3, i32x4.dot_i16x8_s(q3, hi));
    }
  }
  return ilanes(a0) + ilanes(a1) + ilanes(a2) + ilanes(a3) + ilanes(b0) + ilanes(b1) + ilanes(b2) + ilanes(b3);
}

/** A dependent chain of 16 scalar i32 adds per step (1 cycle each): steps x 16 = cycles, for the clock estimate. */
export function addChain(steps: i32, s: i32): i32 {
  let x = s;
  for (let i = 0; i < steps; i++) {
    x += i; x ^= s; x += i; x ^= s; x += i; x ^= s; x += i; x ^= s;
    x += i; x ^= s; x += i; x ^= s; x += i; x ^= s; x += i; x ^= s;
  }
  return x;
}
`;

/** Probes that need relaxed SIMD (Node 22+, browsers): FMA and the i8 x i7 dot. */
export const PROBES_RELAXED = `
export function f32Fma(passes: i32, s: f32): f32 {
  const q0 = f32x4.splat(s), q1 = f32x4.splat(s + 1), q2 = f32x4.splat(s + 2), q3 = f32x4.splat(s + 3);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let p = 0; p < passes; p++) {
    for (let o: usize = 0; o < 4096; o += 32) {
      const k = v128.load(BUF + o);
      const l = v128.load(BUF + o, 16);
      a0 = f32x4.relaxed_madd(q0, k, a0);
      a1 = f32x4.relaxed_madd(q1, k, a1);
      a2 = f32x4.relaxed_madd(q2, k, a2);
      a3 = f32x4.relaxed_madd(q3, k, a3);
      b0 = f32x4.relaxed_madd(q0, l, b0);
      b1 = f32x4.relaxed_madd(q1, l, b1);
      b2 = f32x4.relaxed_madd(q2, l, b2);
      b3 = f32x4.relaxed_madd(q3, l, b3);
    }
  }
  return lanes(a0) + lanes(a1) + lanes(a2) + lanes(a3) + lanes(b0) + lanes(b1) + lanes(b2) + lanes(b3);
}

/** int8 codes against 4 rows of i7 codes: one i32x4.relaxed_dot_i8x16_i7x16_add_s per row per 16 codes. */
export function i8DotRelaxed(passes: i32, s: i32): f32 {
  const q0 = i8x16.splat(<i8>(s & 63)), q1 = i8x16.splat(<i8>((s + 1) & 63)), q2 = i8x16.splat(<i8>((s + 2) & 63)), q3 = i8x16.splat(<i8>((s + 3) & 63));
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let p = 0; p < passes; p++) {
    for (let o: usize = 0; o < 4096; o += 32) {
      const c = v128.load(BUF + o);
      const d = v128.load(BUF + o, 16);
      a0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(c, q0, a0);
      a1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(c, q1, a1);
      a2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(c, q2, a2);
      a3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(c, q3, a3);
      b0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(d, q0, b0);
      b1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(d, q1, b1);
      b2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(d, q2, b2);
      b3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(d, q3, b3);
    }
  }
  return ilanes(a0) + ilanes(a1) + ilanes(a2) + ilanes(a3) + ilanes(b0) + ilanes(b1) + ilanes(b2) + ilanes(b3);
}
`;
