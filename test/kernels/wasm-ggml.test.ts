/**
 * ggml block types on wasm (assembly/codec-ggml.ts, assembly/attend-ggml.ts) against the TS
 * reference (src/quant/ggml-*.ts, itself bit-identical to ggml: bench/peers/ggml-crosscheck.ts):
 * encode gives the same payload, d, m and counts bit for bit (magnitudes 1e-30 to 1e30, ties,
 * constant and zero blocks, NaN/±Inf, values beyond f16 range, rows at an offset, arrays from
 * and not from the executor); decode the same floats bit for bit; attention over ggml keys
 * and/or values (mixed with f32/f16/int8 on the other side, 1-9 query rows, masks,
 * probabilities, f32 and q8 integer queries, 1 and 2 threads) within the named tolerances of
 * wasm-attend.test.ts. Every call runs the wasm kernels (zero ref fallbacks). The q8 integer
 * scores (the baseline build's i16 dots, the relaxed build's i8 x i7 dots on unsigned codes)
 * equal the exact sums computed here in f64 where every product is exact, on each build this
 * engine runs, and are bit-identical across the two builds on random caches where the engine
 * runs both (Node 22+; wasm-other-build.test.ts reruns this file on Node 24 from Node 20).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import type { AttendArgs } from "../../src/kernels/executor.ts";
import { refAttend } from "../../src/kernels/ref.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { loadWasmBuild } from "../../src/kernels/wasm-build.ts";
import { type LoadedWasm, WASM_PATH } from "../../src/kernels/wasm-loader.ts";
import { f32ToF16 } from "../../src/quant/half.ts";
import { q8Blocks, quantizeQ8 } from "../../src/quant/q8-query.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions, type EncodedRows } from "../../src/quant/types.ts";
import { GGML_CODECS } from "../helpers/codec-cases.ts";
import { firstMismatch, randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

// Same named tolerances as wasm-attend.test.ts (f32 lanes vs the reference's f64 sums).
const ATTEND_REL = 2e-5;
const ATTEND_ABS = 1e-6;
const PROBS_ABS = 2e-5;

let one: WasmExecutor;
let two: WasmExecutor;
before(async () => {
  if (wasmSkip) return;
  one = await wasmExecutor(1);
  two = await wasmExecutor(2);
});
after(() => {
  one?.dispose();
  two?.dispose();
});

function noFallbacks(ex: WasmExecutor, what: string): void {
  assert.deepEqual([...ex.fallbacks.entries()], [], `${what}: the wasm executor ran ref`);
}

/** Rows of hard inputs for block quantizers (each row: headDim elements). */
function hardRows(seed: number, nRows: number, d: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(nRows * d);
  for (let row = 0; row < nRows; row++) {
    const kind = Math.floor(r() * 10);
    const scale = 10 ** (Math.floor(r() * 61) - 30);
    for (let i = 0; i < d; i++) {
      const at = row * d + i;
      if (kind === 0)
        x[at] = 0; // all-zero blocks
      else if (kind === 1)
        x[at] = scale; // constant blocks
      else if (kind === 2)
        x[at] = Math.round((r() - 0.5) * 32) * 0.25 * scale; // ties on grids
      else if (kind === 3)
        x[at] = (r() - 0.5) * 3e38; // beyond f16: saturated d/m
      else if (kind === 4)
        x[at] = r() < 0.5 ? -scale : scale; // equal |max| of both signs
      else x[at] = (r() + r() + r() - 1.5) * scale;
    }
    if (kind === 5 || kind === 6) {
      // non-finite elements, counted and replaced
      const bad = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      for (let k = 0; k < 3; k++) x[row * d + Math.floor(r() * d)] = bad[Math.floor(r() * 3)]!;
    }
    if (kind === 7) for (let i = 0; i < 32; i++) x[row * d + i] = Number.NaN; // a block with no finite element
  }
  return x;
}

function encodeBoth(
  type: string,
  x: Float32Array,
  nRows: number,
  d: number,
  ex: WasmExecutor,
  fromExec: boolean,
) {
  const codec = makeCodec(type as CodecOptions["type"]);
  const L = codec.layout(d);
  const off = 2; // rows written at an offset
  const ref = allocRows(L, nRows + off);
  const refStats = codec.encode(x, nRows, d, ref, off);
  const got: EncodedRows = fromExec
    ? {
        payload: ex.allocU8(L.payloadBytes * (nRows + off)),
        scales: ex.allocU16(L.scalesPerRow * (nRows + off)),
        zeros: ex.allocU16(L.zerosPerRow * (nRows + off)),
      }
    : allocRows(L, nRows + off);
  const src = fromExec ? ex.allocF32(x.length) : x;
  if (fromExec) src.set(x);
  const stats = ex.encodeRows(codec, src, nRows, d, got, off);
  return { codec, ref, refStats, got, stats };
}

test("wasm ggml encode: payload, d, m and counts bit-identical to ref (hard inputs)", {
  skip: wasmSkip,
}, () => {
  let seed = 1;
  for (const type of GGML_CODECS)
    for (const d of [32, 64, 128])
      for (const nRows of [1, 3, 17]) {
        const x = hardRows(seed++, nRows, d);
        const e = encodeBoth(type, x, nRows, d, one, seed % 2 === 0);
        const where = `${type} d ${d} rows ${nRows} seed ${seed - 1}`;
        assert.deepEqual(e.stats, e.refStats, `${where}: counts`);
        assert.deepEqual([...e.got.payload], [...e.ref.payload], `${where}: payload`);
        assert.deepEqual([...e.got.scales], [...e.ref.scales], `${where}: d`);
        assert.deepEqual([...e.got.zeros], [...e.ref.zeros], `${where}: m`);
      }
  noFallbacks(one, "encode");
});

test("wasm ggml encode: random rows at random scales bit-identical to ref", { skip: wasmSkip }, () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...GGML_CODECS),
      fc.constantFrom(32, 64, 96, 128, 256),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (type, d, nRows, seed) => {
        const r = rng(seed);
        const x = randn(r, nRows * d, 10 ** (r() * 16 - 8));
        const e = encodeBoth(type, x, nRows, d, one, false);
        assert.deepEqual(e.stats, e.refStats);
        assert.deepEqual([...e.got.payload], [...e.ref.payload], `${type} seed ${seed}`);
        assert.deepEqual([...e.got.scales], [...e.ref.scales]);
        assert.deepEqual([...e.got.zeros], [...e.ref.zeros]);
      },
    ),
    { numRuns: 150 },
  );
  noFallbacks(one, "encode");
});

test("wasm ggml decode: bit-identical to ref", { skip: wasmSkip }, () => {
  let seed = 500;
  for (const type of GGML_CODECS)
    for (const d of [32, 128]) {
      const nRows = 9;
      const x = hardRows(seed++, nRows, d);
      const codec = makeCodec(type);
      const rows = allocRows(codec.layout(d), nRows);
      codec.encode(x, nRows, d, rows, 0);
      const want = new Float32Array(5 * d);
      codec.decode(rows, 3, 5, d, want);
      const got = new Float32Array(5 * d);
      one.decodeRows(codec, rows, 3, 5, d, got);
      assert.deepEqual(
        new Uint32Array(got.buffer),
        new Uint32Array(want.buffer),
        `${type} d ${d}: decoded bits`,
      );
    }
  noFallbacks(one, "decode");
});

interface Case {
  k: CodecOptions["type"];
  v: CodecOptions["type"];
  d: number;
  nRows: number;
  nSlots: number;
  seed: number;
  probs: boolean;
  q8: boolean;
  /** Decode step: slot j at position j, every row at position nSlots (all slots visible). */
  decode?: boolean;
}

function runAttend(ex: WasmExecutor, c: Case): void {
  const r = rng(c.seed);
  const { d, nRows, nSlots } = c;
  const kCodec = makeCodec(c.k);
  const vCodec = makeCodec(c.v);
  const enc = (codec: typeof kCodec, x: Float32Array) => {
    const rows = allocRows(codec.layout(d), nSlots);
    codec.encode(x, nSlots, d, rows, 0);
    return rows;
  };
  const k = enc(kCodec, randn(r, nSlots * d));
  const v = enc(vCodec, randn(r, nSlots * d, 2));
  let q = randn(r, nRows * d, 3);
  const slotPos = c.decode
    ? Int32Array.from({ length: nSlots }, (_, j) => j)
    : new Int32Array(nSlots).map(() => Math.floor(r() * 40));
  const qPos = c.decode
    ? new Int32Array(nRows).fill(nSlots)
    : new Int32Array(nRows).map(() => Math.floor(r() * 48) - 4);
  let q8: AttendArgs["q8"];
  if (c.q8) {
    const codes = new Int8Array(nRows * d);
    const scales = new Float32Array(nRows * q8Blocks(d));
    const qHat = new Float32Array(nRows * d);
    assert.ok(quantizeQ8(q, nRows, d, codes, scales, qHat));
    q = qHat;
    q8 = { codes, scales };
  }
  const base: Omit<AttendArgs, "out" | "probs"> = {
    kCodec,
    vCodec,
    headDim: d,
    q,
    qPos,
    nRows,
    k,
    v,
    slotPos,
    nSlots,
    scale: 1 / Math.sqrt(d),
  };
  const refOut = new Float32Array(nRows * d);
  const refProbs = c.probs ? new Float32Array(nRows * nSlots) : undefined;
  refAttend({ ...base, out: refOut, probs: refProbs });
  const out = new Float32Array(nRows * d).fill(Number.NaN);
  const probs = c.probs ? new Float32Array(nRows * nSlots).fill(-1) : undefined;
  ex.attend({ ...base, q8, out, probs });
  const kd = new Float32Array(nSlots * d);
  const vd = new Float32Array(nSlots * d);
  kCodec.decode(k, 0, nSlots, d, kd);
  vCodec.decode(v, 0, nSlots, d, vd);
  let maxV = 0;
  for (const x of vd) maxV = Math.max(maxV, Math.abs(x));
  const tolRow = new Float64Array(nRows);
  for (let row = 0; row < nRows; row++) {
    let sMag = 0;
    for (let j = 0; j < nSlots; j++) {
      let m = 0;
      for (let i = 0; i < d; i++) m += Math.abs(q[row * d + i]! * kd[j * d + i]!);
      sMag = Math.max(sMag, m * base.scale);
    }
    tolRow[row] = ATTEND_ABS + ATTEND_REL * maxV * (1 + sMag);
  }
  const where = JSON.stringify(c);
  const bad = firstMismatch(refOut, out, (i) => tolRow[Math.floor(i / d)]!);
  assert.equal(bad, -1, `out[${bad}] ref ${refOut[bad]} wasm ${out[bad]} ${where}`);
  if (refProbs && probs) {
    const badP = firstMismatch(refProbs, probs, () => PROBS_ABS);
    assert.equal(badP, -1, `probs[${badP}] ref ${refProbs[badP]} wasm ${probs[badP]} ${where}`);
  }
}

const OTHERS = ["f32", "f16", "int8"] as const;

for (const q8 of [false, true])
  test(`wasm ggml attend (${q8 ? "q8 integer" : "f32"} queries): every ggml type as keys and values, mixed with f32/f16/int8, 1-9 rows`, {
    skip: wasmSkip,
  }, () => {
    let seed = q8 ? 2000 : 1000;
    for (const g of GGML_CODECS) {
      const pairs: [CodecOptions["type"], CodecOptions["type"]][] = [[g, g]];
      for (const o of OTHERS) pairs.push([g, o], [o, g]);
      for (const [k, v] of pairs)
        for (const nRows of [1, 2, 3, 4, 6, 9])
          runAttend(one, {
            k,
            v,
            d: nRows % 2 ? 64 : 128,
            nRows,
            nSlots: 37,
            seed: seed++,
            probs: seed % 3 === 0,
            q8,
          });
    }
    noFallbacks(one, "attend");
  });

test("wasm ggml attend: random shapes, slots and pairs equal ref", { skip: wasmSkip }, () => {
  const types = [...GGML_CODECS, ...OTHERS];
  fc.assert(
    fc.property(
      fc.constantFrom(...types),
      fc.constantFrom(...GGML_CODECS),
      fc.boolean(),
      fc.constantFrom(32, 64, 96, 160),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 0, max: 90 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.boolean(),
      fc.boolean(),
      (o, g, ggmlKeys, d, nRows, nSlots, seed, probs, q8) => {
        const [k, v] = ggmlKeys ? [g, o] : [o, g];
        runAttend(one, { k, v, d, nRows, nSlots, seed, probs, q8 });
      },
    ),
    { numRuns: 80 },
  );
  noFallbacks(one, "attend");
});

test("wasm ggml attend on 2 threads (slot split, row tiles) equals ref", { skip: wasmSkip }, () => {
  let seed = 3000;
  for (const g of ["q4_0", "q8_0", "q5_1"] as const)
    for (const q8 of [false, true]) {
      for (const nRows of [1, 3, 8])
        runAttend(two, { k: g, v: g, d: 64, nRows, nSlots: 1500, seed: seed++, probs: false, q8 });
      runAttend(two, { k: g, v: "f16", d: 64, nRows: 20, nSlots: 300, seed: seed++, probs: true, q8 });
    }
  noFallbacks(two, "attend");
});

// SmolLM2-135M's decode (9 query heads over 3 KV heads, head size 64): each call has a GQA
// group of 3 rows, the kernels' 3-row specialisation (no padding row), over slot counts that
// cover whole and partial 32-slot tiles of the weighted sum, every slot visible.
test("wasm ggml attend: 3-row GQA groups at d 64 (q8_0 / q4_0, decode positions) equal ref", {
  skip: wasmSkip,
}, () => {
  let seed = 4000;
  const pairs = [
    ["q8_0", "q8_0"],
    ["q4_0", "q4_0"],
    ["q8_0", "q4_0"],
    ["q4_0", "q8_0"],
    ["f16", "q8_0"],
    ["q4_0", "f16"],
  ] as const;
  for (const ex of [one, two])
    for (const [k, v] of pairs)
      for (const q8 of [false, true])
        for (const nSlots of [33, 100, 1000])
          runAttend(ex, {
            k,
            v,
            d: 64,
            nRows: 3,
            nSlots,
            seed: seed++,
            probs: seed % 2 === 0,
            q8,
            decode: true,
          });
  noFallbacks(one, "attend");
  noFallbacks(two, "attend");
});

// ---- q8 integer scores, straight from the kernel (attendPart over one slot: its max is the score) ----

/** Builds this engine runs (the relaxed one where it follows the standard: wasm-build.ts). */
async function loadBuilds(): Promise<Map<string, LoadedWasm>> {
  const m = new Map<string, LoadedWasm>();
  if (wasmSkip) return m;
  m.set("baseline", await loadWasmBuild("baseline", WASM_PATH));
  try {
    m.set("relaxed", await loadWasmBuild("relaxed", WASM_PATH));
  } catch {
    // no relaxed SIMD here (Node 20): wasm-other-build.test.ts reruns this file on Node 24
  }
  return m;
}
const builds = await loadBuilds();

interface ScoreCase {
  type: (typeof GGML_CODECS)[number];
  d: number;
  nRows: number;
  nSlots: number;
  keys: EncodedRows;
  codes: Int8Array; // (nRows, d) q8 codes
  qScales: Float32Array; // (nRows, d / 32)
  scale: number;
}

/** scores (nRows, nSlots) = the kernel's scale * qHat_r . k_j, one attendPart call per slot. */
function kernelScores(w: LoadedWasm, c: ScoreCase): Float32Array {
  const { d, nRows, nSlots } = c;
  const x = w.exports;
  const L = makeCodec(c.type).layout(d);
  let at = (x.heapBase() + 15) & ~15;
  const bufs: ArrayBufferView[] = [];
  const place = (v: ArrayBufferView): number => {
    const p = at;
    bufs.push(v);
    at = (at + v.byteLength + 15) & ~15;
    return p;
  };
  const kPay = place(c.keys.payload.subarray(0, nSlots * L.payloadBytes));
  const kSc = place(c.keys.scales.subarray(0, nSlots * L.scalesPerRow));
  const kZe = place(c.keys.zeros.subarray(0, nSlots * L.zerosPerRow));
  const vPay = place(new Float32Array(nSlots * d)); // f32 values (kind 0), zeros
  const q = place(new Float32Array(nRows * d));
  const qPos = place(new Int32Array(nRows).fill(1 << 20)); // every slot visible
  const slotPos = place(new Int32Array(nSlots));
  const qc = place(c.codes);
  const qs = place(c.qScales);
  const part = place(new Float32Array(x.attendPartFloats(nRows, d)));
  const scratch = place(new Uint8Array(x.attendScratchBytes(nSlots, d)));
  const need = at - w.memory.buffer.byteLength;
  if (need > 0) w.memory.grow(Math.ceil(need / 65536));
  const mem = new Uint8Array(w.memory.buffer);
  let p = (x.heapBase() + 15) & ~15;
  for (const v of bufs) {
    mem.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), p);
    p = (p + v.byteLength + 15) & ~15;
  }
  const kDesc = 6 | (GGML_CODECS.indexOf(c.type) << 4); // KIND_GGML | type index (wasm.ts WASM_CODECS)
  const scores = new Float32Array(nRows * nSlots);
  const ms = new Float32Array(w.memory.buffer, part + nRows * d * 4, 2 * nRows);
  for (let j = 0; j < nSlots; j++) {
    x.attendPart(
      kDesc,
      0,
      d,
      q,
      qPos,
      nRows,
      kPay,
      kSc,
      kZe,
      vPay,
      0,
      0,
      slotPos,
      j,
      j + 1,
      c.scale,
      part,
      scratch,
      qc,
      qs,
    );
    for (let r = 0; r < nRows; r++) scores[r * nSlots + j] = ms[2 * r]!;
  }
  return scores;
}

/**
 * Keys whose every product is exact in f32: random payload bytes (any byte is a valid code,
 * q8_0's -128 included, which its encoder never writes), d = ±2^-3 or ±2^-2, m = ±2^-3 or
 * ±2^-2, q8 scales 2^-7 or 2^-6, codes in [-127, 127] (some blocks all at ±127). Then every
 * partial sum of a score is a multiple of 2^-10 below 2^14 (d <= 128): exact in f32 and f64.
 */
function exactCase(
  type: ScoreCase["type"],
  d: number,
  nRows: number,
  nSlots: number,
  seed: number,
): ScoreCase {
  const r = rng(seed);
  const L = makeCodec(type).layout(d);
  const keys = allocRows(L, nSlots);
  for (let i = 0; i < keys.payload.length; i++) keys.payload[i] = Math.floor(r() * 256);
  const pow = (lo: number) => (r() < 0.5 ? -1 : 1) * 2 ** (lo + Math.floor(r() * 2));
  for (let i = 0; i < keys.scales.length; i++) keys.scales[i] = f32ToF16(pow(-3));
  for (let i = 0; i < keys.zeros.length; i++) keys.zeros[i] = f32ToF16(pow(-3));
  const codes = new Int8Array(nRows * d);
  for (let b = 0; b < codes.length; b += 32) {
    const kind = Math.floor(r() * 4);
    for (let i = b; i < b + 32; i++)
      codes[i] = kind === 0 ? 127 : kind === 1 ? -127 : Math.floor(r() * 255) - 127;
  }
  const qScales = Float32Array.from({ length: nRows * q8Blocks(d) }, () => 2 ** (-7 + Math.floor(r() * 2)));
  return { type, d, nRows, nSlots, keys, codes, qScales, scale: 0.125 };
}

/** f64 scale * sum_i (c_i s_b(i)) k_i over the keys the TS reference decodes. */
function exactScores(c: ScoreCase): Float64Array {
  const { d, nRows, nSlots } = c;
  const k = new Float32Array(nSlots * d);
  makeCodec(c.type).decode(c.keys, 0, nSlots, d, k);
  const out = new Float64Array(nRows * nSlots);
  for (let r = 0; r < nRows; r++)
    for (let j = 0; j < nSlots; j++) {
      let s = 0;
      for (let i = 0; i < d; i++)
        s += c.codes[r * d + i]! * c.qScales[r * (d / 32) + (i >> 5)]! * k[j * d + i]!;
      out[r * nSlots + j] = s * c.scale;
    }
  return out;
}

for (const [b, w] of builds)
  test(`wasm (${b}) ggml q8 scores equal the exact integer sums (every type, any payload byte, 1-9 rows)`, () => {
    let seed = 5000;
    for (const type of GGML_CODECS)
      for (const d of [32, 64, 128])
        for (const nRows of [1, 2, 3, 4, 5, 9]) {
          const c = exactCase(type, d, nRows, 23, seed++);
          const want = exactScores(c);
          const got = kernelScores(w, c);
          for (let i = 0; i < want.length; i++) {
            assert.equal(Math.fround(want[i]!), want[i], `test premise: score ${i} exact in f32 (${type})`);
            assert.equal(got[i], want[i], `${b} ${type} d ${d} rows ${nRows}: score ${i}`);
          }
        }
  });

test("wasm ggml q8 scores bit-identical in the baseline and relaxed builds (random caches and queries)", {
  skip:
    wasmSkip ||
    (builds.has("relaxed")
      ? false
      : "this engine does not run the relaxed build (wasm-other-build.test.ts reruns this file on Node 24)"),
}, () => {
  let seed = 6000;
  for (const type of GGML_CODECS)
    for (const d of [32, 64, 128])
      for (const nRows of [1, 2, 3, 4, 7]) {
        const r = rng(seed++);
        const nSlots = 19;
        const codec = makeCodec(type);
        const keys = allocRows(codec.layout(d), nSlots);
        codec.encode(randn(r, nSlots * d, 10 ** (Math.floor(r() * 7) - 3)), nSlots, d, keys, 0);
        const codes = new Int8Array(nRows * d);
        const qScales = new Float32Array(nRows * q8Blocks(d));
        assert.ok(quantizeQ8(randn(r, nRows * d, 3), nRows, d, codes, qScales, new Float32Array(nRows * d)));
        const c: ScoreCase = { type, d, nRows, nSlots, keys, codes, qScales, scale: 1 / Math.sqrt(d) };
        const base = new Uint32Array(kernelScores(builds.get("baseline")!, c).buffer);
        const relaxed = new Uint32Array(kernelScores(builds.get("relaxed")!, c).buffer);
        const bad = base.findIndex((v, i) => v !== relaxed[i]);
        assert.equal(
          bad,
          -1,
          `${type} d ${d} rows ${nRows}: score ${bad} bits ${base[bad]} vs ${relaxed[bad]}`,
        );
      }
});
