/**
 * Section 1, baselines: copy and read bandwidth at an L2-resident, an L3-resident and a
 * DRAM-sized buffer. Each figure is also given as a ratio to TypedArray.set of the same size.
 */
import type { BenchContext } from "../lib/context.ts";
import { gbps, repsFor, timeEach } from "../lib/measure.ts";
import { newSection, type SectionResult } from "../lib/report.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Scalar JS read pass with 8 accumulators (V8 does not vectorize; this is JS's ceiling). */
function jsSum(a: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let s4 = 0;
  let s5 = 0;
  let s6 = 0;
  let s7 = 0;
  const n = a.length & ~7;
  for (let i = 0; i < n; i += 8) {
    s0 += a[i]!;
    s1 += a[i + 1]!;
    s2 += a[i + 2]!;
    s3 += a[i + 3]!;
    s4 += a[i + 4]!;
    s5 += a[i + 5]!;
    s6 += a[i + 6]!;
    s7 += a[i + 7]!;
  }
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

export async function runBaselines(ctx: BenchContext): Promise<SectionResult> {
  const section = newSection("baselines");
  const sizes = ctx.args.quick ? [256 * KiB, 64 * MiB] : [256 * KiB, 8 * MiB, 256 * MiB];
  const rows: (string | number)[][] = [];
  let sink = 0;
  for (const bytes of sizes) {
    const memcpy = await ctx.memcpyGBps(bytes);
    const read = await ctx.readGBps(bytes);
    const read2 = await ctx.readGBpsThreads(bytes, 2);
    const a = new Float32Array(bytes / 4).fill(1);
    const js = gbps(
      bytes,
      (await timeEach(`js sum ${bytes}`, () => void (sink += jsSum(a)), repsFor(bytes), ctx.budget)).ms,
    );
    const base = ctx.wasm.reserve(2 * bytes);
    const wcopy = gbps(
      bytes,
      (
        await timeEach(
          `wasm copy ${bytes}`,
          () => ctx.wasm.copy(base + bytes, base, bytes),
          repsFor(bytes),
          ctx.budget,
        )
      ).ms,
    );
    const label = bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`;
    rows.push([
      label,
      memcpy,
      wcopy,
      wcopy / memcpy,
      read,
      read / memcpy,
      read2,
      read2 / read,
      js,
      js / memcpy,
    ]);
    section.records.push({
      bytes,
      memcpyGBps: memcpy,
      wasmCopyGBps: wcopy,
      wasmReadGBps: read,
      wasmRead2ThreadsGBps: read2,
      jsReadGBps: js,
    });
  }
  if (sink === -1) console.log(sink); // keeps the JS sum observable
  section.tables.push({
    title: "Baselines: copy and read bandwidth (GB/s, 1e9 B/s; ratio = / TypedArray.set of the same size)",
    columns: [
      "buffer",
      "memcpy GB/s",
      "wasm copy",
      "x memcpy",
      "wasm SIMD read",
      "x memcpy",
      "2-thread SIMD read",
      "x 1 thread",
      "JS read",
      "x memcpy",
    ],
    rows,
    notes: [
      "memcpy = Float32Array.prototype.set, bytes counted once (the size copied); read = bytes read.",
      "wasm SIMD read (4 x f32x4 accumulators) is the 'measured read bandwidth' attention is compared with.",
      "2-thread SIMD read: the same pass, a worker and the main thread each reading one half of the buffer in one shared memory (the ceiling for a 2-thread forward that streams its weights; bench/lib/wasm-baseline-mt.ts).",
    ],
  });
  return section;
}
