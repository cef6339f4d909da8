/**
 * TurboQuant's wasm kernels (assembly/codec-turbo.ts) against the TypeScript reference
 * (src/quant/turboquant.ts): encode bit for bit (codes, padding bits, f16 norms, non-finite and
 * saturation counts) on odd and SIMD-sized head sizes and hostile rows; decode bit for bit;
 * attention over TurboQuant keys and/or values (with other codecs on the other side) equal to
 * refAttend within the attend contract's tolerance, on one thread and on the threaded slot split,
 * with no ref fallback; the same for TurboQuant_prod (QJL; assembly/turbo-qjl.ts).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import fc from "fast-check";
import type { AttendArgs } from "../../src/kernels/executor.ts";
import { refAttend } from "../../src/kernels/ref.ts";
import type { WasmExecutor } from "../../src/kernels/wasm.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type Codec, type CodecName, type EncodedRows } from "../../src/quant/types.ts";
import { rng, wasmExecutor, wasmSkip } from "./wasm-helpers.ts";

const TURBO = ["turbo2", "turbo2.5", "turbo3", "turbo3.5", "turbo4"] as const;
const OTHERS = ["f32", "f16", "int8", "int4"] as const;
// SIMD blocks (multiples of 16 and 32), odd sizes (scalar tails, unaligned low-width regions)
const DIMS = fc.oneof(fc.constantFrom(16, 32, 48, 64, 96, 128), fc.integer({ min: 1, max: 80 }));
const RUNS = Number(process.env.KVLAB_PROP_RUNS ?? 40);

let exec: WasmExecutor;
let exec2: WasmExecutor;
before(async () => {
  if (wasmSkip) return;
  exec = await wasmExecutor();
  exec2 = await wasmExecutor(2);
});
after(() => {
  exec?.dispose();
  exec2?.dispose();
});

const SPECIALS = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  1e38,
  7e4,
  2 ** -24,
  1e-40,
];

function makeRows(seed: number, n: number, d: number, specialRate: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * d);
  for (let row = 0; row < n; row++) {
    const scale = 10 ** (r() * 10 - 5);
    const zero = r() < 0.05;
    for (let i = 0; i < d; i++)
      x[row * d + i] = zero
        ? 0
        : r() < specialRate
          ? SPECIALS[Math.floor(r() * SPECIALS.length)]!
          : (r() - 0.5) * 2 * scale;
  }
  return x;
}

function rowsOf(codec: Codec, d: number, n: number, fill: number): EncodedRows {
  const rows = allocRows(codec.layout(d), n);
  rows.payload.fill(fill); // padding bits must survive both encoders alike
  return rows;
}

test("wasm TurboQuant encode and decode equal the reference bit for bit", { skip: wasmSkip }, () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...TURBO),
      DIMS,
      fc.integer({ min: 1, max: 9 }),
      fc.constantFrom(0, 0, 0.05, 0.3),
      fc.integer(),
      fc.constantFrom(0, 0xff, 0xa5),
      (name, d, n, specialRate, seed, fill) => {
        const codec = makeCodec(name);
        const x = makeRows(seed, n, d, specialRate);
        const want = rowsOf(codec, d, n + 1, fill);
        const got = rowsOf(codec, d, n + 1, fill);
        const ws = codec.encode(x, n, d, want, 1);
        const before = exec.fallbacks.get("encodeRows") ?? 0;
        const gs = exec.encodeRows(codec, x, n, d, got, 1);
        assert.equal(exec.fallbacks.get("encodeRows") ?? 0, before, "wasm encoded it");
        assert.deepEqual(gs, ws, `${name} d=${d} stats`);
        assert.deepEqual(got.scales, want.scales, `${name} d=${d} norms`);
        assert.deepEqual(got.payload, want.payload, `${name} d=${d} codes`);
        const wd = new Float32Array(n * d);
        const gd = new Float32Array(n * d);
        codec.decode(want, 1, n, d, wd);
        exec.decodeRows(codec, want, 1, n, d, gd);
        assert.deepEqual(new Uint32Array(gd.buffer), new Uint32Array(wd.buffer), `${name} d=${d} decode`);
      },
    ),
    { numRuns: RUNS * 4 },
  );
});

/** refAttend and the executor's attend on the same reference-encoded rows; returns max |diff| / max |v|. */
function attendCase(
  e: WasmExecutor,
  kName: CodecName,
  vName: CodecName,
  d: number,
  nRows: number,
  nSlots: number,
  seed: number,
) {
  const r = rng(seed);
  const kc = makeCodec(kName);
  const vc = makeCodec(vName);
  const k = new Float32Array(nSlots * d).map(() => r() * 4 - 2);
  const v = new Float32Array(nSlots * d).map(() => r() * 2 - 1);
  const q = new Float32Array(nRows * d).map(() => r() * 2 - 1);
  const slotPos = Int32Array.from({ length: nSlots }, () => Math.floor(r() * nSlots));
  const qPos = Int32Array.from({ length: nRows }, () => Math.floor(r() * (nSlots + 2)) - 1);
  const enc = (c: Codec, x: Float32Array) => {
    const rows = allocRows(c.layout(d), nSlots);
    c.encode(x, nSlots, d, rows, 0);
    return rows;
  };
  const args = (): AttendArgs => ({
    kCodec: kc,
    vCodec: vc,
    headDim: d,
    nRows,
    nSlots,
    scale: 1 / Math.sqrt(d),
    q,
    qPos,
    k: enc(kc, k),
    v: enc(vc, v),
    slotPos,
    out: new Float32Array(nRows * d),
    probs: nSlots <= 64 ? new Float32Array(nRows * nSlots) : undefined,
  });
  const want = args();
  refAttend(want);
  const got = args();
  const before = e.fallbacks.get("attend") ?? 0;
  e.attend(got);
  assert.equal(e.fallbacks.get("attend") ?? 0, before, `${kName}/${vName}: wasm ran ref's attend`);
  let worst = 0;
  for (let i = 0; i < got.out.length; i++) worst = Math.max(worst, Math.abs(got.out[i]! - want.out[i]!));
  if (got.probs)
    for (let i = 0; i < got.probs.length; i++)
      assert.ok(
        Math.abs(got.probs[i]! - want.probs![i]!) <= 2e-5,
        `probs[${i}] ${got.probs[i]} vs ${want.probs![i]}`,
      );
  return worst;
}

test("wasm attend over TurboQuant keys and/or values equals refAttend (1e-5 of max |v|)", {
  skip: wasmSkip,
}, () => {
  const name = fc.constantFrom<CodecName>(...TURBO, ...TURBO, ...OTHERS);
  fc.assert(
    fc.property(
      name,
      name,
      DIMS,
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 0, max: 50 }),
      fc.integer(),
      (kn, vn, d, nRows, nSlots, seed) => {
        const worst = attendCase(exec, kn, vn, d, nRows, nSlots, seed);
        assert.ok(worst <= 1e-5 + 1e-6, `K ${kn} V ${vn} d=${d}: max |diff| ${worst}`);
      },
    ),
    { numRuns: RUNS * 4 },
  );
});

test("wasm attend over long TurboQuant caches, threaded slot split (2 threads), equals refAttend", {
  skip: wasmSkip,
}, () => {
  for (const [kn, vn] of [
    ["turbo3", "turbo3"],
    ["turbo4", "turbo2.5"],
    ["turbo3.5", "f16"],
    ["int8", "turbo4"],
  ] as const)
    for (const d of [64, 128, 65])
      for (const nRows of [1, 4, 8]) {
        const worst = attendCase(exec2, kn, vn, d, nRows, 2100, d * 31 + nRows);
        assert.ok(worst <= 1e-5 + 1e-6, `K ${kn} V ${vn} d=${d} rows ${nRows}: max |diff| ${worst}`);
      }
});

const QJL = ["turbo3-qjl", "turbo4-qjl"] as const;

test("wasm TurboQuant_prod (QJL) encode and decode equal the reference bit for bit", {
  skip: wasmSkip,
}, () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...QJL),
      DIMS,
      fc.integer({ min: 1, max: 5 }),
      fc.constantFrom(0, 0, 0.05),
      fc.integer(),
      fc.constantFrom(0, 0xff),
      (name, d, n, specialRate, seed, fill) => {
        const codec = makeCodec(name);
        const x = makeRows(seed, n, d, specialRate);
        const want = rowsOf(codec, d, n + 1, fill);
        const got = rowsOf(codec, d, n + 1, fill);
        const ws = codec.encode(x, n, d, want, 1);
        const before = exec.fallbacks.get("encodeRows") ?? 0;
        const gs = exec.encodeRows(codec, x, n, d, got, 1);
        assert.equal(exec.fallbacks.get("encodeRows") ?? 0, before, "wasm encoded it");
        assert.deepEqual(gs, ws, `${name} d=${d} stats`);
        assert.deepEqual(got.scales, want.scales, `${name} d=${d} norms`);
        assert.deepEqual(got.payload, want.payload, `${name} d=${d} codes and signs`);
        const wd = new Float32Array(n * d);
        const gd = new Float32Array(n * d);
        codec.decode(want, 1, n, d, wd);
        exec.decodeRows(codec, want, 1, n, d, gd);
        assert.deepEqual(new Uint32Array(gd.buffer), new Uint32Array(wd.buffer), `${name} d=${d} decode`);
      },
    ),
    { numRuns: RUNS },
  );
});

test("wasm attend over TurboQuant_prod keys and/or values equals refAttend, no ref fallback", {
  skip: wasmSkip,
}, () => {
  const name = fc.constantFrom<CodecName>(...QJL, ...QJL, "turbo3", "f32", "f16", "int4");
  fc.assert(
    fc.property(
      name,
      name,
      DIMS,
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer(),
      (kn, vn, d, nRows, nSlots, seed) => {
        if (!kn.endsWith("-qjl") && !vn.endsWith("-qjl")) return;
        const worst = attendCase(exec, kn, vn, d, nRows, nSlots, seed);
        assert.ok(worst <= 1e-5 + 1e-6, `K ${kn} V ${vn} d=${d}: max |diff| ${worst}`);
      },
    ),
    { numRuns: RUNS * 2 },
  );
});
