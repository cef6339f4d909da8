/**
 * Section 2, codec kernels: encode and decode GB/s (bytes of the f32 side) for every codec
 * on every executor, as ratios to TypedArray.set and to the SIMD read pass of the same f32
 * buffer. Before timing, each non-ref executor's output is compared with ref's.
 */
import type { Executor } from "../../src/kernels/executor.ts";
import { CODEC_NAMES, makeCodec } from "../../src/quant/registry.ts";
import type { Codec, EncodedRows } from "../../src/quant/types.ts";
import type { BenchContext } from "../lib/context.ts";
import { availableExecutors, fallbackSnapshot, fallbacksSince, fillRandom } from "../lib/executors.ts";
import { gbps, time } from "../lib/measure.ts";
import { check, newSection, type SectionResult, skip } from "../lib/report.ts";

const HEAD_DIM = 128;

function allocRowsIn(exec: Executor, codec: Codec, nRows: number): EncodedRows {
  const L = codec.layout(HEAD_DIM);
  return {
    payload: exec.allocU8(L.payloadBytes * nRows),
    scales: exec.allocU16(L.scalesPerRow * nRows),
    zeros: exec.allocU16(L.zerosPerRow * nRows),
  };
}

function freeRows(exec: Executor, r: EncodedRows): void {
  exec.free(r.payload);
  exec.free(r.scales);
  exec.free(r.zeros);
}

/** Compare exec with the codec's reference on the first rows: identical codes, decode within 1e-6 rel. */
function agreesWithRef(exec: Executor, codec: Codec, src: Float32Array, nRows: number): string {
  const n = Math.min(nRows, 64);
  const mine = allocRowsIn(exec, codec, n);
  const ref: EncodedRows = {
    payload: new Uint8Array(mine.payload.length),
    scales: new Uint16Array(mine.scales.length),
    zeros: new Uint16Array(mine.zeros.length),
  };
  const s = src.subarray(0, n * HEAD_DIM);
  exec.encodeRows(codec, s, n, HEAD_DIM, mine, 0);
  codec.encode(s, n, HEAD_DIM, ref, 0);
  let verdict = "ok";
  for (const part of ["payload", "scales", "zeros"] as const)
    for (let i = 0; i < ref[part].length; i++)
      if (ref[part][i] !== mine[part][i]) {
        verdict = `codes differ (${part}[${i}])`;
        break;
      }
  const a = new Float32Array(n * HEAD_DIM);
  const b = exec.allocF32(n * HEAD_DIM);
  codec.decode(ref, 0, n, HEAD_DIM, a);
  exec.decodeRows(codec, ref, 0, n, HEAD_DIM, b);
  for (let i = 0; i < a.length; i++)
    if (Math.abs(a[i]! - b[i]!) > 1e-6 * Math.max(1, Math.abs(a[i]!))) {
      verdict = verdict === "ok" ? `decode differs at ${i}` : verdict;
      break;
    }
  exec.free(b);
  freeRows(exec, mine);
  return verdict;
}

export async function runCodecs(ctx: BenchContext): Promise<SectionResult> {
  const section = newSection("codecs");
  const { executors, unavailable } = await availableExecutors();
  for (const u of unavailable) skip(section, u);
  // 4 MiB of f32 (L3-resident here), 1 MiB with --quick.
  const nRows = ctx.args.quick ? 2048 : 8192;
  const bytes = nRows * HEAD_DIM * 4;
  const memcpy = await ctx.memcpyGBps(bytes);
  const read = await ctx.readGBps(bytes);
  const rows: (string | number)[][] = [];
  for (const exec of executors) {
    const src = fillRandom(exec.allocF32(nRows * HEAD_DIM), 7);
    const dec = exec.allocF32(nRows * HEAD_DIM);
    for (const name of CODEC_NAMES) {
      const codec = makeCodec(name);
      const fb = fallbackSnapshot(exec);
      const verdict = exec.name === "ref" ? "oracle" : agreesWithRef(exec, codec, src, nRows);
      const enc = allocRowsIn(exec, codec, nRows);
      const te = await time(
        `${exec.name} encode ${name}`,
        () => exec.encodeRows(codec, src, nRows, HEAD_DIM, enc, 0),
        ctx.budget,
      );
      const td = await time(
        `${exec.name} decode ${name}`,
        () => exec.decodeRows(codec, enc, 0, nRows, HEAD_DIM, dec),
        ctx.budget,
      );
      freeRows(exec, enc);
      const fellBack = fallbacksSince(exec, fb);
      console.log(`  ${exec.name} ${name}: encode ${te.ms.toFixed(2)} ms, decode ${td.ms.toFixed(2)} ms`);
      const e = gbps(bytes, te.ms);
      const d = gbps(bytes, td.ms);
      rows.push([
        exec.name,
        name,
        e,
        e / memcpy,
        d,
        d / memcpy,
        d / read,
        verdict,
        fellBack ? "ref fallback" : "",
      ]);
      section.records.push({
        executor: exec.name,
        codec: name,
        bytes,
        encodeGBps: e,
        decodeGBps: d,
        memcpyGBps: memcpy,
        readGBps: read,
        encodeP50Ms: te.p50,
        decodeP50Ms: td.p50,
        check: verdict,
        fallbacks: fellBack,
      });
      if (exec.name === "wasm" && ["int8", "int4", "f16"].includes(name)) {
        section.targets.push(
          check(
            `encode ${name} wasm / memcpy`,
            ">= 0.6",
            e / memcpy,
            `${e.toFixed(2)} vs ${memcpy.toFixed(2)} GB/s`,
          ),
        );
        section.targets.push(
          check(
            `decode ${name} wasm / memcpy`,
            ">= 0.6",
            d / memcpy,
            `${d.toFixed(2)} vs ${memcpy.toFixed(2)} GB/s`,
          ),
        );
      }
    }
    exec.free(src);
    exec.free(dec);
  }
  if (!executors.some((e) => e.name === "wasm"))
    for (const name of ["int8", "int4", "f16"])
      section.targets.push(
        check(`encode/decode ${name} wasm / memcpy`, ">= 0.6", null, "wasm executor not registered"),
      );
  section.tables.push({
    title: `Codec kernels: ${nRows} rows x headDim ${HEAD_DIM} (${bytes / 2 ** 20} MiB of f32), GB/s of the f32 side`,
    columns: [
      "executor",
      "codec",
      "encode GB/s",
      "x memcpy",
      "decode GB/s",
      "x memcpy",
      "decode x read",
      "vs ref",
      "note",
    ],
    rows,
    notes: [
      `memcpy (TypedArray.set) of the same ${bytes / 2 ** 20} MiB: ${memcpy.toFixed(2)} GB/s; WASM SIMD read pass: ${read.toFixed(2)} GB/s.`,
      "Codecs at their registry defaults (int8 symmetric g32, int4/int2 asymmetric g32).",
    ],
  });
  return section;
}
