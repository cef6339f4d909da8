/**
 * Properties every retention policy must have, over every codec (fast-check, small shapes):
 * the budget is never exceeded after an attend; protected tokens (sinks, recent windows) are
 * always kept; outputs stay finite; memory() equals the bytes of the retained rows plus the
 * declared metadata (positions when not implicit, the policy's per-slot state); a window or
 * sinks budget that covers the stream equals `full` exactly.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { POLICIES } from "../../../src/cache/policies/registry.ts";
import { resolveCount } from "../../../src/cache/policy.ts";
import { PRESETS } from "../../../src/cache/presets.ts";
import { resolveCacheSpec, sideCodec } from "../../../src/cache/spec.ts";
import type { PolicySpec } from "../../../src/cache/types.ts";
import { CODEC_NAMES } from "../../../src/quant/registry.ts";
import { rowBytes } from "../../../src/quant/types.ts";
import { GGML_CODECS } from "../../helpers/codec-cases.ts";
import { drive, makeCache, smallShape } from "./drive.ts";

fc.configureGlobal({ includeErrorInReport: true });

/** Declared per-slot metadata of each policy: what a compact implementation must store. */
const STATE_BYTES: Record<string, number> = { h2o: 8, tova: 4, knorm: 4, lru: 4, lfu: 4 };
const IMPLICIT_POSITIONS = new Set(["full", "window", "sinks", "tiered"]);

const budgetArb = fc.oneof(fc.integer({ min: 1, max: 14 }), fc.double({ min: 0.05, max: 0.95, noNaN: true }));

/** A generated spec for each policy type, with the numbers a test needs to check it. */
const policyArb: fc.Arbitrary<PolicySpec> = fc.oneof(
  fc.record({ type: fc.constant("window"), budget: budgetArb }),
  fc
    .record({
      type: fc.constant("sinks"),
      sinks: fc.integer({ min: 1, max: 3 }),
      extra: fc.integer({ min: 1, max: 10 }),
    })
    .map(({ sinks, extra }) => ({ type: "sinks", sinks, budget: sinks + extra })),
  fc
    .record({ sinks: fc.integer({ min: 1, max: 3 }), extra: fc.integer({ min: 1, max: 10 }) })
    .map(({ sinks, extra }) => ({ type: "sinks", sinks, budget: sinks + extra, positions: "cache" })),
  fc
    .record({
      budget: fc.integer({ min: 2, max: 14 }),
      recent: fc.constantFrom(0.25, 0.5, 1),
      codec: fc.constantFrom("int4", "int2", "fp8-e4m3"),
    })
    .map((o) => ({ type: "tiered", ...o })),
  fc.record({ type: fc.constant("h2o"), budget: budgetArb, recent: fc.constantFrom(0.25, 0.5, 1, 2) }),
  fc.record({ type: fc.constant("tova"), budget: budgetArb }),
  fc.record({ type: fc.constant("snapkv"), budget: budgetArb, window: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ type: fc.constant("knorm"), budget: budgetArb }),
  fc.record({ type: fc.constant("random"), budget: budgetArb, seed: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ type: fc.constant("lru"), budget: budgetArb }),
  fc.record({ type: fc.constant("lfu"), budget: budgetArb }),
  fc.record({ type: fc.constant("full") }),
  fc.record({ type: fc.constant("tova"), budget: budgetArb, scope: fc.constant("layer") }),
  fc.record({
    type: fc.constant("expected-attention"),
    budget: budgetArb,
    sinks: fc.constant(0),
    covariance: fc.boolean(),
    future: fc.constantFrom(1, 16),
  }),
  fc.record({ type: fc.constant("kvzip"), budget: budgetArb, recent: fc.constantFrom(0, 0.25, 2) }),
  fc.record({
    type: fc.constant("duo"),
    budget: budgetArb,
    retrieval: fc.constantFrom(0, 0.25, 0.5, 1),
    sinks: fc.integer({ min: 0, max: 3 }),
    recent: fc.constantFrom(0.25, 0.5, 2),
    // smallShape: 2 layers x 2 KV heads.
    scores: fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 2 }), {
      minLength: 2,
      maxLength: 2,
    }),
  }),
  fc.record({
    type: fc.constant("interval"),
    every: fc.integer({ min: 1, max: 6 }),
    policy: fc.oneof(
      fc.record({ type: fc.constant("h2o"), budget: budgetArb }),
      fc.record({ type: fc.constant("snapkv"), budget: budgetArb, window: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ type: fc.constant("knorm"), budget: budgetArb }),
      fc.record({ type: fc.constant("window"), budget: budgetArb }),
    ),
  }),
  fc.record({
    type: fc.constant("adakv"),
    budget: budgetArb,
    floor: fc.constantFrom(0, 0.2, 1),
    scorer: fc.constantFrom<unknown>(
      "snapkv",
      "h2o",
      "tova",
      "knorm",
      { type: "lfu", recent: 2 },
      "random",
      "kvzip",
      {
        type: "expected-attention",
        sinks: 0,
      },
    ),
  }),
  fc.record({
    type: fc.constant("pyramidkv"),
    budget: budgetArb,
    beta: fc.constantFrom(1, 2, 20),
    heads: fc.constantFrom("uniform", "adakv"),
    scorer: fc.constantFrom<unknown>("snapkv", "h2o", "knorm", "lru"),
  }),
  fc.record({
    type: fc.constant("layer-budgets"),
    budget: budgetArb,
    ratios: fc.constantFrom([1, 1], [3, 1], [0.5, 2]),
    heads: fc.constantFrom("uniform", "adakv"),
    scorer: fc.constantFrom<unknown>("tova", "h2o", "knorm"),
  }),
);

/** Budget allocations (allocation.ts): the budget bounds a layer's heads together, not each head. */
const ALLOCATIONS = new Set(["adakv", "pyramidkv", "layer-budgets"]);

/**
 * Declared state that is not per slot: expected-attention keeps, per query head that has seen
 * a query (all of them here: sinks 0), the mean (d) and covariance (d x d) in f32 and a count.
 */
function fixedState(policy: PolicySpec, shape: { nLayers: number; nHeads: number; headDim: number }): number {
  if (policy.type !== "expected-attention") return 0;
  const d = shape.headDim;
  return shape.nLayers * shape.nHeads * (d + (policy.covariance === false ? 0 : d * d) + 1) * 4;
}

/** The policy whose state and positions a spec stores (an interval's inner policy). */
function inner(policy: PolicySpec): PolicySpec {
  return policy.type === "interval" ? (policy.policy as PolicySpec) : policy;
}

/** Scorer type of an allocation's spec (its per-slot state is the scorer's). */
function scorerType(policy: PolicySpec): string {
  const s = policy.scorer ?? "snapkv";
  return typeof s === "string" ? s : (s as { type: string }).type;
}

/**
 * Most tokens layer `layer` may hold per KV head under an allocation with uniform budget b,
 * from the papers' definitions (a bound: the rounding may add one token to a layer).
 */
function layerCap(policy: PolicySpec, layer: number, nLayers: number, b: number): number {
  if (policy.type === "adakv") return b;
  let w: number[];
  if (policy.type === "layer-budgets") w = policy.ratios as number[];
  else {
    // PyramidKV: bottom 2b - b/beta down to top b/beta, arithmetic.
    const beta = policy.beta as number;
    w = Array.from({ length: nLayers }, (_, l) => 2 - 1 / beta - ((2 - 2 / beta) * l) / (nLayers - 1));
  }
  const sum = w.reduce((a, x) => a + x, 0);
  // Every layer keeps the scorer's recent window (its documented default), the rest is spread.
  const p = Math.min(b, windowOf(scorerType(policy), b));
  return p + Math.ceil((nLayers * (b - p) * w[layer]!) / sum);
}

/** Default recent window of a scorer at budget b (the defaults its file documents). */
function windowOf(scorer: string, b: number): number {
  if (scorer === "snapkv") return Math.min(16, b);
  if (scorer === "h2o") return Math.floor(0.5 * b);
  if (scorer === "knorm" || scorer === "lfu") return Math.floor(0.25 * b);
  return 0; // lru, tova, random
}

const codecArb: fc.Arbitrary<{ codec?: string; preset?: string }> = fc.oneof(
  fc.constantFrom(...CODEC_NAMES).map((c) => ({ codec: c })),
  fc.constantFrom("kivi2", "kivi4", "int4-hadamard", "q4_0").map((p) => ({ preset: p })),
);

const isGgml = (name: string | undefined) => (GGML_CODECS as readonly (string | undefined)[]).includes(name);

const chunksArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 });

test("every policy x every codec: budget holds after each attend, outputs finite, memory = rows + metadata", async () => {
  await fc.assert(
    fc.asyncProperty(
      policyArb,
      codecArb,
      chunksArb,
      fc.integer({ min: 1, max: 40 }),
      async (policy, codec, chunks, n) => {
        // ggml's block types hold whole blocks of 32 per head row (head_dim 8 is refused).
        const shape = smallShape(isGgml(codec.codec ?? codec.preset) ? { headDim: 32 } : {});
        // Tiers re-encode token-axis rows; tiered with a channel-axis preset is rejected (channel-cache.test.ts).
        if (policy.type === "tiered" && (codec.preset === "kivi2" || codec.preset === "kivi4")) return; // refused by resolveCacheSpec
        // Expected attention needs keys as the queries see them; rotated keys are refused (spec.test.ts).
        if (JSON.stringify(policy).includes("expected-attention")) {
          const { keys } = resolveCacheSpec({ ...codec, policy: { type: "full" } });
          if (keys.rotation !== "none" || keys.preRope) return;
        }
        {
          const cache = await makeCache({ ...codec, policy }, shape);
          const kB = cache.spec.keys;
          let seen = 0;
          drive(cache, shape, n, chunks, n * 7 + chunks.length, (s) => {
            if (s.layer === 0) seen += s.positions.length;
            assert.ok(s.out.every(Number.isFinite), "attention output must be finite");
            if (policy.type === "full") return;
            if (policy.type === "interval") {
              // Between compressions a head grows by up to every - 1 tokens past its budget.
              const bound = resolveCount(inner(policy).budget as number, seen) + (policy.every as number) - 1;
              for (let h = 0; h < shape.nKvHeads; h++) {
                const kept = cache.retainedPositions(s.layer, h).length;
                assert.ok(kept <= bound, `${cache.spec.name}: head holds ${kept} > ${bound}`);
              }
              return;
            }
            const b = resolveCount(policy.budget as number, seen);
            if (policy.type === "tova" && policy.scope === "layer") {
              // The paper's TOVA: one token set per layer, within the budget.
              const first = [...cache.retainedPositions(s.layer, 0)].sort((x, y) => x - y);
              assert.ok(first.length <= b, `${cache.spec.name}: holds ${first.length} > ${b}`);
              for (let h = 1; h < shape.nKvHeads; h++)
                assert.deepEqual(
                  [...cache.retainedPositions(s.layer, h)].sort((x, y) => x - y),
                  first,
                );
              return;
            }
            if (policy.type === "duo") {
              // Retrieval heads may hold more than b; all heads together never more than the uniform total.
              let all = 0;
              for (let l = 0; l < shape.nLayers; l++)
                for (let h = 0; h < shape.nKvHeads; h++) all += cache.retainedPositions(l, h).length;
              assert.ok(all <= b * shape.nLayers * shape.nKvHeads, `${cache.spec.name}: total ${all}`);
              return;
            }
            if (ALLOCATIONS.has(policy.type)) {
              // The layer's heads together within their share; all layers within the uniform total.
              let layerHeld = 0;
              for (let h = 0; h < shape.nKvHeads; h++)
                layerHeld += cache.retainedPositions(s.layer, h).length;
              const cap = layerCap(policy, s.layer, shape.nLayers, b) * shape.nKvHeads;
              assert.ok(layerHeld <= cap, `${cache.spec.name}: layer ${s.layer} holds ${layerHeld} > ${cap}`);
              if (s.layer === shape.nLayers - 1) {
                let all = 0;
                for (let l = 0; l < shape.nLayers; l++)
                  for (let h = 0; h < shape.nKvHeads; h++) all += cache.retainedPositions(l, h).length;
                assert.ok(all <= b * shape.nLayers * shape.nKvHeads, `${cache.spec.name}: total ${all}`);
              }
              return;
            }
            for (let h = 0; h < shape.nKvHeads; h++) {
              const kept = cache.retainedPositions(s.layer, h);
              assert.ok(kept.length <= b, `${cache.spec.name}: head holds ${kept.length} > budget ${b}`);
              if (policy.type === "sinks") {
                const sinks = policy.sinks as number;
                for (let p = 0; p < Math.min(sinks, seen); p++)
                  assert.ok(kept.includes(p), `sink ${p} evicted`);
                for (let p = Math.max(0, seen - (b - sinks)); p < seen; p++)
                  assert.ok(kept.includes(p), `recent token ${p} evicted`);
              }
              if (policy.type === "window") assert.deepEqual([...kept], range(Math.max(0, seen - b), seen));
              if (policy.type === "h2o") {
                const r =
                  (policy.recent as number) < 1
                    ? Math.floor((policy.recent as number) * b)
                    : Math.min(policy.recent as number, b);
                for (let p = Math.max(0, seen - r); p < seen; p++)
                  assert.ok(kept.includes(p), `recent ${p} evicted`);
              }
            }
          });
          // Memory: retained rows + positions (unless implicit) + the policy's declared state.
          const m = cache.memory();
          let slots = 0;
          for (let l = 0; l < shape.nLayers; l++)
            for (let h = 0; h < shape.nKvHeads; h++) slots += cache.retainedPositions(l, h).length;
          assert.equal(m.tokenSlots, slots);
          const own = inner(policy);
          const stateType = ALLOCATIONS.has(own.type) ? scorerType(own) : own.type;
          const meta =
            (IMPLICIT_POSITIONS.has(own.type) ? 0 : 4 * slots) +
            (STATE_BYTES[stateType] ?? 0) * slots +
            fixedState(
              ALLOCATIONS.has(own.type) ? { type: stateType, ...(own.scorer as object) } : own,
              shape,
            );
          if (policy.type === "tiered") {
            // Two row sizes: the per-tier sum is checked in tiered.test.ts; here the parts add up.
            assert.equal(m.total, m.payload + m.scales + m.zeros + m.residual + m.indices + m.policyState);
          } else if (cache.spec.keys.axis === "channel") {
            // Channel keys: the parts are checked in channel-cache.test.ts; here the sum and the values' rows.
            const v = rowBytes(sideCodec(cache.spec.values).layout(shape.headDim));
            assert.equal(m.total, m.payload + m.scales + m.zeros + m.residual + m.indices + m.policyState);
            assert.ok(m.total >= slots * v + meta);
            assert.equal(
              m.policyState,
              (STATE_BYTES[stateType] ?? 0) * slots +
                fixedState(
                  ALLOCATIONS.has(own.type) ? { type: stateType, ...(own.scorer as object) } : own,
                  shape,
                ),
            );
          } else {
            const row =
              rowBytes(sideCodec(kB).layout(shape.headDim)) +
              rowBytes(sideCodec(cache.spec.values).layout(shape.headDim));
            assert.equal(
              m.total,
              slots * row + meta,
              `${cache.spec.name}: memory ${m.total} != rows + metadata`,
            );
            assert.equal(m.residual, 0);
          }
          cache.dispose();
        }
      },
    ),
    { numRuns: 120 },
  );
});

test("window and sinks with a budget covering the stream equal full exactly", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("f32", "int4", "int2", "fp8-e4m3"),
      chunksArb,
      fc.integer({ min: 1, max: 30 }),
      fc.constantFrom<PolicySpec>(
        { type: "window", budget: 30 },
        { type: "sinks", sinks: 2, budget: 30 },
        { type: "h2o", budget: 30 },
        { type: "tova", budget: 30 },
      ),
      async (codec, chunks, n, policy) => {
        const shape = smallShape();
        const full = await makeCache(codec, shape);
        const other = await makeCache({ codec, policy }, shape);
        const outs: Float32Array[] = [];
        drive(full, shape, n, chunks, 3, (s) => outs.push(s.out));
        let i = 0;
        drive(other, shape, n, chunks, 3, (s) => assert.deepEqual(s.out, outs[i++]));
        assert.equal(other.stats().evicted, 0);
      },
    ),
    { numRuns: 40 },
  );
});

test("every registered policy has a description and a paper, and rejects unknown options with a path", () => {
  for (const [name, entry] of Object.entries(POLICIES)) {
    assert.equal(entry.name, name);
    assert.ok(entry.description.length > 10, `${name}: description`);
    if (name !== "full") assert.ok(entry.paper && entry.paper.length > 5, `${name}: paper`);
    const spec =
      name === "full"
        ? { type: name, bogus: 1 }
        : name === "interval"
          ? { type: name, every: 2, policy: { type: "window", budget: 4 }, bogus: 1 }
          : { type: name, budget: 4, bogus: 1 };
    assert.throws(() => entry.parse(spec, "caches[0].policy"), /caches\[0\]\.policy\.bogus/);
  }
  assert.throws(() => POLICIES.h2o!.parse({ type: "h2o" }, "p"), /p\.budget/);
  assert.throws(() => POLICIES.h2o!.parse({ type: "h2o", budget: 2.5 }, "p"), /p\.budget/);
  assert.throws(() => POLICIES.sinks!.parse({ type: "sinks", sinks: 8, budget: 8 }, "p"), /p\.sinks/);
});

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
}

test("every preset has a description and a paper, and builds a working cache", async () => {
  for (const [name, p] of Object.entries(PRESETS)) {
    assert.ok(p.description.length > 10, `${name}: description`);
    assert.ok(p.paper && p.paper.length > 5, `${name}: paper`);
    const shape = smallShape(isGgml(name) ? { nLayers: 1, headDim: 32 } : { nLayers: 1 });
    const cache = await makeCache(name, shape);
    assert.equal(cache.spec.name, name);
    drive(cache, shape, 6, [2], 1, (s) => assert.ok(s.out.every(Number.isFinite)));
    assert.equal(cache.memory().tokenSlots, 6 * shape.nKvHeads);
  }
});
