/**
 * CPU throughput probes: how many multiply-accumulates (MACs) per second this machine's vector
 * units sustain, under this engine, for each attention inner-loop instruction mix, with the data
 * in L1 (sources and what each mix is: bench/lib/cpu-peak-kernels.ts). The ratio of a mix's
 * time per MAC to the f32 mix's is the ALU floor of that codec's attention against f32's where
 * both are compute-bound: e.g. if an int8 code with q8 rows costs 0.56 of an f32 element's
 * time here, an int8 q8-query kernel doing the same work per element cannot run below 0.56 of
 * an f32 kernel that is itself compute-bound. The clock is estimated from a dependent chain of
 * 1-cycle scalar ops, so "MACs / cycle" is approximate (turbo moves it); the ratios are not.
 *   node --import tsx bench/cpu-peak.ts [--rounds 5] [--out results/bench/cpu-peak]
 * Node 20 runs the baseline probes only (no relaxed SIMD without a flag; see src/kernels/wasm-loader.ts);
 * Node 22+ adds FMA and the relaxed i8 dot.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import asc from "assemblyscript/asc";
import { PROBES_BASELINE, PROBES_RELAXED } from "./lib/cpu-peak-kernels.ts";
import { machineInfo } from "./lib/machine.ts";
import { BUDGET_FULL, time } from "./lib/measure.ts";

interface Probe {
  name: string;
  /** What the loop does per 16 codes (or 16 f32 elements) and 4 query rows. */
  mix: string;
  fn: string;
  macsPerPass: number;
  intArg?: boolean;
  relaxed?: boolean;
}

const PROBES: Probe[] = [
  {
    name: "f32 rows x f32 keys (mul + add)",
    mix: "4 loads, 16 mul, 16 add",
    fn: "f32MulAdd",
    macsPerPass: 4 * 1024,
  },
  {
    name: "f32 rows x f32 keys (FMA)",
    mix: "4 loads, 16 relaxed_madd",
    fn: "f32Fma",
    macsPerPass: 4 * 1024,
    relaxed: true,
  },
  {
    name: "f32 rows x int8 codes widened (exact mode)",
    mix: "1 load, 10 widen/convert, 16 mul, 16 add",
    fn: "i8WidenF32",
    macsPerPass: 4 * 4096,
  },
  {
    name: "q8 rows x int8 codes, i16 dot (query: q8, baseline build)",
    mix: "1 load, 2 widen, 8 dot_i16x8, 8 add",
    fn: "i8DotI16",
    macsPerPass: 4 * 4096,
    intArg: true,
  },
  {
    name: "q8 rows x int8 codes, relaxed i8 dot (query: q8, relaxed build)",
    mix: "1 load, 4 relaxed_dot_i8x16_i7x16_add",
    fn: "i8DotRelaxed",
    macsPerPass: 4 * 4096,
    intArg: true,
    relaxed: true,
  },
];

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "5" }, out: { type: "string" } },
});
const rounds = Number(values.rounds);

async function build(source: string, relaxed: boolean): Promise<Record<string, (...a: number[]) => number>> {
  const { binary, error, stderr } = await asc.compileString(source, {
    optimizeLevel: 3,
    runtime: "stub",
    enable: relaxed ? ["simd", "relaxed-simd"] : ["simd"],
    noAssert: true,
  });
  if (error || !binary) throw new Error(`compiling the probes failed: ${error?.message}\n${stderr}`);
  const bytes = binary as Uint8Array<ArrayBuffer>;
  if (!WebAssembly.validate(bytes)) throw new Error("this engine does not validate the module");
  const inst = new WebAssembly.Instance(await WebAssembly.compile(bytes), { env: { abort: () => {} } });
  return inst.exports as unknown as Record<string, (...a: number[]) => number>;
}

const base = await build(PROBES_BASELINE, false);
let relaxed: Record<string, (...a: number[]) => number> | null = null;
let relaxedWhy = "";
try {
  relaxed = await build(`${PROBES_BASELINE}\n${PROBES_RELAXED}`, true);
  // Node 20's V8 validates relaxed SIMD only behind a flag, and then reads the i8 dot's first
  // operand as unsigned (NOTES): the probe's timing would still be valid, but skip it there.
} catch (e) {
  relaxedWhy = (e as Error).message;
}
base.fill!();
relaxed?.fill?.();

// Clock: 16 dependent 1-cycle scalar ops per step.
const steps = 20_000_000;
let clockMs = Infinity;
for (let r = 0; r < rounds; r++)
  clockMs = Math.min(clockMs, (await time("clock", () => void base.addChain!(steps, 3), BUDGET_FULL)).ms);
const ghz = (steps * 16) / (clockMs * 1e6);

const passes = 2000;
const best = new Map<string, number>();
for (let r = 0; r < rounds; r++)
  for (const p of PROBES) {
    const mod = p.relaxed ? relaxed : base;
    if (!mod) continue;
    const f = mod[p.fn]!;
    const t = await time(p.fn, () => void f(passes, p.intArg ? 3 : 1.5), BUDGET_FULL);
    best.set(p.fn, Math.min(best.get(p.fn) ?? Infinity, t.ms));
  }

const f32Ns = (best.get("f32MulAdd")! * 1e6) / (passes * PROBES[0]!.macsPerPass);
const lines = [
  `# CPU throughput probes (${machineInfo().name}, ${machineInfo().cpuModel})`,
  "",
  `${new Date().toISOString()}; node ${process.version}; load ${loadavg()[0]!.toFixed(2)}; fastest of ${rounds} rounds (tinybench, ${BUDGET_FULL.time} ms each).`,
  `Command: \`node --import tsx bench/cpu-peak.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}\`. Clock estimate from a dependent 1-cycle scalar chain: ${ghz.toFixed(2)} GHz.`,
  "",
  "| mix | per 16 elements x 4 rows | GMAC/s | MACs / cycle | time per MAC / f32 (mul + add) |",
  "|---|---|---|---|---|",
];
for (const p of PROBES) {
  const ms = best.get(p.fn);
  if (ms === undefined) {
    lines.push(`| ${p.name} | ${p.mix} | not run: ${relaxedWhy || "no relaxed SIMD"} | | |`);
    continue;
  }
  const ns = (ms * 1e6) / (passes * p.macsPerPass); // per MAC
  const gmacs = 1 / ns; // MACs per ns = GMAC/s
  lines.push(
    `| ${p.name} | ${p.mix} | ${gmacs.toFixed(1)} | ${(gmacs / ghz).toFixed(1)} | ${(ns / f32Ns).toFixed(2)} |`,
  );
}
const md = `${lines.join("\n")}\n`;
process.stdout.write(md);
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  const file = join(values.out, `${machineInfo().name}.md`);
  writeFileSync(file, md);
  console.log(`wrote ${file}`);
}
