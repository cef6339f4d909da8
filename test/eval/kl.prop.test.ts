import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { klExact, klFromTopK, logSoftmax, topK } from "../../src/eval/kl.ts";

const logits = (n: number) =>
  fc.array(fc.double({ min: -20, max: 20, noNaN: true }), { minLength: n, maxLength: n });

test("top-k KL is a lower bound of the exact KL, non-negative, and exact at k = vocab", () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 2, max: 40 })
        .chain((n) => fc.tuple(logits(n), logits(n), fc.integer({ min: 1, max: n }))),
      ([a, b, k]) => {
        const p = new Float64Array(a.length);
        const q = new Float64Array(b.length);
        logSoftmax(a, p);
        logSoftmax(b, q);
        const exact = klExact(p, q);
        const approx = klFromTopK(topK(p, k), q);
        const tol = 1e-6 * (1 + exact);
        assert.ok(approx >= -tol, `negative ${approx}`);
        assert.ok(approx <= exact + tol, `${approx} > exact ${exact}`);
        const full = klFromTopK(topK(p, a.length), q);
        assert.ok(Math.abs(full - exact) <= tol, `${full} vs ${exact}`);
      },
    ),
    { numRuns: 300 },
  );
});
