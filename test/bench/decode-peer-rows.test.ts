/**
 * bench/peers/decode-vs-llamacpp.ts: which llama.cpp row each kvlab row is compared with. A
 * "<q8_0|q4_0>+q8-query" row (q8_0 queries, the math of llama.cpp's CPU flash attention for those
 * K types) against llama.cpp's row of that type; the preset's own row (exact) against the same;
 * kvlab-only specs against nothing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type DecodeRow,
  decodeRatio,
  decodeTargetName,
  likeLlamaCpp,
} from "../../bench/peers/decode-vs-llamacpp.ts";

const row = (side: DecodeRow["side"], kv: string, median: number): DecodeRow => ({
  side,
  threads: 1,
  kv,
  windows: [median],
  steps: [128],
  median,
  attendShare: null,
  fallbacks: "",
  promptSeconds: null,
  load: 0,
});

test("decode peer rows: +q8-query compares with llama.cpp's row of its preset, exact with its own", () => {
  const kvTypes = ["f16", "q8_0", "q4_0"];
  assert.equal(likeLlamaCpp("q8_0", kvTypes), "q8_0");
  assert.equal(likeLlamaCpp("q8_0+q8-query", kvTypes), "q8_0");
  assert.equal(likeLlamaCpp("q4_0+q8-query", kvTypes), "q4_0");
  assert.equal(likeLlamaCpp("int8", kvTypes), null);
  assert.equal(likeLlamaCpp("q4_0+q8-query", ["q8_0"]), null); // no llama.cpp q4_0 row measured
  assert.equal(likeLlamaCpp("int8+q8-query", kvTypes), null); // not a llama.cpp cache type
  const rows = [
    row("kvlab", "q8_0", 18),
    row("kvlab", "q8_0+q8-query", 21),
    row("llama.cpp", "q8_0", 24),
    row("kvlab", "q4_0+q8-query", 20),
    row("llama.cpp", "q4_0", 16),
  ];
  assert.equal(decodeRatio(rows, 1, "q8_0", kvTypes), 18 / 24);
  assert.equal(decodeRatio(rows, 1, "q8_0+q8-query", kvTypes), 21 / 24);
  assert.equal(decodeRatio(rows, 1, "q4_0+q8-query", kvTypes), 20 / 16);
  assert.equal(decodeRatio(rows, 2, "q8_0", kvTypes), null); // other thread count: not measured
  assert.equal(decodeRatio(rows, 1, "q8_0+q8-query"), null); // without kvTypes: its own name only
  assert.notEqual(decodeTargetName("4K", "q8_0+q8-query", 1), decodeTargetName("4K", "q8_0", 1));
  assert.equal(
    decodeTargetName("4K", "q8_0", 1),
    "decode tok/s at 4K context q8_0 cache kvlab / llama.cpp (1 thr)",
  );
});
