/**
 * tokensOfFile's first read is small for a small need (16 bytes per id, at least 4 KiB), so
 * `kvlab ppl --chunks` on a small model does not tokenize 64 KiB it never scores (the
 * tokenizer's garbage was most of its fixed peak RSS: results/bench/rss/README.md). Bytes past
 * the first read are never judged, so invalid UTF-8 there shows what was read.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { tokensOfFile } from "../../src/eval/text-tokens.ts";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import { loadModel } from "../../src/model/load.ts";

test("tokensOfFile reads 4 KiB first for a small need, 16 bytes per id for a larger one", async () => {
  const m = await loadModel(join(REPO_ROOT, "models/sotu-llama"), { executor: "ref" });
  try {
    const dir = await mkdtemp(join(tmpdir(), "kvlab-first-prefix-"));
    const text = readFileSync(join(REPO_ROOT, "data/sotu/heldout.txt"));
    const ascii = Buffer.from(text.toString("latin1").replace(/[^\x20-\x7e\n]/g, " "), "latin1");
    const whole = m.tokenizer.encode(ascii.toString("utf8"));
    // Valid text up to byte 5000, then a byte that is not UTF-8.
    const file = join(dir, "bad-at-5000.txt");
    writeFileSync(file, Buffer.concat([ascii.subarray(0, 5000), Buffer.from([0xff]), ascii.subarray(5000)]));
    for (const need of [1, 100, 250]) {
      // max(4096, 16 * need) <= 4096 < 5000: the bad byte is never read.
      const ids = tokensOfFile(m.tokenizer, file, need);
      assert.ok(ids.length >= need);
      assert.deepEqual(ids, whole.slice(0, ids.length), `need ${need}`);
    }
    // 16 * 320 = 5120 bytes: the first read covers the bad byte.
    assert.throws(() => tokensOfFile(m.tokenizer, file, 320), /invalid UTF-8/);
  } finally {
    m.dispose();
  }
});
