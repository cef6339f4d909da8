/** Reading only the prefix of a text that a protocol needs gives the whole text's first ids. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { tokensOfFile } from "../../src/eval/text-tokens.ts";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import { loadModel } from "../../src/model/load.ts";

test("tokensOfFile: prefix ids equal the whole text's, and bytes past the prefix are never read", async () => {
  const m = await loadModel(join(REPO_ROOT, "models/sotu-llama"), { executor: "ref" });
  try {
    const dir = await mkdtemp(join(tmpdir(), "kvlab-prefix-"));
    const heldout = readFileSync(join(REPO_ROOT, "data/sotu/heldout.txt"));
    // 4 copies of the held-out text (~1.2 MB), then bytes that are not UTF-8.
    const file = join(dir, "big.txt");
    writeFileSync(file, Buffer.concat([heldout, heldout, heldout, heldout, Buffer.from([0xff, 0xfe, 0x41])]));
    const whole = m.tokenizer.encode(heldout.toString("utf8").repeat(4));
    for (const need of [1, 777, 5000, 20000]) {
      const ids = tokensOfFile(m.tokenizer, file, need);
      assert.ok(ids.length >= need, `${ids.length} < ${need}`);
      assert.deepEqual(ids, whole.slice(0, ids.length), `need ${need}`);
    }
    // Asking for the whole file reads it all, so the bad bytes at its end are found.
    assert.throws(() => tokensOfFile(m.tokenizer, file), /invalid UTF-8/);
  } finally {
    m.dispose();
  }
});
