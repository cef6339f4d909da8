import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ModelFormatError } from "../../src/errors.ts";
import { topK } from "../../src/eval/kl.ts";
import { decodeBaseline, encodeBaseline, loadBaseline, saveBaseline } from "../../src/eval/kl-baseline.ts";

const logs = (ps: number[]) => Float64Array.from(ps, Math.log);

test("baseline file round-trips, pads short entries, and rejects stale keys and truncation", async () => {
  const entries = [topK(logs([0.5, 0.3, 0.2]), 4), topK(logs([0.1, 0.9, 0]), 2)];
  const b = { key: "abc", k: 4, targets: Int32Array.from([2, 1]), entries };
  const back = decodeBaseline(encodeBaseline(b));
  assert.equal(back.key, "abc");
  assert.deepEqual([...back.targets], [2, 1]);
  assert.deepEqual([...back.entries[0]!.ids], [0, 1, 2]);
  assert.deepEqual([...back.entries[1]!.ids], [1, 0]);
  assert.equal(back.entries[1]!.restMass, entries[1]!.restMass);

  const dir = await mkdtemp(join(tmpdir(), "kvlab-kl-"));
  const file = join(dir, "baseline.kvlb");
  await saveBaseline(file, b);
  assert.deepEqual(await readdir(dir), ["baseline.kvlb"]); // no temporary left behind
  assert.ok(await loadBaseline(file, "abc"));
  assert.equal(await loadBaseline(file, "other"), undefined);
  assert.equal(await loadBaseline(join(dir, "absent"), "abc"), undefined);
  const buf = await readFile(file);
  await writeFile(file, buf.subarray(0, buf.length - 3));
  await assert.rejects(loadBaseline(file, "abc"), ModelFormatError);
});
