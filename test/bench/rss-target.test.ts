/**
 * bench/sections/forward.ts rssTarget: the peak RSS target holds the installed form's figure
 * (dist/cli.js), the checkout's (tsx) beside it, and falls back to the (larger) tsx figure
 * only when dist was not measured (bench/lib/kvlab-cli.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ForwardRecord, rssTarget } from "../../bench/sections/forward.ts";

const rec = (threads: number, dist: number | null, tsx: number | null): ForwardRecord => ({
  model: "m",
  threads,
  mode: "prompt",
  tokensPerS: 1,
  wallS: 1,
  maxRssMiB: tsx,
  maxRssDistMiB: dist,
  modelMemMiB: 400,
  weightGBps: 0,
  xDramRead: null,
});

test("rssTarget: the worst installed figure over the model memory, the checkout's in the detail", () => {
  const t = rssTarget("m", [rec(1, 480, 504), rec(2, 492, 520)]);
  assert.equal(t.measured, 492 / 400);
  assert.equal(t.pass, true);
  assert.match(t.detail, /installed \(dist\) 492 vs 400 MiB; checkout \(tsx\) 520 MiB = 1\.30/);
});

test("rssTarget: without a dist figure the tsx one is held, and said so", () => {
  const t = rssTarget("m", [rec(1, null, 540), rec(2, null, 560)]);
  assert.equal(t.measured, 560 / 400);
  assert.equal(t.pass, false);
  assert.match(t.detail, /dist not measured/);
  assert.equal(rssTarget("m", []).measured, null);
});
