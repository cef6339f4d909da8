/**
 * H2O against a naive implementation: after every step, the tokens a KV head keeps are the
 * `recent` newest plus exactly the top accumulated-attention tokens among the others (scores
 * summed over every query row, GQA group included, while the token was retained). The policy
 * is driven directly through a fake store that swap-removes like the cache, so slot moves are
 * exercised; probabilities are random (no ties).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { h2oPolicy } from "../../../src/cache/policies/h2o.ts";
import type { HeadView } from "../../../src/cache/policy.ts";
import { resolveCount } from "../../../src/cache/policy.ts";
import { rng, smallShape } from "./drive.ts";

test("h2o keeps exactly the recent window plus the top accumulated-score tokens (vs naive)", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constantFrom(0.2, 0.5)),
      fc.constantFrom(0.25, 0.5, 1, 3),
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer(),
      (budget, recent, chunks, nRowsPerQ, seed) => {
        const shape = smallShape({ nLayers: 1, nKvHeads: 1 });
        const policy = h2oPolicy({ budget, recent }, { shape, seed: 0 });
        const r = rng(seed);
        // Fake store: slot -> position, swap-remove on eviction.
        let positions = new Int32Array(64);
        let nSlots = 0;
        let seen = 0;
        const naive = new Map<number, number>(); // position -> accumulated score
        const view = (): HeadView => ({
          layer: 0,
          kvHead: 0,
          nSlots,
          positions,
          seen,
          decodeKeys() {},
        });
        for (const n of chunks) {
          if (nSlots + n > positions.length) {
            const p = new Int32Array(positions.length * 2);
            p.set(positions);
            positions = p;
          }
          for (let i = 0; i < n; i++) {
            positions[nSlots + i] = seen + i;
            naive.set(seen + i, 0);
          }
          const first = nSlots;
          nSlots += n;
          seen += n;
          policy.onAppend(view(), first, n);
          const nRows = nRowsPerQ * n;
          const probs = Float32Array.from({ length: nRows * nSlots }, () => Math.abs(r()));
          const qPos = Int32Array.from({ length: nRows }, (_, i) => seen - n + (i % n));
          policy.onAttention(view(), probs, nRows, qPos);
          for (let row = 0; row < nRows; row++)
            for (let j = 0; j < nSlots; j++)
              naive.set(positions[j]!, naive.get(positions[j]!)! + probs[row * nSlots + j]!);
          const drop = policy.evictions(view()).sort((a, b) => b - a);
          for (const slot of drop) {
            const last = nSlots - 1;
            if (slot !== last) {
              positions[slot] = positions[last]!;
              policy.onMove(0, 0, last, slot);
            }
            nSlots--;
          }
          // Naive: recent window by position, then the top scores among the rest.
          const b = resolveCount(budget, seen);
          const rc = Math.min(b, recent < 1 ? Math.floor(recent * b) : recent);
          const all = [...naive.keys()].sort((a, b2) => a - b2);
          const keep = new Set(all.slice(Math.max(0, all.length - rc)));
          const rest = all
            .slice(0, Math.max(0, all.length - rc))
            .sort((a, b2) => naive.get(b2)! - naive.get(a)!);
          for (const p of rest.slice(0, Math.max(0, b - keep.size))) keep.add(p);
          for (const p of all) if (!keep.has(p)) naive.delete(p);
          const got = [...positions.subarray(0, nSlots)].sort((a, b2) => a - b2);
          assert.deepEqual(
            got,
            [...keep].sort((a, b2) => a - b2),
          );
        }
      },
    ),
    { numRuns: 200 },
  );
});
