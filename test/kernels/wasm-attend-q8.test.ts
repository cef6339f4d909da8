/**
 * query: q8 (src/quant/q8-query.ts, assembly/attend-q8.ts). The q8_0 rounding against hand
 * values and its definition; the documented per-score bound against f64 scores on the raw and
 * the rounded query; and the wasm integer scores (int8 / int4 keys, symmetric and asymmetric,
 * groups of 32-128, 1-9 rows, masks, probabilities, 2 threads) against ref attending over the
 * dequantized rows, on both wasm builds (baseline, relaxed SIMD). Where this engine cannot run
 * the relaxed build (Node 20: no relaxed SIMD, and with --experimental-wasm-relaxed-simd a dot
 * product that reads its signed operand unsigned), the relaxed half reruns this file in a child
 * on Node 24 ($KVLAB_RELAXED_NODE, default `npx -y -p node@24 node`; empty skips it).
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
import { q8Blocks, q8ScoreBound, quantizeQ8 } from "../../src/quant/q8-query.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type CodecOptions } from "../../src/quant/types.ts";
import { firstMismatch, randn, rng, wasmSkip } from "./wasm-helpers.ts";

// Same named tolerances as wasm-attend.test.ts (f32 lanes vs the reference's f64 sums).
const ATTEND_REL = 2e-5;
const ATTEND_ABS = 1e-6;
const PROBS_ABS = 2e-5;

test("quantizeQ8: hand-computed block (round half away from zero, scale amax / 127 in f32)", () => {
  const q = new Float32Array(32);
  q[0] = 1;
  q[1] = -0.5; // -63.5 -> -64
  q[2] = 0.25; // 31.75 -> 32
  q[3] = 1 / 254; // 0.5 -> 1
  q[4] = -1 / 254; // -0.5 -> -1
  const codes = new Int8Array(32);
  const scales = new Float32Array(1);
  const qHat = new Float32Array(32);
  assert.ok(quantizeQ8(q, 1, 32, codes, scales, qHat));
  assert.equal(scales[0], Math.fround(1 / 127));
  assert.deepEqual([...codes.subarray(0, 6)], [127, -64, 32, 1, -1, 0]);
  assert.equal(qHat[1], Math.fround(-64 * Math.fround(1 / 127)));
  // an all-zero block: scale 0, codes 0, qHat 0
  const z = new Float32Array(40);
  z[35] = 3;
  const c2 = new Int8Array(40);
  const s2 = new Float32Array(2);
  assert.ok(quantizeQ8(z, 1, 40, c2, s2, new Float32Array(40)));
  assert.equal(s2[0], 0);
  assert.equal(c2[35], 127);
  assert.equal(s2[1], Math.fround(3 / 127));
  // a non-finite element: no q8 form, qHat = q
  const bad = new Float32Array(32).fill(1);
  bad[7] = Number.NaN;
  const h = new Float32Array(32);
  assert.equal(quantizeQ8(bad, 1, 32, new Int8Array(32), new Float32Array(1), h), false);
  assert.ok(Number.isNaN(h[7]!));
  assert.equal(h[0], 1);
});

test("quantizeQ8: |qHat - q| <= scale / 2 per block, codes in [-127, 127], each nonzero block reaches 127", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (d, seed) => {
      const r = rng(seed);
      const q = randn(r, 3 * d, 10 ** Math.floor(r() * 6 - 3));
      const nB = q8Blocks(d);
      const codes = new Int8Array(3 * d);
      const scales = new Float32Array(3 * nB);
      const qHat = new Float32Array(3 * d);
      quantizeQ8(q, 3, d, codes, scales, qHat);
      for (let row = 0; row < 3; row++)
        for (let b = 0; b < nB; b++) {
          let top = 0;
          for (let i = b * 32; i < Math.min(d, b * 32 + 32); i++) {
            const at = row * d + i;
            const s = scales[row * nB + b]!;
            assert.ok(Math.abs(codes[at]!) <= 127);
            assert.ok(
              Math.abs(qHat[at]! - q[at]!) <= s / 2 + 2 ** -23 * Math.abs(q[at]!),
              `row ${row} i ${i}`,
            );
            top = Math.max(top, Math.abs(codes[at]!));
          }
          if (scales[row * nB + b]! > 0) assert.equal(top, 127);
        }
    }),
    { numRuns: 60 },
  );
});

test("q8ScoreBound holds for f64 scores of q and of qHat over decoded int4 keys", () => {
  const d = 128;
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const q = randn(r, d, 1 + seed);
    for (let i = 0; i < 4; i++) q[Math.floor(r() * d)]! *= 8; // outlier channels
    const kx = randn(r, 16 * d);
    const codec = makeCodec({ type: "int4" });
    const rows = allocRows(codec.layout(d), 16);
    codec.encode(kx, 16, d, rows, 0);
    const kd = new Float32Array(16 * d);
    codec.decode(rows, 0, 16, d, kd);
    const codes = new Int8Array(d);
    const scales = new Float32Array(q8Blocks(d));
    const qHat = new Float32Array(d);
    quantizeQ8(q, 1, d, codes, scales, qHat);
    const scale = 1 / Math.sqrt(d);
    let worst = 0;
    for (let j = 0; j < 16; j++) {
      let a = 0;
      let b = 0;
      for (let i = 0; i < d; i++) {
        a += q[i]! * kd[j * d + i]!;
        b += qHat[i]! * kd[j * d + i]!;
      }
      const k = kd.subarray(j * d, (j + 1) * d);
      const bound = q8ScoreBound(scales, k, d, scale);
      const err = Math.abs(a - b) * scale;
      assert.ok(err <= bound, `seed ${seed} slot ${j}: |dscore| ${err} > bound ${bound}`);
      worst = Math.max(worst, err / bound);
    }
    assert.ok(worst > 0.005, `the bound is not vacuous: worst ratio ${worst}`);
  }
});

const KEYS: CodecOptions[] = [
  { type: "int8" },
  { type: "int8", symmetric: false },
  { type: "int8", group: 64 },
  { type: "int4" },
  { type: "int4", symmetric: true },
  { type: "int4", group: 128, symmetric: true },
  { type: "int4", group: "head" },
  { type: "int8", group: "head", symmetric: false },
];
const VALUES: CodecOptions[] = [
  { type: "f32" },
  { type: "int8" },
  { type: "int4" },
  { type: "f16" },
  { type: "int2" },
];

/** ref over qHat vs wasm given qHat and its codes: the integer scores equal q̂ . k up to f32 rounding. */
function runCase(
  ex: WasmExecutor,
  c: {
    k: CodecOptions;
    v: CodecOptions;
    d: number;
    nRows: number;
    nSlots: number;
    seed: number;
    probs: boolean;
  },
): void {
  const r = rng(c.seed);
  const { d, nRows, nSlots } = c;
  const kCodec = makeCodec(c.k);
  const vCodec = makeCodec(c.v);
  const kx = randn(r, nSlots * d);
  const vx = randn(r, nSlots * d, 2);
  const q = randn(r, nRows * d, 3);
  const slotPos = new Int32Array(nSlots).map(() => Math.floor(r() * 40));
  const qPos = new Int32Array(nRows).map(() => Math.floor(r() * 48) - 4);
  const enc = (codec: typeof kCodec, x: Float32Array) => {
    const rows = allocRows(codec.layout(d), nSlots);
    codec.encode(x, nSlots, d, rows, 0);
    return rows;
  };
  const k = enc(kCodec, kx);
  const v = enc(vCodec, vx);
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
  };
  const refOut = new Float32Array(nRows * d);
  const refProbs = c.probs ? new Float32Array(nRows * nSlots) : undefined;
  refAttend({ ...base, out: refOut, probs: refProbs });
  const out = new Float32Array(nRows * d);
  const probs = c.probs ? new Float32Array(nRows * nSlots).fill(-1) : undefined;
  const before = ex.fallbacks.get("attend") ?? 0;
  ex.attend({ ...base, q8: { codes, scales }, out, probs });
  assert.equal(ex.fallbacks.get("attend") ?? 0, before, "wasm ran its own attend");
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
      for (let i = 0; i < d; i++) m += Math.abs(qHat[row * d + i]! * kd[j * d + i]!);
      sMag = Math.max(sMag, m * base.scale);
    }
    tolRow[row] = ATTEND_ABS + ATTEND_REL * maxV * (1 + sMag);
  }
  const where = `${ex.wasmSource} ${JSON.stringify(c)}`;
  const bad = firstMismatch(refOut, out, (i) => tolRow[Math.floor(i / d)]!);
  assert.equal(bad, -1, `out[${bad}] ref ${refOut[bad]} wasm ${out[bad]} ${where}`);
  if (refProbs && probs) {
    const badP = firstMismatch(refProbs, probs, () => PROBS_ABS);
    assert.equal(badP, -1, `probs[${badP}] ref ${refProbs[badP]} wasm ${probs[badP]} ${where}`);
  }
}

const inChild = process.env.KVLAB_Q8_TEST_BUILD === "relaxed";
async function relaxedRuns(): Promise<boolean> {
  if (wasmSkip) return false;
  try {
    (await createWasmExecutor({ threads: 1, build: "relaxed" })).dispose();
    return true;
  } catch {
    return false;
  }
}
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
  test(`wasm (${b}) q8 scores: every key codec x value codec, 1-9 rows`, { skip: wasmSkip }, () => {
    const ex = execs.get(b)!.one;
    if (b === "relaxed") assert.match(ex.wasmSource, /kvlab-relaxed\.wasm$/);
    else assert.match(ex.wasmSource, /kvlab\.wasm$/);
    let seed = 100;
    for (const k of KEYS)
      for (const v of VALUES)
        for (const d of [128, 64])
          for (const nRows of [1, 2, 3, 4, 6, 9])
            runCase(ex, { k, v, d, nRows, nSlots: 37, seed: seed++, probs: seed % 3 === 0 });
  });

  test(`wasm (${b}) q8 scores: head sizes 32-256 (key rows read in chunks of 4, 2 and 1 blocks)`, {
    skip: wasmSkip,
  }, () => {
    const ex = execs.get(b)!.one;
    let seed = 900;
    for (const k of KEYS)
      for (const d of [32, 96, 160, 192, 224, 256])
        for (const nRows of [1, 2, 4])
          runCase(ex, { k, v: { type: "f32" }, d, nRows, nSlots: 11, seed: seed++, probs: true });
  });

  test(`wasm (${b}) q8 scores: random shapes (head sizes, slots) equal ref`, { skip: wasmSkip }, () => {
    const ex = execs.get(b)!.one;
    fc.assert(
      fc.property(
        fc.constantFrom(...KEYS),
        fc.constantFrom(...VALUES),
        fc.constantFrom(32, 96, 128, 160, 40),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 90 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.boolean(),
        (k, v, d, nRows, nSlots, seed, probs) => runCase(ex, { k, v, d, nRows, nSlots, seed, probs }),
      ),
      { numRuns: 80 },
    );
  });

  test(`wasm (${b}) q8 scores on 2 threads (slot split, row tiles) equal ref`, { skip: wasmSkip }, () => {
    const ex = execs.get(b)!.two;
    let seed = 7;
    for (const k of [KEYS[0]!, KEYS[3]!, KEYS[4]!])
      for (const nRows of [1, 4, 8])
        runCase(ex, { k, v: { type: "int4" }, d: 128, nRows, nSlots: 1500, seed: seed++, probs: false });
    // more than 16 rows (prefill): tiles of rows, each with its own q8 codes and scales
    for (const nRows of [20, 37])
      runCase(ex, {
        k: KEYS[3]!,
        v: { type: "int8" },
        d: 128,
        nRows,
        nSlots: 300,
        seed: seed++,
        probs: nRows === 37,
      });
  });
}

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
    env: { ...env, KVLAB_Q8_TEST_BUILD: "relaxed" },
    encoding: "utf8",
    timeout: 600_000,
  });
  assert.equal(res.status, 0, `child failed:\n${res.stdout}\n${res.stderr}`);
  assert.match(res.stdout, /# pass [1-9]/);
  assert.match(res.stdout, /# fail 0/);
});
