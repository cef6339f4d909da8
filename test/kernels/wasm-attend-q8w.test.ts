/**
 * query: q8w (src/quant/q8-weights.ts, assembly/attend-q8w.ts): the softmax weights over int8 /
 * int4 values rounded to q8_0 per block of 32 slots. The definition against a hand-computed
 * case; the documented Q8W bound against the f64 weighted sum with exact weights; and the wasm
 * kernel (int8 / int4 values, symmetric and asymmetric, groups 16-128 and whole head, every key
 * kind that pairs with it, 1-9 rows, partial last blocks, masks, probabilities, 2 threads with
 * the slot split at multiples of 32) against ref on this engine's builds. The tolerance is
 * the attention tests' f32 tolerance plus, for each weight that lies within float error of a
 * half-integer code (ref rounds f64 weights, wasm f32 ones), what that code moves the output by;
 * nothing else. Value codecs without the kernel (int8 group 8, int2) must run ref, counted.
 * Where this engine cannot run the relaxed build (Node 20), its half reruns this file in a
 * child on Node 24 ($KVLAB_RELAXED_NODE, as wasm-attend-q8.test.ts; empty skips it).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import type { AttendArgs } from "../../src/kernels/executor.ts";
import { refAttend } from "../../src/kernels/ref.ts";
import { createWasmExecutor, type WasmExecutor } from "../../src/kernels/wasm.ts";
import { relaxedLocation } from "../../src/kernels/wasm-build.ts";
import { WASM_PATH } from "../../src/kernels/wasm-loader.ts";
import { f16ToF32 } from "../../src/quant/half.ts";
import { q8Blocks, quantizeQ8 } from "../../src/quant/q8-query.ts";
import { q8wValues, q8wWeightedSum } from "../../src/quant/q8-weights.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions, type EncodedRows } from "../../src/quant/types.ts";
import { firstMismatch, randn, rng, wasmSkip } from "./wasm-helpers.ts";

// Same named tolerances as wasm-attend-q8.test.ts (f32 lanes vs the reference's f64 sums).
const ATTEND_REL = 2e-5;
const ATTEND_ABS = 1e-6;
const PROBS_ABS = 2e-5;

test("q8wWeightedSum: hand-computed block (int8 symmetric, one group of 32, 3 slots)", () => {
  const codec = makeCodec({ type: "int8", symmetric: true, group: 32 });
  const L = q8wValues(codec, 32)!;
  assert.deepEqual([L.bits, L.symmetric, L.group], [8, true, 32]);
  // scales (f16-exact): 1, 0.5, 2; codes u = 128 + k so u - off = k
  const v: EncodedRows = allocRows(codec.layout(32), 3);
  v.scales.set([0x3c00, 0x3800, 0x4000]); // 1, 0.5, 2
  for (let i = 0; i < 32; i++) {
    v.payload[i] = 128 + 1; // slot 0: u - off = 1
    v.payload[32 + i] = 128 - 3; // slot 1: -3
    v.payload[64 + i] = 128 + (i === 0 ? 10 : 0); // slot 2: 10 at element 0, else 0
  }
  // p = (0.5, 0.3, 0.2): a = p s = (0.5, 0.15, 0.4); D = 0.5 / 127;
  // c = round(127 * (1, 0.3, 0.8)) = (127, 38 (38.1), 102 (101.6))
  const p = [0.5, 0.3, 0.2];
  const acc = new Float64Array(32);
  q8wWeightedSum(L, v, 32, p, 3, acc);
  const D = 0.5 / 127;
  assert.ok(Math.abs(acc[0]! - D * (127 * 1 + 38 * -3 + 102 * 10)) < 1e-12, `element 0: ${acc[0]}`);
  assert.ok(Math.abs(acc[1]! - D * (127 - 114)) < 1e-12, `element 1: ${acc[1]}`);
  // f32 weights would give 0.5 - 0.45 + 4 = 4.05 at element 0; the codes give 1033 / 254
  assert.ok(Math.abs(acc[0]! - 1033 / 254) < 1e-12);
  // not int8 / int4 token-axis: no q8w form
  assert.equal(q8wValues(makeCodec({ type: "f16" }), 32), null);
  assert.equal(q8wValues(makeCodec({ type: "int2" }), 32), null);
});

/** Slots' decoded values (f64 from codes, scales and zeros; independent of the codec's decode). */
function exactSum(codec: ReturnType<typeof makeCodec>, v: EncodedRows, d: number, p: number[]): Float64Array {
  const L = q8wValues(codec, d)!;
  const off = L.symmetric ? 1 << (L.bits - 1) : 0;
  const out = new Float64Array(d);
  for (let j = 0; j < p.length; j++)
    for (let i = 0; i < d; i++) {
      const g = Math.floor(i / L.group);
      const byte = v.payload[j * L.payloadBytes + (L.bits === 8 ? i : i >> 1)]!;
      const u = L.bits === 8 ? byte : (byte >> ((i & 1) * 4)) & 15;
      const s = f16ToF32(v.scales[j * L.nGroups + g]!);
      const m = L.symmetric ? 0 : f16ToF32(v.zeros[j * L.nGroups + g]!);
      out[i] += p[j]! * (s * (u - off) + m);
    }
  return out;
}

test("Q8W bound: |q8w - exact weights| <= sum_B D/2 sum |u - off|, and it is not vacuous", () => {
  let worst = 0;
  for (const opts of [
    { type: "int8" },
    { type: "int4" },
    { type: "int4", symmetric: true },
    { type: "int8", symmetric: true, group: 64 },
  ] as CodecOptions[])
    for (let seed = 1; seed <= 8; seed++) {
      const r = rng(seed);
      const d = 64;
      const n = 20 + Math.floor(r() * 80);
      const codec = makeCodec(opts);
      const v = allocRows(codec.layout(d), n);
      codec.encode(randn(r, n * d, 2), n, d, v, 0);
      // peaked softmax weights
      const logits = Array.from({ length: n }, () => r() * 6);
      const mx = Math.max(...logits);
      const e = logits.map((x) => Math.exp(x - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      const p = e.map((x) => x / sum);
      const L = q8wValues(codec, d)!;
      const acc = new Float64Array(d);
      const bound = new Float64Array(d);
      q8wWeightedSum(L, v, d, p, n, acc, 0, { bound });
      const exact = exactSum(codec, v, d, p);
      for (let i = 0; i < d; i++) {
        const err = Math.abs(acc[i]! - exact[i]!);
        assert.ok(
          err <= bound[i]! * (1 + 1e-9) + 1e-12,
          `${JSON.stringify(opts)} seed ${seed} i ${i}: ${err} > ${bound[i]}`,
        );
        if (bound[i]! > 0) worst = Math.max(worst, err / bound[i]!);
      }
    }
  assert.ok(worst > 0.05, `the bound is not vacuous: worst ratio ${worst}`);
});

const KEYS: CodecOptions[] = [
  { type: "int8" },
  { type: "int4", symmetric: true },
  { type: "f32" },
  { type: "f16" },
  { type: "int2" },
  { type: "turbo3" },
];
const VALUES: CodecOptions[] = [
  { type: "int8" },
  { type: "int8", symmetric: true },
  { type: "int4" },
  { type: "int4", symmetric: true },
  { type: "int8", group: 16 },
  { type: "int4", group: 64, symmetric: true },
  { type: "int8", group: "head", symmetric: false },
  { type: "int4", group: 128 },
];

interface Case {
  k: CodecOptions;
  v: CodecOptions;
  d: number;
  nRows: number;
  nSlots: number;
  seed: number;
  probs: boolean;
}

/** ref vs wasm on one q8w call. */
function runCase(ex: WasmExecutor, c: Case): void {
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
  const q = randn(r, nRows * d, 3);
  const slotPos = new Int32Array(nSlots).map(() => Math.floor(r() * 40));
  const qPos = new Int32Array(nRows).map(() => Math.floor(r() * 48) - 4);
  const codes = new Int8Array(nRows * d);
  const scales = new Float32Array(nRows * q8Blocks(d));
  const qHat = new Float32Array(nRows * d);
  assert.ok(quantizeQ8(q, nRows, d, codes, scales, qHat));
  const base: Omit<AttendArgs, "out" | "probs"> = {
    kCodec,
    vCodec,
    headDim: d,
    q: qHat,
    qPos,
    nRows,
    k,
    v,
    slotPos,
    nSlots,
    scale: 1 / Math.sqrt(d),
    q8: { codes, scales, weights: true },
  };
  const refOut = new Float32Array(nRows * d);
  const refProbs = new Float32Array(nRows * nSlots);
  refAttend({ ...base, out: refOut, probs: refProbs });
  const out = new Float32Array(nRows * d);
  const probs = c.probs ? new Float32Array(nRows * nSlots).fill(-1) : undefined;
  const before = ex.fallbacks.get("attend (q8w weights)") ?? 0;
  ex.attend({ ...base, out, probs });
  assert.equal(ex.fallbacks.get("attend (q8w weights)") ?? 0, before, "wasm ran its own q8w attend");
  // tolerance: f32 attention, plus each near-tie code's move
  const kd = new Float32Array(nSlots * d);
  kCodec.decode(k, 0, nSlots, d, kd);
  const vd = new Float32Array(nSlots * d);
  vCodec.decode(v, 0, nSlots, d, vd);
  let maxV = 0;
  for (const x of vd) maxV = Math.max(maxV, Math.abs(x));
  const L = q8wValues(vCodec, d)!;
  const tol = new Float64Array(nRows * d);
  for (let row = 0; row < nRows; row++) {
    let sMag = 0;
    for (let j = 0; j < nSlots; j++) {
      let m = 0;
      for (let i = 0; i < d; i++) m += Math.abs(qHat[row * d + i]! * kd[j * d + i]!);
      sMag = Math.max(sMag, m * base.scale);
    }
    const ties = new Float64Array(d);
    const p = Array.from(refProbs.subarray(row * nSlots, (row + 1) * nSlots));
    q8wWeightedSum(L, v, d, p, nSlots, new Float64Array(d), 0, {
      ties,
      tieEps: 127 * 4 * ATTEND_REL * (1 + sMag),
    });
    for (let i = 0; i < d; i++) tol[row * d + i] = ATTEND_ABS + ATTEND_REL * maxV * (1 + sMag) + ties[i]!;
  }
  const where = `${ex.wasmSource} ${JSON.stringify(c)}`;
  const bad = firstMismatch(refOut, out, (i) => tol[i]!);
  assert.equal(bad, -1, `out[${bad}] ref ${refOut[bad]} wasm ${out[bad]} (tol ${tol[bad]}) ${where}`);
  if (probs) {
    const badP = firstMismatch(refProbs, probs, () => PROBS_ABS);
    assert.equal(badP, -1, `probs[${badP}] ref ${refProbs[badP]} wasm ${probs[badP]} ${where}`);
  }
}

async function relaxedRuns(): Promise<boolean> {
  if (wasmSkip) return false;
  try {
    (await createWasmExecutor({ threads: 1, build: "relaxed" })).dispose();
    return true;
  } catch {
    return false;
  }
}
const inChild = process.env.KVLAB_Q8W_TEST_BUILD === "relaxed";
const relaxedHere = await relaxedRuns();
const builds: ("baseline" | "relaxed")[] = inChild
  ? ["relaxed"]
  : relaxedHere
    ? ["baseline", "relaxed"]
    : ["baseline"];
const execs = new Map<string, { one: WasmExecutor; two: WasmExecutor }>();
before(async () => {
  if (wasmSkip) return;
  for (const b of builds)
    execs.set(b, {
      one: await createWasmExecutor({ threads: 1, build: b }),
      two: await createWasmExecutor({ threads: 2, build: b }),
    });
});
after(() => {
  for (const { one, two } of execs.values()) {
    one.dispose();
    two.dispose();
  }
});

for (const b of builds) {
  test(`wasm (${b}) q8w: every key kind x int value codec, 1-9 rows, partial blocks`, {
    skip: wasmSkip,
  }, () => {
    const ex = execs.get(b)!.one;
    let seed = 300;
    for (const k of KEYS)
      for (const v of VALUES)
        for (const nRows of [1, 2, 3, 4, 6, 9])
          runCase(ex, { k, v, d: 128, nRows, nSlots: 45 + (seed % 40), seed: seed++, probs: seed % 3 === 0 });
    // head size 80: no q8 scores (d % 32 != 0), the weights flag alone
    for (const v of [VALUES[4]!, { type: "int4", group: "head" } as CodecOptions])
      for (const nRows of [1, 4, 5])
        runCase(ex, { k: KEYS[0]!, v, d: 80, nRows, nSlots: 70, seed: seed++, probs: true });
  });

  test(`wasm (${b}) q8w: random shapes (head sizes, slots) equal ref`, { skip: wasmSkip }, () => {
    const ex = execs.get(b)!.one;
    fc.assert(
      fc.property(
        fc.constantFrom(...KEYS),
        fc.constantFrom(...VALUES.filter((v) => v.group !== 128)),
        fc.constantFrom(64, 128, 192),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 130 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.boolean(),
        (k, v, d, nRows, nSlots, seed, probs) => runCase(ex, { k, v, d, nRows, nSlots, seed, probs }),
      ),
      { numRuns: 80 },
    );
  });

  test(`wasm (${b}) q8w on 2 threads (slot split at multiples of 32, row tiles) equals ref`, {
    skip: wasmSkip,
  }, () => {
    const ex = execs.get(b)!.two;
    let seed = 9;
    for (const v of [VALUES[0]!, VALUES[3]!])
      for (const nRows of [1, 4, 8])
        runCase(ex, { k: KEYS[0]!, v, d: 128, nRows, nSlots: 1500, seed: seed++, probs: false });
    for (const nRows of [20, 37])
      runCase(ex, {
        k: KEYS[1]!,
        v: VALUES[2]!,
        d: 128,
        nRows,
        nSlots: 300,
        seed: seed++,
        probs: nRows === 37,
      });
  });
}

test("wasm q8w: value codecs without the kernel run ref (counted); other value codecs ignore the flag", {
  skip: wasmSkip,
}, async () => {
  const ex = await createWasmExecutor({ threads: 1 });
  try {
    const d = 64;
    const nSlots = 40;
    const r = rng(77);
    const run = (vOpts: CodecOptions) => {
      const vCodec = makeCodec(vOpts);
      const kCodec = makeCodec({ type: "int8" });
      const k = allocRows(kCodec.layout(d), nSlots);
      kCodec.encode(randn(r, nSlots * d), nSlots, d, k, 0);
      const v = allocRows(vCodec.layout(d), nSlots);
      vCodec.encode(randn(r, nSlots * d), nSlots, d, v, 0);
      const codes = new Int8Array(d);
      const scales = new Float32Array(2);
      const q = randn(r, d);
      quantizeQ8(q, 1, d, codes, scales, q);
      const a = {
        kCodec,
        vCodec,
        headDim: d,
        q,
        qPos: Int32Array.of(100),
        nRows: 1,
        k,
        v,
        slotPos: new Int32Array(nSlots).map((_, j) => j),
        nSlots,
        scale: 0.125,
        q8: { codes, scales, weights: true },
      };
      const out = new Float32Array(d);
      const ref = new Float32Array(d);
      ex.attend({ ...a, out });
      refAttend({ ...a, out: ref });
      return { out, ref };
    };
    // int8 in groups of 8: q8w applies (ref defines it) but the kernel needs whole 16s: ref, counted
    const before = ex.fallbacks.get("attend (q8w weights)") ?? 0;
    const g8 = run({ type: "int8", group: 8 });
    assert.equal(ex.fallbacks.get("attend (q8w weights)"), before + 1);
    assert.deepEqual(g8.out, g8.ref);
    // int2 / f16 values: no q8w form, the kernel attends with f32 weights like ref
    for (const vOpts of [{ type: "int2" }, { type: "f16" }] as CodecOptions[]) {
      const { out, ref } = run(vOpts);
      const bad = firstMismatch(ref, out, () => 1e-4);
      assert.equal(bad, -1, `${vOpts.type}: out[${bad}] ${out[bad]} vs ref ${ref[bad]}`);
    }
    assert.equal(ex.fallbacks.get("attend (q8w weights)"), before + 1);
  } finally {
    ex.dispose();
  }
});

const childNode = process.env.KVLAB_RELAXED_NODE ?? "npx -y -p node@24 node";
test("relaxed build where this engine cannot run it: this file's relaxed half on Node 24", {
  skip: wasmSkip
    ? wasmSkip
    : inChild || relaxedHere
      ? "the relaxed build ran in this process"
      : !existsSync(String(relaxedLocation(WASM_PATH)))
        ? "build/kvlab-relaxed.wasm missing: run npm run asbuild"
        : childNode === ""
          ? "KVLAB_RELAXED_NODE is empty"
          : false,
  timeout: 900_000,
}, () => {
  const file = fileURLToPath(import.meta.url);
  // NODE_TEST_CONTEXT would make the child report to this runner instead of printing TAP
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const [cmd, ...pre] = childNode.split(" ");
  const res = spawnSync(cmd!, [...pre, "--import", "tsx", "--test", "--test-reporter=tap", file], {
    env: { ...env, KVLAB_Q8W_TEST_BUILD: "relaxed" },
    encoding: "utf8",
    timeout: 600_000,
  });
  assert.equal(res.status, 0, `child failed:\n${res.stdout}\n${res.stderr}`);
  assert.match(res.stdout, /# pass [1-9]/);
  assert.match(res.stdout, /# fail 0/);
});
