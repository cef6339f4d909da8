/**
 * Issue 12, items 6, 9 and 10: inputs that are not what they claim. Texts that are directories,
 * devices, unreadable paths or invalid UTF-8; `builtin:` names and sharded-index entries that
 * would leave their folder; a results folder used by two `kvlab run`s at once, and partial files
 * left by a killed one. Each ends in one KvlabError (one `error:` line from the CLI).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { ConfigError, ModelFormatError, UsageError } from "../../src/errors.ts";
import { resolveModelRef, resolveTextRef } from "../../src/experiment/paths.ts";
import { LOCK_FILE, lockResults, removeStalePartials } from "../../src/experiment/run-store.ts";
import { loadModel } from "../../src/model/load.ts";
import { firstInvalidUtf8, readTextFile } from "../../src/text-file.ts";
import { FUZZ_SEED, fuzzRuns } from "./fuzz.ts";
import { writeHfDir } from "./model-files.ts";

const root = mkdtempSync(join(tmpdir(), "kvlab-files-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  return r.pid!;
}

test("texts: a directory, /dev/zero, a 300-character name, a missing file are ModelFormatErrors naming the file", () => {
  const dir = join(root, "a-dir");
  mkdirSync(dir);
  for (const p of [dir, "/dev/zero", join(root, "x".repeat(300)), join(root, "missing.txt")])
    assert.throws(
      () => readTextFile(p),
      (e: unknown) => e instanceof ModelFormatError && e.file === p,
      p,
    );
});

test("texts: invalid UTF-8 is refused at the byte offset of the first bad sequence; valid text and a BOM are kept as stored", () => {
  const ok = join(root, "ok.txt");
  const text = "\uFEFFline one\r\nzwei \u00e4\u00f6 \u{1F600}\n";
  writeFileSync(ok, text, "utf8");
  assert.equal(readTextFile(ok), text);
  const bad = join(root, "bad.txt");
  writeFileSync(
    bad,
    Buffer.concat([Buffer.from("abc\u00e9", "utf8"), Buffer.from([0xff]), Buffer.from("z")]),
  );
  assert.throws(
    () => readTextFile(bad),
    (e: unknown) => e instanceof ModelFormatError && e.offset === 5,
  );
});

test("property: firstInvalidUtf8 agrees with a fatal TextDecoder on random bytes and on valid text", () => {
  const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const valid = (b: Uint8Array) => {
    try {
      dec.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.string({ unit: "binary", maxLength: 20 }).map((s) => new Uint8Array(Buffer.from(s, "utf8"))),
    // valid text with one byte changed
    fc
      .tuple(
        fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
      )
      .map(([s, i, x]) => {
        const b = new Uint8Array(Buffer.from(s, "utf8"));
        b[i % b.length] = x;
        return b;
      }),
  );
  fc.assert(
    fc.property(bytes, (b) => {
      const at = firstInvalidUtf8(b);
      assert.equal(at === -1, valid(b));
      if (at >= 0) {
        assert.ok(valid(b.subarray(0, at)), "the prefix before the offset is valid");
        assert.ok(!valid(b.subarray(0, Math.min(b.length, at + 4))) || at + 4 > b.length);
      }
    }),
    { seed: FUZZ_SEED, numRuns: fuzzRuns(2000) },
  );
});

test("experiment text resolution: directories and devices are ConfigErrors naming the text field", () => {
  const dir = join(root, "text-dir");
  mkdirSync(dir);
  for (const p of [dir, "/dev/zero", join(root, "y".repeat(300))])
    assert.throws(
      () => resolveTextRef(p, root),
      (e: unknown) => e instanceof ConfigError && e.path === "text",
      p,
    );
  assert.equal(resolveTextRef("nope.txt", root), join(root, "nope.txt"), "a missing file is reported later");
});

test("builtin: names cannot leave models/ or data/", () => {
  for (const ref of [
    "builtin:../..",
    "builtin:../../etc",
    "builtin:/etc",
    "builtin:a/b",
    "builtin:",
    "builtin:..",
    "builtin:.x",
  ]) {
    assert.throws(() => resolveModelRef(ref, root), ConfigError, ref);
    assert.throws(() => resolveTextRef(ref, root), ConfigError, ref);
  }
  assert.match(resolveModelRef("builtin:sotu-llama", root), /models[/\\]sotu-llama$/);
});

test("a sharded index whose weight_map points outside the model directory is refused", async () => {
  const dir = writeHfDir(join(root, "sharded"));
  for (const target of ["../../../etc/passwd", "/etc/passwd", "sub/../../x.safetensors", ""]) {
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { "model.norm.weight": target } }),
    );
    await assert.rejects(
      loadModel(dir, { executor: "ref" }),
      (e: unknown) =>
        e instanceof ModelFormatError &&
        e.file.endsWith("model.safetensors.index.json") &&
        /weight_map/.test(e.message),
      target,
    );
  }
  writeFileSync(
    join(dir, "model.safetensors.index.json"),
    '{"weight_map": {"a": "model.safetensors", "a": "model.safetensors"}}',
  );
  await assert.rejects(loadModel(dir, { executor: "ref" }), /duplicate key "a"/);
});

test("results lock: a live holder makes a second run fail fast naming it; a dead holder's lock is taken over", async () => {
  const out = join(root, "results", "exp");
  const release = await lockResults(out);
  await assert.rejects(
    lockResults(out),
    (e: unknown) => e instanceof UsageError && e.message.includes(`pid ${process.pid}`),
  );
  await release();
  assert.equal(existsSync(join(out, LOCK_FILE)), false, "released");
  // A lock left by a killed run.
  writeFileSync(
    join(out, LOCK_FILE),
    JSON.stringify({ pid: deadPid(), host: (await import("node:os")).hostname(), started: "then" }),
  );
  const again = await lockResults(out);
  await again();
  // A torn lock file (killed while writing it) is taken over too.
  writeFileSync(join(out, LOCK_FILE), '{"pid": 1');
  await (await lockResults(out))();
});

test("stale .partial-* files of dead writers are removed at start; live writers' are kept", async () => {
  const out = join(root, "results", "partials");
  mkdirSync(out, { recursive: true });
  const dead = deadPid();
  writeFileSync(join(out, `.partial-runs.jsonl-${dead}`), "x");
  writeFileSync(join(out, `.partial-table.md-${process.pid}`), "x");
  writeFileSync(join(out, ".partial-odd"), "x");
  writeFileSync(join(out, "runs.jsonl"), "");
  const release = await lockResults(out);
  await release();
  assert.deepEqual(readdirSync(out).sort(), [`.partial-table.md-${process.pid}`, "runs.jsonl"]);
  assert.deepEqual(await removeStalePartials(join(root, "no-such-dir")), []);
});

test("a results folder the OS refuses (name too long) is a ConfigError naming the field", async () => {
  await assert.rejects(
    lockResults(join(root, "results", "n".repeat(300))),
    (e: unknown) => e instanceof ConfigError && e.path === "name",
  );
});

test("CLI: bad texts end in one error: line and exit 1, no stack trace", () => {
  const model = writeHfDir(join(root, "cli-model"));
  const bad = join(root, "bad-cli.txt");
  writeFileSync(bad, Buffer.from([0x61, 0x62, 0xc3, 0x28]));
  const dir = join(root, "cli-dir");
  mkdirSync(dir);
  for (const text of [dir, "/dev/zero", bad]) {
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli.ts",
        "ppl",
        "--model",
        model,
        "--text",
        text,
        "--ctx",
        "8",
        "--executor",
        "ref",
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    const lines = r.stderr.trim().split("\n");
    assert.equal(r.status, 1, `${text}: ${r.stderr}`);
    assert.equal(lines.length, 1, `${text}: ${r.stderr}`);
    assert.match(lines[0]!, /^error: /);
    assert.ok(r.stderr.includes(text));
  }
});
