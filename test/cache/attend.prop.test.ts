/**
 * Cache attention contract, for every codec configuration on every available executor:
 * `attend` equals a naive attention computed here (keys and values decoded with the codec's
 * reference decode, scores and softmax in f64 with the max subtracted), with GQA, several
 * layers, several appended chunks and causal masking by absolute position (queries may precede
 * stored tokens, or all of them). The f32 codec equals exact attention on the raw inputs.
 * Every executor other than ref also matches ref directly, through the cache and through the
 * bare `attend` op (outputs and softmax probabilities). Every codec configuration with a Hadamard
 * rotation on keys, values or both equals naive attention over the rotated, decoded, rotated-back rows.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { createCache } from "../../src/cache/create.ts";
import type { CacheSpecInput, KVShape } from "../../src/cache/types.ts";
import type { AttendArgs, Executor } from "../../src/kernels/executor.ts";
import { refAttend } from "../../src/kernels/ref.ts";
import { sideRotation } from "../../src/quant/hadamard.ts";
import { makeCodec } from "../../src/quant/registry.ts";
import { allocRows, type Codec, type CodecOptions } from "../../src/quant/types.ts";
import { mulberry32 } from "../../src/rng.ts";
import { codecCases, ggmlCases, turboCases } from "../helpers/codec-cases.ts";
import {
  allocRowsOn,
  availableExecutors,
  deviceAttend,
  disposeTestExecutors,
  executorsUnderTest,
  f32On,
  freeRowsOn,
  runsFor,
  skipUnlessOtherExecutors,
} from "../helpers/executors.ts";

after(disposeTestExecutors);
fc.configureGlobal({ includeErrorInReport: true });

/**
 * Tolerance of attention outputs, relative to the largest |value| of the KV head (outputs are
 * convex combinations of values, so that is their natural scale) plus an absolute floor:
 * covers f32 accumulation of scores and weighted sums over <= 128 dims and a few dozen tokens.
 */
export const ATTEND_REL_TOL = 1e-5;
export const ATTEND_ABS_TOL = 1e-6;
/**
 * With scores near 1000 (the large-score property), an f32 kernel's score rounding
 * (~1000 * 2^-24 * sqrt(headDim)) shifts softmax weights by ~1e-4 relative: allow 1e-3.
 */
export const LARGE_SCORE_REL_TOL = 1e-3;

const executors = await availableExecutors();
const others = await executorsUnderTest();
const cases = codecCases();
/**
 * The matrix plus TurboQuant's MSE codecs (unrotated here; the rotation property below covers
 * them rotated), which have kernels on every executor; the QJL variants run ref on wasm and
 * webgpu (counted) and are covered by the rotation property only.
 */
const withTurbo = [
  ...cases,
  ...turboCases()
    .filter((c) => !c.label.endsWith("-qjl"))
    .map((c) => ({ ...c, options: { ...c.options, rotation: "none" } as CodecOptions })),
];
const NUM_RUNS = Number(process.env.KVLAB_PROP_RUNS ?? 40) / 4;

/** Deterministic data from a seed (fast-check picks seeds and structure; this fills arrays). */
const rng = mulberry32;

interface Scenario {
  shape: KVShape;
  /** Per layer, per chunk: k, v (nKvHeads, nNew, headDim) and positions (nNew). */
  chunks: { k: Float32Array; v: Float32Array; positions: Int32Array }[][];
  layer: number;
  q: Float32Array; // (nHeads, nQ, headDim)
  qPositions: Int32Array; // (nQ)
}

/** Random scenarios; `long` gives hundreds of tokens so executors take their threaded paths. */
const makeScenarioArb = (long: boolean, headDims?: number[]) =>
  fc
    .record({
      nKvHeads: long ? fc.integer({ min: 1, max: 2 }) : fc.integer({ min: 1, max: 3 }),
      groupQ: long ? fc.constant(4) : fc.constantFrom(1, 2, 4),
      headDim: headDims
        ? fc.constantFrom(...headDims)
        : long
          ? fc.constantFrom(64, 65, 128)
          : fc.oneof(fc.constantFrom(1, 3, 7, 16, 33, 64, 65), fc.integer({ min: 1, max: 72 })),
      chunkSizes: long
        ? fc.array(fc.integer({ min: 100, max: 400 }), { minLength: 1, maxLength: 3 })
        : fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
      firstPos: fc.integer({ min: 0, max: 4 }),
      nQ: long ? fc.integer({ min: 2, max: 3 }) : fc.integer({ min: 1, max: 3 }),
      layer: fc.integer({ min: 0, max: 1 }),
      qScale: fc.constantFrom(1, 1, 8),
      // Headroom over the tokens appended (the cache refuses more than maxTokens per sequence);
      // storage starts at min(maxTokens, 256) slots, so the long scenarios grow it by doubling.
      maxTokens: fc.integer({ min: 0, max: 8 }),
      seed: fc.integer(),
    })
    .map(
      ({ nKvHeads, groupQ, headDim, chunkSizes, firstPos, nQ, layer, qScale, maxTokens, seed }): Scenario => {
        const rand = rng(seed);
        const nLayers = 2;
        const total = chunkSizes.reduce((a, b) => a + b, 0);
        const shape: KVShape = {
          nLayers,
          nHeads: nKvHeads * groupQ,
          nKvHeads,
          headDim,
          maxTokens: total + maxTokens,
        };
        // Strictly increasing positions with gaps, starting at firstPos (so a query at 0 may see nothing).
        const positions: number[] = [];
        let p = firstPos;
        for (let i = 0; i < total; i++) {
          positions.push(p);
          p += 1 + Math.floor(rand() * 2);
        }
        const chunks: Scenario["chunks"] = [];
        for (let l = 0; l < nLayers; l++) {
          const layerChunks: Scenario["chunks"][number] = [];
          let at = 0;
          for (const n of chunkSizes) {
            const k = new Float32Array(nKvHeads * n * headDim).map(() => rand() * 4 - 2);
            // Values off-centre per head so asymmetric codecs see non-zero-centred groups.
            const v = new Float32Array(nKvHeads * n * headDim).map((_, i) => rand() * 2 - 1 + (i % 3) * 0.5);
            layerChunks.push({ k, v, positions: Int32Array.from(positions.slice(at, at + n)) });
            at += n;
          }
          chunks.push(layerChunks);
        }
        const q = new Float32Array(shape.nHeads * nQ * headDim).map(() => (rand() * 2 - 1) * qScale);
        // Query positions anywhere from before the first token to past the last one.
        const qPositions = Int32Array.from({ length: nQ }, () => Math.floor(rand() * (p + 2)) - 1);
        return { shape, chunks, layer, q, qPositions };
      },
    );
const scenarioArb = makeScenarioArb(false);
const longScenarioArb = makeScenarioArb(true);
/** ggml's block types need head_dim a multiple of 32. */
const ggmlScenarioArb = makeScenarioArb(false, [32, 64, 96]);

/** Reference decode of rows (nRows, headDim) through a codec: what the cache holds for them. */
function decodeThrough(
  codec: Codec | undefined,
  x: Float32Array,
  nRows: number,
  headDim: number,
): Float32Array {
  if (!codec) return x;
  const rows = allocRows(codec.layout(headDim), nRows);
  codec.encode(x, nRows, headDim, rows, 0);
  const out = new Float32Array(nRows * headDim);
  codec.decode(rows, 0, nRows, headDim, out);
  return out;
}

/**
 * Naive attention for the scenario's layer: keys/values decoded by the given codecs (or raw when
 * undefined), f64 scores and softmax with the max subtracted; a query that sees no token gives 0.
 * Returns out (nHeads, nQ, headDim) and the largest |value| per KV head (the tolerance scale).
 */
function naiveAttention(sc: Scenario, kCodec?: Codec, vCodec?: Codec) {
  const { nHeads, nKvHeads, headDim: d } = sc.shape;
  const groupQ = nHeads / nKvHeads;
  const nQ = sc.qPositions.length;
  const keys: { pos: number; k: Float32Array; v: Float32Array }[][] = Array.from(
    { length: nKvHeads },
    () => [],
  );
  for (const ch of sc.chunks[sc.layer]!) {
    const n = ch.positions.length;
    for (let h = 0; h < nKvHeads; h++) {
      const k = decodeThrough(kCodec, ch.k.subarray(h * n * d, (h + 1) * n * d), n, d);
      const v = decodeThrough(vCodec, ch.v.subarray(h * n * d, (h + 1) * n * d), n, d);
      for (let t = 0; t < n; t++)
        keys[h]!.push({
          pos: ch.positions[t]!,
          k: k.subarray(t * d, (t + 1) * d),
          v: v.subarray(t * d, (t + 1) * d),
        });
    }
  }
  const out = new Float64Array(nHeads * nQ * d);
  const vMax = new Float64Array(nKvHeads);
  for (let h = 0; h < nKvHeads; h++)
    for (const e of keys[h]!) for (const x of e.v) vMax[h] = Math.max(vMax[h]!, Math.abs(x));
  for (let h = 0; h < nHeads; h++) {
    const kv = keys[Math.floor(h / groupQ)]!;
    for (let t = 0; t < nQ; t++) {
      const qo = (h * nQ + t) * d;
      const visible = kv.filter((e) => e.pos <= sc.qPositions[t]!);
      if (visible.length === 0) continue;
      const scores = visible.map((e) => {
        let s = 0;
        for (let i = 0; i < d; i++) s += sc.q[qo + i]! * e.k[i]!;
        return s / Math.sqrt(d);
      });
      const max = Math.max(...scores);
      const w = scores.map((s) => Math.exp(s - max));
      const sum = w.reduce((a, b) => a + b, 0);
      for (let j = 0; j < visible.length; j++)
        for (let i = 0; i < d; i++) out[qo + i]! += (w[j]! / sum) * visible[j]!.v[i]!;
    }
  }
  return { out, vMax };
}

/** Run the scenario through a cache on `exec`; returns attend's output for the chosen layer. */
async function runCache(exec: Executor, spec: CacheSpecInput, sc: Scenario): Promise<Float32Array> {
  const cache = await createCache(spec, sc.shape, { executor: exec });
  try {
    for (let l = 0; l < sc.shape.nLayers; l++)
      for (const ch of sc.chunks[l]!) await cache.append(l, ch.k, ch.v, ch.positions);
    const out = new Float32Array(sc.q.length).fill(Number.NaN);
    await cache.attend(sc.layer, sc.q, sc.qPositions, out);
    return out;
  } finally {
    cache.dispose();
  }
}

function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  sc: Scenario,
  vMax: Float64Array,
  rel: number,
  what: string,
): void {
  const { nHeads, nKvHeads, headDim: d } = sc.shape;
  const nQ = sc.qPositions.length;
  assert.equal(got.length, want.length);
  for (let h = 0; h < nHeads; h++)
    for (let t = 0; t < nQ; t++)
      for (let i = 0; i < d; i++) {
        const at = (h * nQ + t) * d + i;
        const tol = rel * vMax[Math.floor(h / (nHeads / nKvHeads))]! + ATTEND_ABS_TOL;
        const diff = Math.abs(got[at]! - want[at]!);
        assert.ok(
          diff <= tol,
          `${what}: head ${h} query ${t} (pos ${sc.qPositions[t]}) dim ${i}: ${got[at]} vs ${want[at]} (|diff| ${diff} > ${tol})`,
        );
      }
}

function specOf(options: CodecOptions): CacheSpecInput {
  return { codec: options };
}

for (const exec of executors) {
  describe(`cache attend contract on ${exec.name}`, () => {
    for (const cc of cases) {
      test(`${cc.label}: attend equals naive attention over the decoded cache`, async () => {
        await fc.assert(
          fc.asyncProperty(scenarioArb, async (sc) => {
            const got = await runCache(exec, specOf(cc.options), sc);
            const { out, vMax } = naiveAttention(sc, cc.codec, cc.codec);
            assertClose(got, out, sc, vMax, ATTEND_REL_TOL, `${exec.name} ${cc.label}`);
          }),
          { numRuns: runsFor(exec, NUM_RUNS) },
        );
      });
    }

    test("ggml block types (keys and values, and mixed with f16 / int8): attend equals naive attention over the decoded cache", async () => {
      const ggml = ggmlCases();
      const other = [...ggml, ...cases.filter((c) => c.label === "f16" || c.label === "int8-sym-g32")];
      const encBefore = exec.fallbacks.get("encodeRows") ?? 0;
      const attBefore = exec.fallbacks.get("attend") ?? 0;
      await fc.assert(
        fc.asyncProperty(
          ggmlScenarioArb,
          fc.constantFrom(...ggml),
          fc.constantFrom(...other),
          fc.boolean(),
          async (sc, g, o, gKeys) => {
            const [kc, vc] = gKeys ? [g, o] : [o, g];
            const spec: CacheSpecInput = { codec: { keys: kc.options, values: vc.options } };
            const got = await runCache(exec, spec, sc);
            const { out, vMax } = naiveAttention(sc, kc.codec, vc.codec);
            assertClose(got, out, sc, vMax, ATTEND_REL_TOL, `${exec.name} K:${kc.label} V:${vc.label}`);
          },
        ),
        { numRuns: runsFor(exec, NUM_RUNS * 4) },
      );
      // wasm has kernels for every ggml type: none of these calls may have run ref
      if (exec.name === "wasm") {
        assert.equal(exec.fallbacks.get("encodeRows") ?? 0, encBefore, "wasm ran ref's encode");
        assert.equal(exec.fallbacks.get("attend") ?? 0, attBefore, "wasm ran ref's attend");
      }
    });

    test("f32 codec: attend equals exact attention on the raw inputs within 1e-5 relative", async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (sc) => {
          const got = await runCache(exec, "f32", sc);
          const { out, vMax } = naiveAttention(sc);
          assertClose(got, out, sc, vMax, 1e-5, `${exec.name} f32 vs exact`);
        }),
        { numRuns: runsFor(exec, NUM_RUNS * 4) },
      );
    });

    test("different key and value codecs", async () => {
      const pick = fc.constantFrom(...withTurbo);
      await fc.assert(
        fc.asyncProperty(scenarioArb, pick, pick, async (sc, kc, vc) => {
          const spec: CacheSpecInput = { codec: { keys: kc.options, values: vc.options } };
          const got = await runCache(exec, spec, sc);
          const { out, vMax } = naiveAttention(sc, kc.codec, vc.codec);
          assertClose(got, out, sc, vMax, ATTEND_REL_TOL, `${exec.name} K:${kc.label} V:${vc.label}`);
        }),
        { numRuns: runsFor(exec, NUM_RUNS * 4) },
      );
    });

    test("every codec (TurboQuant too) x rotation (keys, values, both): attend equals naive attention over R^T decode(encode(R x))", async () => {
      const arb = fc.record({
        sc: scenarioArb,
        cc: fc.constantFrom(...cases, ...turboCases()),
        sides: fc.constantFrom<string[]>(["keys"], ["values"], ["keys", "values"]),
        seed: fc.integer(),
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ sc, cc, sides, seed }) => {
          const side = (s: string) => ({ ...cc.options, rotation: sides.includes(s) ? "hadamard" : "none" });
          const cache = await createCache(
            { codec: { keys: side("keys"), values: side("values") } } as CacheSpecInput,
            sc.shape,
            { executor: exec, seed },
          );
          const got = new Float32Array(sc.q.length);
          try {
            for (let l = 0; l < sc.shape.nLayers; l++)
              for (const ch of sc.chunks[l]!) await cache.append(l, ch.k, ch.v, ch.positions);
            await cache.attend(sc.layer, sc.q, sc.qPositions, got);
          } finally {
            cache.dispose();
          }
          // Expected: each row rotated, encoded, decoded and rotated back (R orthogonal, so the
          // scores of the rotated query and key are those of q and R^T k'); then naive attention.
          const d = sc.shape.headDim;
          const rotated: Scenario = {
            ...sc,
            chunks: sc.chunks.map((layer) =>
              layer.map((ch) => {
                const through = (x: Float32Array, s: "keys" | "values") => {
                  const n = x.length / d;
                  if (!sides.includes(s)) return decodeThrough(cc.codec, x, n, d);
                  const rot = sideRotation(s, d, seed);
                  const y = x.slice();
                  rot.apply(y, n);
                  const z = decodeThrough(cc.codec, y, n, d);
                  rot.invert(z, n);
                  return z;
                };
                return { ...ch, k: through(ch.k, "keys"), v: through(ch.v, "values") };
              }),
            ),
          };
          const { out, vMax } = naiveAttention(rotated);
          // Rotating q and k (and the output) adds f32 rounding of a few ulps per element.
          assertClose(got, out, sc, vMax, 1e-4, `${exec.name} ${cc.label} rotated ${sides.join("+")}`);
        }),
        { numRuns: runsFor(exec, NUM_RUNS * 4) },
      );
    });

    test("long caches (hundreds of tokens: threaded kernel paths) equal naive attention", async () => {
      const labels = [
        "f32",
        "f16",
        "bf16",
        "fp8-e4m3",
        "int8-sym-g32",
        "int4-asym-g32",
        "int4-sym-ghead",
        "int2-asym-g8",
      ];
      const pick = fc.constantFrom(...cases.filter((c) => labels.includes(c.label)));
      await fc.assert(
        fc.asyncProperty(longScenarioArb, pick, async (sc, cc) => {
          const got = await runCache(exec, specOf(cc.options), sc);
          const { out, vMax } = naiveAttention(sc, cc.codec, cc.codec);
          assertClose(got, out, sc, vMax, ATTEND_REL_TOL, `${exec.name} ${cc.label} long`);
        }),
        { numRuns: runsFor(exec, NUM_RUNS) },
      );
    });

    test("large scores (~1000): softmax stays finite and correct", async () => {
      const pick = fc.constantFrom(
        ...cases.filter((c) => ["f32", "f16", "int8-sym-g32", "int4-asym-g32"].includes(c.label)),
      );
      await fc.assert(
        fc.asyncProperty(
          scenarioArb,
          pick,
          fc.double({ min: 750, max: 1500, noNaN: true }),
          async (sc, cc, top) => {
            // Aim each query at one stored key so its score is `top` (beyond exp's f64 range
            // without the max subtraction): q = k * top * sqrt(d) / |k|^2.
            const { nHeads, nKvHeads, headDim: d } = sc.shape;
            const nQ = sc.qPositions.length;
            const first = sc.chunks[sc.layer]![0]!;
            const n0 = first.positions.length;
            for (let h = 0; h < nHeads; h++) {
              const kvh = Math.floor(h / (nHeads / nKvHeads));
              const k = first.k.subarray(kvh * n0 * d, kvh * n0 * d + d);
              const norm2 = k.reduce((a, x) => a + x * x, 0) || 1;
              for (let t = 0; t < nQ; t++)
                for (let i = 0; i < d; i++) sc.q[(h * nQ + t) * d + i] = (k[i]! * top * Math.sqrt(d)) / norm2;
            }
            sc.qPositions.fill(1 << 20); // every token visible
            const got = await runCache(exec, { codec: cc.options }, sc);
            const { out, vMax } = naiveAttention(sc, cc.codec, cc.codec);
            for (const x of got) assert.ok(Number.isFinite(x), `non-finite output ${x}`);
            assertClose(got, out, sc, vMax, LARGE_SCORE_REL_TOL, `${exec.name} ${cc.label} large scores`);
          },
        ),
        { numRuns: runsFor(exec, NUM_RUNS * 2) },
      );
    });
  });
}

describe("non-ref executors match ref", async () => {
  const skip = await skipUnlessOtherExecutors();
  const ref = executors[0]!;

  test("through the cache: same outputs as ref within ATTEND_REL_TOL", { skip }, async () => {
    const pick = fc.constantFrom(...withTurbo);
    for (const exec of others)
      await fc.assert(
        fc.asyncProperty(scenarioArb, pick, async (sc, cc) => {
          const want = await runCache(ref, specOf(cc.options), sc);
          const got = await runCache(exec, specOf(cc.options), sc);
          const { vMax } = naiveAttention(sc);
          assertClose(got, want, sc, vMax, ATTEND_REL_TOL, `${exec.name} vs ref ${cc.label}`);
        }),
        { numRuns: runsFor(exec, NUM_RUNS * 8) },
      );
  });

  test("bare attend op: outputs and softmax probabilities match refAttend", { skip }, async () => {
    const pick = fc.constantFrom(...withTurbo);
    const arb = fc.record({
      kc: pick,
      vc: pick,
      headDim: fc.integer({ min: 1, max: 72 }),
      nRows: fc.integer({ min: 1, max: 6 }),
      nSlots: fc.integer({ min: 0, max: 40 }),
      seed: fc.integer(),
    });
    for (const exec of others)
      await fc.assert(
        fc.asyncProperty(arb, async ({ kc, vc, headDim: d, nRows, nSlots, seed }) => {
          const rand = rng(seed);
          const k = new Float32Array(nSlots * d).map(() => rand() * 4 - 2);
          const v = new Float32Array(nSlots * d).map(() => rand() * 2 - 1);
          const q = new Float32Array(nRows * d).map(() => rand() * 2 - 1);
          // Slots in no particular order (eviction moves them), positions with repeats allowed.
          const slotPos = Int32Array.from({ length: nSlots }, () => Math.floor(rand() * 50));
          const qPos = Int32Array.from({ length: nRows }, () => Math.floor(rand() * 55) - 2);
          const encode = (codec: Codec, x: Float32Array, on?: Executor) => {
            const rows = on ? allocRowsOn(on, codec.layout(d), nSlots) : allocRows(codec.layout(d), nSlots);
            codec.encode(x, nSlots, d, rows, 0); // reference codes in both: this compares attend only
            return rows;
          };
          const base = {
            kCodec: kc.codec,
            vCodec: vc.codec,
            headDim: d,
            nRows,
            nSlots,
            scale: 1 / Math.sqrt(d),
          };
          const want: AttendArgs = {
            ...base,
            q,
            qPos,
            k: encode(kc.codec, k),
            v: encode(vc.codec, v),
            slotPos,
            out: new Float32Array(nRows * d),
            probs: new Float32Array(nRows * nSlots),
          };
          refAttend(want);
          const args: AttendArgs = {
            ...base,
            q: f32On(exec, q),
            qPos: Int32Array.from(qPos),
            k: encode(kc.codec, k, exec),
            v: encode(vc.codec, v, exec),
            slotPos: exec.allocI32(nSlots),
            out: exec.allocF32(nRows * d),
            probs: exec.allocF32(nRows * nSlots),
          };
          args.slotPos.set(slotPos);
          const refRuns = exec.fallbacks.get("attend") ?? 0;
          try {
            await deviceAttend(exec)(args);
            assert.equal(exec.fallbacks.get("attend") ?? 0, refRuns, `${exec.name} ran ref's attend`);
            const vMax = new Float64Array(1).fill(v.reduce((a, x) => Math.max(a, Math.abs(x)), 0));
            const sc = { shape: { nHeads: 1, nKvHeads: 1, headDim: d }, qPositions: new Int32Array(nRows) };
            assertClose(
              args.out,
              want.out,
              sc as unknown as Scenario,
              vMax,
              ATTEND_REL_TOL,
              `${exec.name} attend`,
            );
            for (let i = 0; i < nRows * nSlots; i++) {
              const diff = Math.abs(args.probs![i]! - want.probs![i]!);
              assert.ok(
                diff <= ATTEND_REL_TOL + ATTEND_ABS_TOL,
                `probs[${i}]: ${args.probs![i]} vs ${want.probs![i]}`,
              );
            }
          } finally {
            freeRowsOn(exec, args.k);
            freeRowsOn(exec, args.v);
            for (const a of [args.q, args.slotPos, args.out, args.probs!]) exec.free(a);
          }
        }),
        { numRuns: runsFor(exec, NUM_RUNS * 8) },
      );
  });
});

test("ref attend: softmax probabilities sum to 1 over visible slots, 0 for masked ones", () => {
  fc.assert(
    fc.property(
      fc.integer(),
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 1, max: 40 }),
      (seed, nSlots, d) => {
        const rand = rng(seed);
        const codec = makeCodec("int4");
        const rows = allocRows(codec.layout(d), nSlots);
        codec.encode(
          new Float32Array(nSlots * d).map(() => rand() * 4 - 2),
          nSlots,
          d,
          rows,
          0,
        );
        const slotPos = Int32Array.from({ length: nSlots }, () => Math.floor(rand() * 20));
        const qPos = Int32Array.from([Math.floor(rand() * 22) - 1]);
        const probs = new Float32Array(nSlots).fill(Number.NaN);
        const out = new Float32Array(d);
        const q = new Float32Array(d).map(() => rand() * 2 - 1);
        refAttend({
          kCodec: codec,
          vCodec: codec,
          headDim: d,
          q,
          qPos,
          nRows: 1,
          k: rows,
          v: rows,
          slotPos,
          nSlots,
          scale: 1,
          out,
          probs,
        });
        let sum = 0;
        let visible = 0;
        for (let j = 0; j < nSlots; j++) {
          if (slotPos[j]! > qPos[0]!) assert.equal(probs[j], 0, `masked slot ${j} got ${probs[j]}`);
          else {
            visible++;
            assert.ok(probs[j]! >= 0);
          }
          sum += probs[j]!;
        }
        if (visible) assert.ok(Math.abs(sum - 1) < 1e-6, `sum ${sum}`);
        else assert.deepEqual(Array.from(out), new Array(d).fill(0));
      },
    ),
  );
});
