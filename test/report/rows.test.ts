import assert from "node:assert/strict";
import { test } from "node:test";
import type { RunRecord } from "../../src/experiment/types.ts";
import { paretoFront, toRows } from "../../src/report/rows.ts";
import { record } from "./fixtures.ts";

test("rows: baseline first, then most memory first; dPPL against the baseline; errors last", () => {
  const rows = toRows([
    record("small", 8, 12),
    record("broken", 0, 0, { status: "error", error: "boom", metrics: undefined } as Partial<RunRecord>),
    record("base", 128, 10, { baseline: true }),
    record("mid", 32, 10.5),
  ]);
  assert.deepEqual(
    rows.map((r) => r.backend),
    ["base", "mid", "small", "broken"],
  );
  assert.equal(rows[1]!.dPpl, 0.5);
  assert.equal(rows[2]!.dPpl, 2);
  assert.equal(rows[3]!.ppl, null);
  assert.equal(rows[3]!.error, "boom");
  assert.equal(rows[1]!.fallbacks, 2);
});

test("Pareto front keeps points no other point beats on both memory and error", () => {
  const pts = [
    { x: 1, y: 9 },
    { x: 2, y: 5 },
    { x: 3, y: 6 }, // dominated by (2, 5)
    { x: 4, y: 1 },
    { x: 4, y: 2 }, // dominated by (4, 1)
    { x: 5, y: 1 }, // dominated by (4, 1): same error, more memory
  ];
  assert.deepEqual(
    paretoFront(
      pts,
      (p) => p.x,
      (p) => p.y,
    ),
    [pts[0], pts[1], pts[3]],
  );
});
