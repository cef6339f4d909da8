/**
 * A spec's name must not be read as what ran: an integer group wider than the model's head_dim
 * is narrowed to one group per row (issue 16: "g32" at head_dim 8), and records and
 * `kvlab ppl` name it. The expected notes are written from the rule, not from the code.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { resolveCacheSpec, storageNotes } from "../../src/cache/spec.ts";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import { sharedPath, skipUnlessShared } from "../shared.ts";

describe("storage notes: groups wider than head_dim", () => {
  it("int4 (group 32) at head_dim 8 names both sides; at head_dim 32 and 64 nothing", () => {
    const spec = resolveCacheSpec("int4");
    assert.equal(spec.keys.group, 32, "this test assumes int4's default group is 32");
    const notes = storageNotes(spec, 8);
    assert.equal(notes.length, 2);
    assert.match(notes[0]!, /^keys: int4 group 32 is wider than head_dim 8/);
    assert.match(notes[1]!, /^values: int4 group 32 is wider than head_dim 8/);
    assert.deepEqual(storageNotes(spec, 32), []);
    assert.deepEqual(storageNotes(spec, 64), []);
  });

  it("a group that fits, a whole-head group and float codecs give no note", () => {
    assert.deepEqual(storageNotes(resolveCacheSpec({ codec: { type: "int8", group: 8 } }), 8), []);
    assert.deepEqual(storageNotes(resolveCacheSpec({ codec: { type: "int8", group: "head" } }), 8), []);
    assert.deepEqual(storageNotes(resolveCacheSpec("f16"), 8), []);
  });

  it("channel-axis keys group tokens, not head elements: only the token-axis side is named", () => {
    const notes = storageNotes(resolveCacheSpec("kivi2"), 8);
    assert.ok(
      notes.every((n) => !n.startsWith("keys:")),
      notes.join("; "),
    );
  });

  const model = "models/stories260K/hf";
  it("kvlab ppl --json on stories260K (head_dim 8) with int4 carries the notes", {
    skip: skipUnlessShared(model),
    timeout: 120_000,
  }, () => {
    const text = sharedPath("data/wikitext-2-raw/wiki.test.raw");
    const args = ["bin/kvlab.js", "ppl", "--model", sharedPath(model)!, "--text", text!];
    const run = spawnSync(
      process.execPath,
      [...args, "--ctx", "64", "--chunks", "1", "--cache", "int4", "--json"],
      {
        cwd: REPO_ROOT,
        encoding: "utf8",
      },
    );
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split("\n").pop()!);
    assert.equal(out.warnings.filter((w: string) => /group 32 is wider than head_dim 8/.test(w)).length, 2);
    // What was built: 4-bit codes plus one f16 scale (and an f16 zero when asymmetric) per 8 values.
    const sym = resolveCacheSpec("int4").keys.symmetric;
    assert.equal(out.bitsPerElement, 4 + (16 * (sym ? 1 : 2)) / 8);
  });
});
