/**
 * The wasm executor's channel-axis key ops (assembly/channel.ts via src/kernels/wasm-channel.ts)
 * against the TypeScript specification (src/quant/channel.ts): codes, scales, zeros and stats bit
 * for bit; decoded keys bit for bit (through ChannelKeys, with eviction moving slots between
 * groups); and attention through a kivi2 / kivi4 cache equal to the ref executor's within the
 * attention tolerances of wasm-attend.test.ts, with no fallback counted.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ChannelKeys } from "../../src/cache/channel-keys.ts";
import { createCache } from "../../src/cache/create.ts";
import type { StandardKVCache } from "../../src/cache/kv-cache.ts";
import type { CacheSpecInput } from "../../src/cache/types.ts";
import { createRefExecutor, refAttend } from "../../src/kernels/ref.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import {
  type ChannelBits,
  channelCodeBytes,
  dequantizeChannelRow,
  quantizeChannelGroup,
} from "../../src/quant/channel.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows } from "../../src/quant/types.ts";
import { firstMismatch, randn, rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

let exec: WasmExecutor;
before(async () => {
  if (!wasmSkip) exec = await wasmExecutor();
});
after(() => exec?.dispose());

/** Random keys with outlier channels, and optionally the awkward values: NaN, ±Inf, ±0, subnormals, huge. */
function keys(seed: number, nTok: number, d: number, special: boolean): Float32Array {
  const r = rng(seed);
  const x = randn(r, nTok * d);
  for (let c = 0; c < d; c += 5) for (let t = 0; t < nTok; t++) x[t * d + c]! *= 40; // outlier channels
  if (special) {
    const odd = [Number.NaN, Infinity, -Infinity, 0, -0, 1e-42, -3e-39, 1e30, -7e4, 65504];
    for (let i = 0; i < nTok * d; i += 3) if (r() < 0.15) x[i] = odd[Math.floor(r() * odd.length)]!;
    // Channels of zeros only (the first zero's sign reaches the f16 scale or zero-point: +0 first
    // keeps min +0, -0 first keeps max -0), one channel all non-finite.
    for (let t = 0; t < nTok; t++) {
      x[t * d + 1] = t % 2 ? -0 : 0;
      x[t * d + 2] = t % 3 ? Number.NaN : Infinity;
      x[t * d + 3] = t % 2 ? 0 : -0;
    }
  }
  return x;
}

/** 0..n-1 in a seeded random order (Fisher-Yates). */
function shuffled(n: number, seed: number): number[] {
  const r = rng(seed ^ 0x5eed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const CASES: { bits: ChannelBits; symmetric: boolean; d: number; nTok: number; special: boolean }[] = [];
for (const bits of [2, 4, 8] as ChannelBits[])
  for (const symmetric of [false, true])
    for (const [d, nTok] of [
      [64, 32],
      [128, 32],
      [10, 7],
      [7, 5],
    ] as const)
      for (const special of [false, true]) CASES.push({ bits, symmetric, d, nTok, special });

test("channelQuantize: codes, scales, zeros and stats equal the reference bit for bit", {
  skip: wasmSkip,
}, () => {
  let seed = 1;
  for (const c of CASES) {
    const where = JSON.stringify({ ...c, seed });
    const opts = { bits: c.bits, symmetric: c.symmetric };
    const src = keys(seed++, c.nTok, c.d, c.special);
    const cb = channelCodeBytes(c.bits, c.d);
    const nSlots = c.nTok + 3;
    // Token rows at shuffled slots; codes prefilled with junk (padding bits must survive as in the reference).
    const order = shuffled(nSlots, seed);
    const offs = new Int32Array(c.nTok);
    for (let t = 0; t < c.nTok; t++) offs[t] = order[t]! * cb;
    const junk = Uint8Array.from({ length: nSlots * cb }, (_, i) => (i * 37 + 11) & 255);
    const sOff = c.d; // group 1 of a 3-group table
    const refCodes = junk.slice();
    const refS = new Uint16Array(3 * c.d).fill(0x1234);
    const refZ = new Uint16Array(3 * c.d).fill(0x4321);
    const refStats = quantizeChannelGroup(src, c.nTok, c.d, opts, refCodes, offs, refS, refZ, sOff);
    // In the executor's memory (as the cache does) and as plain arrays (copied in and out).
    for (const inArena of [true, false]) {
      const codes = inArena ? exec.allocU8(junk.length) : new Uint8Array(junk.length);
      codes.set(junk);
      const s = inArena ? exec.allocU16(refS.length) : new Uint16Array(refS.length);
      const z = inArena ? exec.allocU16(refZ.length) : new Uint16Array(refZ.length);
      s.fill(0x1234);
      z.fill(0x4321);
      const st = exec.channelQuantize!(src, c.nTok, c.d, opts, codes, offs, s, z, sOff);
      assert.deepEqual(st, refStats, `stats ${where}`);
      assert.deepEqual(Array.from(s), Array.from(refS), `scales ${where}`);
      assert.deepEqual(Array.from(z), Array.from(refZ), `zeros ${where}`);
      assert.deepEqual(Array.from(codes), Array.from(refCodes), `codes ${where}`);
      for (const a of [codes, s, z]) exec.free(a);
    }
  }
});

test("channelDecode: quantized and residual slots equal dequantizeChannelRow bit for bit", {
  skip: wasmSkip,
}, () => {
  let seed = 100;
  for (const c of CASES) {
    const where = JSON.stringify({ ...c, seed });
    const opts = { bits: c.bits, symmetric: c.symmetric };
    const d = c.d;
    const cb = channelCodeBytes(c.bits, d);
    const nGroups = 3;
    const nSlots = nGroups * c.nTok + 4;
    const rows = {
      codes: exec.allocU8(nSlots * cb),
      codeBytes: cb,
      groupOf: exec.allocI32(nSlots),
      resid: exec.allocF32(nSlots * d),
      scales: exec.allocU16(nGroups * d),
      zeros: exec.allocU16(nGroups * d),
    };
    // Groups' tokens interleaved over slots (as after evictions), 4 residual slots among them.
    const order = shuffled(nSlots, seed);
    for (let g = 0; g < nGroups; g++) {
      const offs = new Int32Array(c.nTok);
      for (let t = 0; t < c.nTok; t++) {
        const slot = order[g * c.nTok + t]!;
        offs[t] = slot * cb;
        rows.groupOf[slot] = g;
      }
      quantizeChannelGroup(
        keys(seed++, c.nTok, d, c.special),
        c.nTok,
        d,
        opts,
        rows.codes,
        offs,
        rows.scales,
        rows.zeros,
        g * d,
      );
    }
    rows.resid.set(keys(seed++, nSlots, d, c.special));
    for (let i = nGroups * c.nTok; i < nSlots; i++) rows.groupOf[order[i]!] = -1;

    const ref = new Float32Array(nSlots * d);
    for (let j = 0; j < nSlots; j++) {
      const g = rows.groupOf[j]!;
      if (g < 0) ref.set(rows.resid.subarray(j * d, (j + 1) * d), j * d);
      else dequantizeChannelRow(rows.codes, j * cb, rows.scales, rows.zeros, g * d, d, opts, ref, j * d);
    }
    for (const [first, n] of [
      [0, nSlots],
      [3, nSlots - 5],
    ] as const) {
      const out = new Float32Array(n * d).fill(-9);
      exec.channelDecode!(rows, d, opts, first, n, out);
      const want = ref.subarray(first * d, (first + n) * d);
      assert.deepEqual(
        new Uint32Array(out.buffer),
        new Uint32Array(want.slice().buffer),
        `${where} [${first}, +${n})`,
      );
    }
    for (const a of Object.values(rows)) if (typeof a !== "number") exec.free(a);
  }
});

test("ChannelKeys on wasm: flush, eviction moves and decode equal the ref executor's bit for bit", {
  skip: wasmSkip,
}, () => {
  const ref = createRefExecutor();
  const d = 24;
  const settings = { bits: 2 as const, symmetric: false, group: 8, residual: 16 };
  const a = new ChannelKeys(ref, d, settings, 64);
  const b = new ChannelKeys(exec, d, settings, 64);
  const positions = new Int32Array(64);
  let n = 0;
  const r = rng(7);
  for (let step = 0; step < 12; step++) {
    const nNew = 1 + Math.floor(r() * 6);
    const k = keys(200 + step, nNew, d, step % 4 === 3);
    for (let i = 0; i < nNew; i++) positions[n + i] = step * 10 + i;
    a.write(k, n, nNew);
    b.write(k, n, nNew);
    n += nNew;
    const sa = a.flush(positions, n);
    const sb = b.flush(positions, n);
    assert.deepEqual(sb, sa, `flush stats at step ${step}`);
    // Evict a random slot by swap-remove, as the cache does.
    if (step % 3 === 2) {
      const slot = Math.floor(r() * n);
      a.release(slot);
      b.release(slot);
      if (slot !== n - 1) {
        a.move(n - 1, slot);
        b.move(n - 1, slot);
        positions[slot] = positions[n - 1]!;
      }
      n--;
    }
    const da = new Float32Array(n * d);
    const db = new Float32Array(n * d);
    a.decode(0, n, da);
    b.decode(0, n, db);
    assert.deepEqual(new Uint32Array(db.buffer), new Uint32Array(da.buffer), `decode at step ${step}`);
  }
  assert.ok(b.nGroups > 0, "some groups were quantized");
  assert.equal(exec.fallbacks.get("channelQuantize"), undefined);
  assert.equal(exec.fallbacks.get("channelDecode"), undefined);
  a.dispose();
  b.dispose();
});

// Tolerances of wasm-attend.test.ts: the reference attends in f64, wasm in f32 lanes.
const ATTEND_REL = 2e-5;
const ATTEND_ABS = 1e-6;

const PRESETS: CacheSpecInput[] = [
  "kivi2",
  "kivi4",
  // h2o reads the probabilities (channelAttend's probs) and evicts: slots move between groups.
  { preset: "kivi2", policy: { type: "h2o", budget: 150 } },
];

for (const preset of PRESETS) {
  test(`${JSON.stringify(preset)} cache on wasm: attention equals the ref executor's, no fallback counted`, {
    skip: wasmSkip,
  }, async () => {
    const shape = { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 32, maxTokens: 512 };
    const d = shape.headDim;
    const ref = createRefExecutor();
    const cr = await createCache(preset, shape, { executor: ref });
    const cw = await createCache(preset, shape, { executor: exec });
    const before = new Map(exec.fallbacks);
    const r = rng(31);
    let t = 0;
    let maxK = 0;
    let maxV = 0;
    for (const nNew of [1, 100, 37, 64, 1, 1, 90]) {
      const k = randn(r, shape.nKvHeads * nNew * d);
      const v = randn(r, k.length);
      for (const x of k) maxK = Math.max(maxK, Math.abs(x));
      for (const x of v) maxV = Math.max(maxV, Math.abs(x));
      const pos = Int32Array.from({ length: nNew }, (_, i) => t + i);
      cr.append(0, k, v, pos);
      cw.append(0, k, v, pos);
      t += nNew;
      const q = randn(r, shape.nHeads * d);
      const qPos = Int32Array.of(t - 1);
      const outR = new Float32Array(q.length);
      const outW = new Float32Array(q.length);
      cr.attend(0, q, qPos, outR);
      cw.attend(0, q, qPos, outW);
      // Score magnitude bound: decoded keys stay within the channel's range plus a step.
      const tolRow = (row: number) => {
        let m = 0;
        for (let i = 0; i < d; i++) m += Math.abs(q[row * d + i]!) * 2 * maxK;
        return ATTEND_ABS + ATTEND_REL * maxV * (1 + m / Math.sqrt(d));
      };
      const bad = firstMismatch(outR, outW, (i) => tolRow(Math.floor(i / d)));
      assert.equal(bad, -1, `after ${t} tokens: out[${bad}] ref ${outR[bad]} wasm ${outW[bad]}`);
      for (let h = 0; h < shape.nKvHeads; h++)
        assert.deepEqual(
          (cw as StandardKVCache).retainedPositions(0, h),
          (cr as StandardKVCache).retainedPositions(0, h),
          `retained positions after ${t} tokens`,
        );
    }
    for (const op of ["channelQuantize", "channelDecode", "channelAttend", "attend", "decodeRows"])
      assert.equal(exec.fallbacks.get(op) ?? 0, before.get(op) ?? 0, `fallback ${op}`);
    assert.equal(ref.fallbacks.size, 0, "the ref executor is the reference: it falls back to nothing");
    cr.dispose();
    cw.dispose();
  });
}

test("channelAttend: values as stored (int rows + f32 window) equal values passed decoded, and ref attention", {
  skip: wasmSkip,
}, () => {
  const d = 40; // not a multiple of 16 or 8: SIMD bodies and scalar tails both run
  const nRows = 5; // a block of 4 query rows and a block of 1
  const nSlots = 150; // not a multiple of the 32-slot value block
  const opts = { bits: 2 as const, symmetric: false };
  const settings = { ...opts, group: 16, residual: 32 };
  const r = rng(77);
  const ck = new ChannelKeys(exec, d, settings, nSlots);
  const k = keys(300, nSlots, d, false);
  const positions = Int32Array.from({ length: nSlots }, (_, i) => (i * 7) % nSlots); // not in slot order
  ck.write(k, 0, nSlots);
  ck.flush(positions, nSlots);
  const vCodec = makeCodec({ type: "int4", group: 16, symmetric: false });
  const vRows = allocRows(vCodec.layout(d), nSlots);
  const vIn = randn(r, nSlots * d);
  vCodec.encode(vIn, nSlots, d, vRows, 0);
  const inResid = Uint8Array.from({ length: nSlots }, (_, j) => (j % 9 < 3 ? 1 : 0));
  const vDec = new Float32Array(nSlots * d);
  vCodec.decode(vRows, 0, nSlots, d, vDec);
  for (let j = 0; j < nSlots; j++) if (inResid[j]) vDec.set(vIn.subarray(j * d, (j + 1) * d), j * d);
  const q = randn(r, nRows * d);
  const qPos = Int32Array.from({ length: nRows }, (_, i) => 40 + 25 * i); // early rows see few slots
  qPos[0] = -1; // a row that sees nothing outputs zeros
  const base = { keys: ck.rows(), opts, headDim: d, q, qPos, nRows, slotPos: positions, nSlots, scale: 0.3 };
  const outA = new Float32Array(nRows * d);
  const probsA = new Float32Array(nRows * nSlots);
  const values = { codec: vCodec, rows: vRows, inResid, resid: vIn };
  assert.equal(exec.channelAttend!({ ...base, out: outA, probs: probsA, values }), true);
  const outB = new Float32Array(nRows * d);
  const probsB = new Float32Array(nRows * nSlots);
  assert.equal(exec.channelAttend!({ ...base, out: outB, probs: probsB, v: vDec }), true);
  assert.deepEqual(Array.from(outA), Array.from(outB), "values as stored decode to the same f32 rows");
  assert.deepEqual(Array.from(probsA), Array.from(probsB));
  // A value codec the kernel does not read: nothing done, the caller passes v.
  const f16 = makeCodec({ type: "f16" });
  const f16Rows = allocRows(f16.layout(d), nSlots);
  assert.equal(
    exec.channelAttend!({ ...base, out: outB, values: { ...values, codec: f16, rows: f16Rows } }),
    false,
  );

  // Against the reference attention over the decoded keys (f32 codec rows).
  const kDec = new Float32Array(nSlots * d);
  ck.decode(0, nSlots, kDec);
  const f32 = makeCodec({ type: "f32" });
  const refOut = new Float32Array(nRows * d);
  const refProbs = new Float32Array(nRows * nSlots);
  const rows = (x: Float32Array) => ({
    payload: new Uint8Array(x.buffer),
    scales: new Uint16Array(0),
    zeros: new Uint16Array(0),
  });
  refAttend({
    kCodec: f32,
    vCodec: f32,
    headDim: d,
    q,
    qPos,
    nRows,
    k: rows(kDec),
    v: rows(vDec),
    slotPos: positions,
    nSlots,
    scale: 0.3,
    out: refOut,
    probs: refProbs,
  });
  let maxV = 0;
  for (const x of vDec) maxV = Math.max(maxV, Math.abs(x));
  const tolRow = new Float64Array(nRows);
  for (let row = 0; row < nRows; row++) {
    let sMag = 0;
    for (let j = 0; j < nSlots; j++) {
      let m = 0;
      for (let i = 0; i < d; i++) m += Math.abs(q[row * d + i]! * kDec[j * d + i]!);
      sMag = Math.max(sMag, m * 0.3);
    }
    tolRow[row] = ATTEND_ABS + ATTEND_REL * maxV * (1 + sMag);
  }
  const bad = firstMismatch(refOut, outA, (i) => tolRow[Math.floor(i / d)]!);
  assert.equal(bad, -1, `out[${bad}] ref ${refOut[bad]} wasm ${outA[bad]}`);
  assert.equal(
    firstMismatch(refProbs, probsA, () => 1e-4),
    -1,
    "probs",
  );
  assert.ok(
    outA.subarray(0, d).every((x) => x === 0),
    "a row with no visible slot outputs zeros",
  );
  ck.dispose();
});

// The int2 path (assembly/channel.ts, headDim a multiple of 64): keys and values read as packed
// codes in lane order, against refAttend over the decoded keys and values.
const INT2_CASES: {
  d: number;
  nRows: number;
  nSlots: number;
  kSym: boolean;
  vGroup: number;
  vSym: boolean;
  resid: number; // keys left in the f32 residual (written after the flush)
  causal: boolean;
}[] = [
  { d: 128, nRows: 4, nSlots: 300, kSym: false, vGroup: 32, vSym: false, resid: 77, causal: false },
  { d: 64, nRows: 2, nSlots: 257, kSym: false, vGroup: 32, vSym: false, resid: 1, causal: true },
  { d: 64, nRows: 1, nSlots: 33, kSym: true, vGroup: 16, vSym: true, resid: 0, causal: false },
  { d: 128, nRows: 7, nSlots: 161, kSym: false, vGroup: 64, vSym: false, resid: 31, causal: true },
  { d: 192, nRows: 5, nSlots: 95, kSym: true, vGroup: 128, vSym: false, resid: 3, causal: true },
  { d: 64, nRows: 3, nSlots: 1, kSym: false, vGroup: 32, vSym: true, resid: 1, causal: false },
];

for (const c of INT2_CASES)
  test(`channelAttend int2 path ${JSON.stringify(c)}: equals refAttend over decoded keys and values, probs too`, {
    skip: wasmSkip,
  }, () => {
    const { d, nRows, nSlots } = c;
    const opts = { bits: 2 as const, symmetric: c.kSym };
    const r = rng(d * 1000 + nRows * 10 + nSlots);
    const ck = new ChannelKeys(exec, d, { ...opts, group: 32, residual: 32 }, nSlots);
    const k = keys(d + nSlots, nSlots, d, false);
    const positions = Int32Array.from(shuffled(nSlots, nSlots + d)); // slots not in position order
    const nQuant = nSlots - c.resid;
    ck.write(k, 0, nQuant);
    ck.flush(positions, nQuant);
    ck.write(k.subarray(nQuant * d), nQuant, c.resid);
    const vCodec = makeCodec({ type: "int2", group: c.vGroup, symmetric: c.vSym });
    const vRows = allocRows(vCodec.layout(d), nSlots);
    const vIn = randn(r, nSlots * d, 3);
    vCodec.encode(vIn, nSlots, d, vRows, 0);
    const inResid = Uint8Array.from({ length: nSlots }, (_, j) => (j % 7 === 3 || j >= nSlots - 5 ? 1 : 0));
    const vDec = new Float32Array(nSlots * d);
    vCodec.decode(vRows, 0, nSlots, d, vDec);
    for (let j = 0; j < nSlots; j++) if (inResid[j]) vDec.set(vIn.subarray(j * d, (j + 1) * d), j * d);
    const q = randn(r, nRows * d);
    // Causal rows see a growing prefix of positions; row 0 sees nothing when there are several.
    const qPos = Int32Array.from({ length: nRows }, (_, i) =>
      c.causal ? Math.floor(((i + (nRows > 1 ? 0 : 1)) * nSlots) / nRows) - 1 : nSlots,
    );
    const scale = 1 / Math.sqrt(d);
    const out = new Float32Array(nRows * d).fill(Number.NaN);
    const probs = new Float32Array(nRows * nSlots).fill(Number.NaN);
    const values = { codec: vCodec, rows: vRows, inResid, resid: vIn };
    const base = { keys: ck.rows(), opts, headDim: d, q, qPos, nRows, slotPos: positions, nSlots, scale };
    assert.equal(exec.channelAttend!({ ...base, out, probs, values }), true);

    const kDec = new Float32Array(nSlots * d);
    ck.decode(0, nSlots, kDec);
    const f32 = makeCodec({ type: "f32" });
    const rows = (x: Float32Array) => ({
      payload: new Uint8Array(x.buffer),
      scales: new Uint16Array(0),
      zeros: new Uint16Array(0),
    });
    const refOut = new Float32Array(nRows * d);
    const refProbs = new Float32Array(nRows * nSlots);
    refAttend({
      kCodec: f32,
      vCodec: f32,
      headDim: d,
      q,
      qPos,
      nRows,
      k: rows(kDec),
      v: rows(vDec),
      slotPos: positions,
      nSlots,
      scale,
      out: refOut,
      probs: refProbs,
    });
    let maxV = 0;
    for (const x of vDec) maxV = Math.max(maxV, Math.abs(x));
    const tolRow = new Float64Array(nRows);
    for (let row = 0; row < nRows; row++) {
      let sMag = 0;
      for (let j = 0; j < nSlots; j++) {
        let m = 0;
        for (let i = 0; i < d; i++) m += Math.abs(q[row * d + i]! * kDec[j * d + i]!);
        sMag = Math.max(sMag, m * scale);
      }
      tolRow[row] = ATTEND_ABS + ATTEND_REL * maxV * (1 + sMag);
    }
    const bad = firstMismatch(refOut, out, (i) => tolRow[Math.floor(i / d)]!);
    assert.equal(bad, -1, `out[${bad}] ref ${refOut[bad]} wasm ${out[bad]}`);
    const badP = firstMismatch(refProbs, probs, () => 1e-5);
    assert.equal(badP, -1, `probs[${badP}] ref ${refProbs[badP]} wasm ${probs[badP]}`);
    if (c.causal && nRows > 1)
      assert.ok(
        out.subarray(0, d).every((x) => x === 0),
        "a row with no visible slot outputs zeros",
      );
    ck.dispose();
  });

test("kivi2 caches with headDim 64 / 128 (int2 path) on wasm: attention equals the ref executor's", {
  skip: wasmSkip,
}, async () => {
  for (const [nHeads, nKvHeads, headDim, nQ] of [
    [8, 4, 64, 1],
    [16, 4, 128, 1],
    [7, 1, 64, 2],
    [2, 2, 128, 3],
  ] as const) {
    const shape = { nLayers: 1, nHeads, nKvHeads, headDim, maxTokens: 700 };
    const d = headDim;
    const cr = await createCache("kivi2", shape, { executor: createRefExecutor() });
    const cw = await createCache("kivi2", shape, { executor: exec });
    const r = rng(nHeads * 100 + headDim);
    let t = 0;
    let maxK = 0;
    let maxV = 0;
    for (const nNew of [1, 150, 33, 64, 1, 200, 5]) {
      const k = randn(r, nKvHeads * nNew * d);
      const v = randn(r, k.length);
      for (const x of k) maxK = Math.max(maxK, Math.abs(x));
      for (const x of v) maxV = Math.max(maxV, Math.abs(x));
      const pos = Int32Array.from({ length: nNew }, (_, i) => t + i);
      cr.append(0, k, v, pos);
      cw.append(0, k, v, pos);
      t += nNew;
      // nQ query tokens per head at the newest positions (causal among themselves).
      const q = randn(r, nHeads * nQ * d);
      const qPos = Int32Array.from({ length: nQ }, (_, i) => t - nQ + i);
      const outR = new Float32Array(q.length);
      const outW = new Float32Array(q.length);
      cr.attend(0, q, qPos, outR);
      cw.attend(0, q, qPos, outW);
      const tolRow = (row: number) => {
        let m = 0;
        for (let i = 0; i < d; i++) m += Math.abs(q[row * d + i]!) * 2 * maxK;
        return ATTEND_ABS + ATTEND_REL * maxV * (1 + m / Math.sqrt(d));
      };
      const bad = firstMismatch(outR, outW, (i) => tolRow(Math.floor(i / d)));
      assert.equal(
        bad,
        -1,
        `${nHeads}/${nKvHeads}/${d} after ${t} tokens: out[${bad}] ref ${outR[bad]} wasm ${outW[bad]}`,
      );
    }
    cr.dispose();
    cw.dispose();
  }
});
