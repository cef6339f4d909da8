/**
 * Decode matvec A/B (issue 15 lever 3): out (1, dOut) = x (1, dIn) @ w^T over f16, bf16, q8_0 and
 * f32 weights, called straight on the exports of two wasm modules (A: before, B: after) in one
 * process, rounds interleaved, on the decode shapes of smollm2-135m and qwen2.5-0.5b. Each
 * module gets its own memory holding enough copies of each matrix (up to 48 MiB, one per layer
 * as in a decode step) that they are read from DRAM, not from cache, as in a real decode step,
 * and calls cycle through the copies. Prints the fastest turn's time per call, the weight bytes
 * per second it means, and B / A time (fastest turns; and per round, turns A B B A); outputs of A and B must agree bit for bit (the kernels
 * promise the same sums), else it exits 1. $A_EXPORTS / $B_EXPORTS name other exports to time
 * per type (type=export,...), for variants built side by side.
 *   node --import tsx bench/matvec.ts [A.wasm, default tmp/matvec-old.wasm] [B.wasm, default
 *     build/kvlab.wasm] [rounds, default 15] [types, default f16,bf16,q8_0,f32]
 */
import { readFileSync } from "node:fs";
import os from "node:os";

type WType = "f16" | "bf16" | "q8_0" | "f32";
const [fileA = "tmp/matvec-old.wasm", fileB = "build/kvlab.wasm"] = process.argv.slice(2, 4);
const rounds = Number(process.argv[4] ?? 15);
const types = (process.argv[5] ?? "f16,bf16,q8_0,f32").split(",") as WType[];
/** [model, dIn, dOut] of the decode step's matmuls (the head is the tied embedding). */
const SHAPES: [string, number, number][] = [
  ["smollm2-135m", 576, 1536],
  ["smollm2-135m", 1536, 576],
  ["smollm2-135m", 576, 576],
  ["smollm2-135m", 576, 192],
  ["smollm2-135m head", 576, 49152],
  ["qwen2.5-0.5b", 896, 4864],
  ["qwen2.5-0.5b", 4864, 896],
  ["qwen2.5-0.5b head", 896, 151936],
];
const COPY_BYTES = 48 << 20;
/** Fraction of f16 weights drawn subnormal ($SUBNORMAL, default 0.01). */
const SUBNORMAL = Number(process.env.SUBNORMAL ?? 0.01);

interface Kernels {
  heapBase(): number;
  matmul(...a: number[]): void;
  matmulF16(...a: number[]): void;
  matmulBf16(...a: number[]): void;
  matmulQ8_0(...a: number[]): void;
}

function wBytes(t: WType, dIn: number, dOut: number): number {
  if (t === "q8_0") return (dIn / 32) * 34 * dOut;
  return dIn * dOut * (t === "f32" ? 4 : 2);
}

/** Random finite weights of type t as bytes: ~N(0, 0.05), a few f16 subnormals. */
function weights(t: WType, n: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const r = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = Math.imul(s ^ (s >>> 15), s | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const f16 = (v: number) => {
    // round-toward-zero f32 -> f16 bits, enough for random test data
    f[0] = v;
    const b = u[0]!;
    const e = ((b >>> 23) & 0xff) - 127 + 15;
    if (e <= 0) return (b >>> 16) & 0x8000;
    return ((b >>> 16) & 0x8000) | (e << 10) | ((b >>> 13) & 0x3ff);
  };
  const g = () => (r() + r() + r() - 1.5) * 0.1;
  if (t === "f32") return new Uint8Array(Float32Array.from({ length: n }, g).buffer);
  if (t === "q8_0") {
    const out = new Uint8Array((n / 32) * 34);
    for (let b = 0; b < n / 32; b++) {
      const h = f16(0.001 + r() * 0.01);
      out[b * 34] = h & 0xff;
      out[b * 34 + 1] = h >> 8;
      for (let j = 0; j < 32; j++) out[b * 34 + 2 + j] = Math.floor(r() * 256);
    }
    return out;
  }
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    if (t === "bf16") {
      f[0] = g();
      out[i] = u[0]! >>> 16;
    } else out[i] = r() < SUBNORMAL ? Math.floor(r() * 0x400) : f16(g());
  }
  return new Uint8Array(out.buffer);
}

interface Case {
  label: string;
  t: WType;
  dIn: number;
  dOut: number;
  copies: number;
  best: [number, number];
  /** B / A time of each round (its two turns of each). */
  ratios: number[];
}
const cases: Case[] = [];
for (const t of types)
  for (const [model, dIn, dOut] of SHAPES) {
    const b = wBytes(t, dIn, dOut);
    if (t === "f32" && b > 256 << 20) continue; // the f32 head of qwen: 544 MB per module
    const copies = Math.max(1, Math.min(30, Math.floor(COPY_BYTES / b)));
    cases.push({
      label: `${model} ${dIn}->${dOut}`,
      t,
      dIn,
      dOut,
      copies,
      best: [Infinity, Infinity],
      ratios: [],
    });
  }

/** One module over its own memory with every case's copies, x, out and scratch placed. */
function instantiate(file: string, exportsEnv: string | undefined) {
  // $A_EXPORTS / $B_EXPORTS: another export per type, e.g. f16=matmulF16x (a variant under test)
  const alt = new Map(
    (exportsEnv ?? "")
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=") as [string, string]),
  );
  const align = (p: number) => Math.ceil(p / 64) * 64;
  let total = 1 << 20;
  for (const c of cases)
    total += c.copies * align(wBytes(c.t, c.dIn, c.dOut)) + 4 * (c.dIn + c.dOut) * 2 + 4096;
  const memory = new WebAssembly.Memory({
    initial: Math.ceil(total / 65536) + 64,
    maximum: 65536,
    shared: true,
  });
  const mod = new WebAssembly.Module(readFileSync(file));
  const k = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as Kernels;
  const fn = (t: WType, name: keyof Kernels) => {
    const f = (k as unknown as Record<string, (...a: number[]) => void>)[alt.get(t) ?? name];
    if (!f) throw new Error(`${file} exports no ${alt.get(t)}`);
    return f;
  };
  const kernel = {
    f32: fn("f32", "matmul"),
    f16: fn("f16", "matmulF16"),
    bf16: fn("bf16", "matmulBf16"),
    q8_0: fn("q8_0", "matmulQ8_0"),
  };
  const bytes = new Uint8Array(memory.buffer);
  let p = align(k.heapBase());
  const at = cases.map((c, ci) => {
    const wb = wBytes(c.t, c.dIn, c.dOut);
    const w: number[] = [];
    const data = weights(c.t, c.dIn * c.dOut, 1000 + ci);
    for (let j = 0; j < c.copies; j++) {
      bytes.set(data, p);
      w.push(p);
      p = align(p + wb);
    }
    const x = p;
    p = align(p + 4 * c.dIn);
    const xs = new Float32Array(memory.buffer, x, c.dIn);
    for (let i = 0; i < c.dIn; i++) xs[i] = Math.sin(i * 0.37 + ci) * 2;
    const out = p;
    p = align(p + 4 * c.dOut);
    const scratch = p;
    p = align(p + 4 * c.dIn);
    return { w, x, out, scratch };
  });
  const call = (ci: number, j: number) => {
    const c = cases[ci]!;
    const a = at[ci]!;
    const w = a.w[j % a.w.length]!;
    if (c.t === "f32") kernel.f32(a.out, a.x, w, 0, 1, c.dIn, c.dOut, 0, c.dOut);
    else kernel[c.t](a.out, a.x, w, 0, 1, c.dIn, c.dOut, 0, c.dOut, a.scratch);
  };
  const result = (ci: number) => new Float32Array(memory.buffer, at[ci]!.out, cases[ci]!.dOut).slice();
  return { call, result };
}

function spread(v: number[]): string {
  const s = [...v].sort((x, y) => x - y);
  const f = (x: number) => x.toFixed(3);
  return `${f(s[s.length >> 1]!)} [${f(s[0]!)}, ${f(s[s.length - 1]!)}]`;
}

const mods = [instantiate(fileA, process.env.A_EXPORTS), instantiate(fileB, process.env.B_EXPORTS)];
let bad = 0;
for (const [ci, c] of cases.entries()) {
  mods[0]!.call(ci, 0);
  mods[1]!.call(ci, 0);
  const [ra, rb] = [mods[0]!.result(ci), mods[1]!.result(ci)];
  const diff = ra.findIndex((v, i) => !Object.is(v, rb[i]));
  if (diff >= 0) {
    console.log(`MISMATCH ${c.t} ${c.label} [${diff}]: A ${ra[diff]} B ${rb[diff]}`);
    bad++;
  }
}
for (let r = 0; r < rounds; r++)
  for (const [ci, c] of cases.entries()) {
    const t: [number, number] = [0, 0];
    for (const m of [0, 1, 1, 0]) {
      // ~5 ms of calls per turn, cycling through the copies; turns A B B A
      const reps = Math.max(c.copies, Math.ceil(5e6 / (wBytes(c.t, c.dIn, c.dOut) / 10)) | 0);
      const t0 = performance.now();
      for (let j = 0; j < reps; j++) mods[m]!.call(ci, j);
      const dt = (performance.now() - t0) / reps;
      c.best[m] = Math.min(c.best[m]!, dt);
      t[m] += dt;
    }
    c.ratios.push(t[1] / t[0]);
  }
console.log(
  `${process.version}; A ${fileA}, B ${fileB}; 1 thread, ${rounds} rounds, fastest; load ${os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(" ")}`,
);
console.log(
  "type  shape                              copies   A us    B us   A GB/s  B GB/s  B/A best  B/A rounds: median [min, max]",
);
for (const c of cases) {
  const b = wBytes(c.t, c.dIn, c.dOut);
  const [a, bb] = c.best;
  console.log(
    `${c.t.padEnd(5)} ${c.label.padEnd(34)} ${String(c.copies).padStart(6)} ${(a * 1e3).toFixed(1).padStart(7)} ${(bb * 1e3).toFixed(1).padStart(7)} ${(b / a / 1e6).toFixed(1).padStart(7)} ${(b / bb / 1e6).toFixed(1).padStart(7)}  ${(bb / a).toFixed(3).padStart(8)}  ${spread(c.ratios)}`,
  );
}
if (bad) process.exit(1);
