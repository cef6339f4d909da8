import assert from "node:assert/strict";
import { test } from "node:test";
import {
  argmax,
  KlAccumulator,
  klExact,
  klFromTopK,
  logSoftmax,
  percentile,
  topK,
} from "../../src/eval/kl.ts";

const logs = (ps: number[]) => Float64Array.from(ps, Math.log);

test("logSoftmax: exp sums to 1 and matches a hand computation", () => {
  const out = new Float64Array(3);
  logSoftmax([0, Math.log(2), Math.log(3)], out); // probabilities 1/6, 2/6, 3/6
  assert.ok(Math.abs(Math.exp(out[0]!) - 1 / 6) < 1e-12);
  assert.ok(Math.abs(Math.exp(out[2]!) - 0.5) < 1e-12);
  logSoftmax([1000, 1000], out.subarray(0, 2)); // no overflow
  assert.ok(Math.abs(out[0]! - Math.log(0.5)) < 1e-12);
});

test("KL(P||Q) on a hand-computed two-token case", () => {
  // P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3)
  const kl = klExact(logs([0.5, 0.5]), logs([0.25, 0.75]));
  assert.ok(Math.abs(kl - 0.5 * Math.log(4 / 3)) < 1e-12);
  assert.equal(klExact(logs([0.2, 0.8]), logs([0.2, 0.8])), 0);
});

test("top-k with k = vocab gives the exact KL; smaller k lumps the tail into a lower bound", () => {
  const p = logs([0.5, 0.3, 0.15, 0.05]);
  const q = logs([0.4, 0.3, 0.1, 0.2]);
  // Exact by hand: sum p ln(p/q).
  const exact = 0.5 * Math.log(0.5 / 0.4) + 0 + 0.15 * Math.log(0.15 / 0.1) + 0.05 * Math.log(0.05 / 0.2);
  assert.ok(Math.abs(klFromTopK(topK(p, 4), q) - exact) < 1e-6);
  // k = 2: tail {2,3} lumped: P_rest = 0.2, Q_rest = 0.3.
  const lumped = 0.5 * Math.log(0.5 / 0.4) + 0.2 * Math.log(0.2 / 0.3);
  const k2 = klFromTopK(topK(p, 2), q);
  assert.ok(Math.abs(k2 - lumped) < 1e-6);
  assert.ok(k2 <= exact + 1e-12);
});

test("topK returns ids by descending probability with the rest mass", () => {
  const e = topK(logs([0.1, 0.6, 0.05, 0.25]), 2);
  assert.deepEqual([...e.ids], [1, 3]);
  assert.ok(Math.abs(e.restMass - 0.15) < 1e-6);
});

test("same-top-1 and mean KL over tokens", () => {
  const acc = new KlAccumulator();
  acc.add(topK(logs([0.7, 0.3]), 2), logs([0.6, 0.4])); // same argmax
  acc.add(topK(logs([0.7, 0.3]), 2), logs([0.3, 0.7])); // different argmax
  const s = acc.summary();
  assert.equal(s.sameTop1, 0.5);
  const k1 = 0.7 * Math.log(0.7 / 0.6) + 0.3 * Math.log(0.3 / 0.4);
  const k2 = 0.7 * Math.log(0.7 / 0.3) + 0.3 * Math.log(0.3 / 0.7);
  assert.ok(Math.abs(s.klMean - (k1 + k2) / 2) < 1e-6);
  assert.equal(s.klTokens, 2);
});

test("percentile interpolates between order statistics; argmax takes the first maximum", () => {
  assert.equal(percentile([3, 1, 2, 4, 5], 0.5), 3);
  assert.equal(percentile([0, 10], 0.99), 9.9);
  assert.ok(Number.isNaN(percentile([], 0.99)));
  assert.equal(argmax([1, 3, 3, 2]), 1);
});

test("a tiny run tail keeps its digits: the lumped KL stays below the exact KL", () => {
  // fast-check found this: q's tail (id 2) is ~1e-12, and 1 - (q0 + q1) kept only ~4 digits
  // of it, so the lumped KL came out 4e-4 above the exact one.
  const p = new Float64Array(3);
  const q = new Float64Array(3);
  logSoftmax([0, 0, 0], p);
  logSoftmax([0, 16.464255943690986, -10.67104093061263], q);
  const exact = klExact(p, q);
  const lumped = klFromTopK(topK(p, 2), q);
  assert.ok(lumped <= exact + 1e-9 * exact, `${lumped} > exact ${exact}`);
  assert.ok(lumped > exact - 1e-6, `${lumped} far below exact ${exact} (tail is 1/3 of p)`);
});
