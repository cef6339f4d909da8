/**
 * Broken model files give one clear line naming the file (and byte offset) and a non-zero exit
 * from the CLI, never a stack trace: truncated safetensors, a lying header length, an unknown
 * dtype, a config missing a field, an unsupported architecture, a shape mismatch.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, ModelFormatError } from "../../src/errors.ts";
import { loadModel } from "../../src/model/load.ts";
import { synthModel } from "../../src/model/synth.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
let dir = "";
let good = "";
let text = "";

before(() => {
  dir = mkdtempSync(join(tmpdir(), "kvlab-errors-"));
  good = synthModel({ shape: "tiny", out: join(dir, "good"), seed: 1, dtype: "f32" });
  text = join(dir, "text.txt");
  writeFileSync(text, "Once upon a time there was a tiny model. ".repeat(20));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the good model with `mutate` applied. */
function broken(name: string, mutate: (d: string) => void): string {
  const d = join(dir, name);
  cpSync(good, d, { recursive: true });
  mutate(d);
  return d;
}

function cli(model: string) {
  return spawnSync(
    process.execPath,
    [join(root, "bin/kvlab.js"), "ppl", "--model", model, "--text", text, "--ctx", "16", "--executor", "ref"],
    { encoding: "utf8", cwd: root },
  );
}

function assertOneLineError(r: ReturnType<typeof cli>, pattern: RegExp) {
  assert.notEqual(r.status, 0, "exit code");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

const st = (d: string) => join(d, "model.safetensors");

describe("broken models", () => {
  test("the good model runs through the CLI", () => {
    const r = cli(good);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /PPL \d/);
  });

  test("truncated safetensors: file, byte offset, 'truncated'", async () => {
    const d = broken("trunc", (d) => truncateSync(st(d), readFileSync(st(d)).length - 100));
    await assert.rejects(loadModel(d, { executor: "ref" }), (e: unknown) => {
      assert.ok(e instanceof ModelFormatError);
      assert.equal(e.file, st(d));
      assert.equal(e.offset, readFileSync(st(d)).length);
      return true;
    });
    assertOneLineError(cli(d), /model\.safetensors \(byte \d+\): .*truncated/);
  });

  test("header length that runs past the end of the file", async () => {
    const d = broken("lying", (d) => {
      const b = readFileSync(st(d));
      b.writeBigUInt64LE(BigInt(b.length * 2), 0);
      writeFileSync(st(d), b);
    });
    assertOneLineError(cli(d), /model\.safetensors \(byte 0\): header length \d+ runs past the end/);
  });

  test("header length that is too short (JSON cut in the middle)", async () => {
    const d = broken("short", (d) => {
      const b = readFileSync(st(d));
      b.writeBigUInt64LE(b.readBigUInt64LE(0) - 10n, 0);
      writeFileSync(st(d), b);
    });
    assertOneLineError(cli(d), /model\.safetensors \(byte 8\): header .* not valid JSON/);
  });

  test("unknown dtype", async () => {
    const d = broken("dtype", (d) => {
      const b = readFileSync(st(d));
      const s = b.toString("latin1").replace('"dtype":"F32"', '"dtype":"Q9X"');
      writeFileSync(st(d), Buffer.from(s, "latin1"));
    });
    assertOneLineError(cli(d), /unknown dtype "Q9X"/);
  });

  test("config missing a field", async () => {
    const d = broken("nofield", (d) => {
      const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      delete c.hidden_size;
      writeFileSync(join(d, "config.json"), JSON.stringify(c));
    });
    await assert.rejects(loadModel(d, { executor: "ref" }), ConfigError);
    assertOneLineError(cli(d), /config\.json: hidden_size: missing required field/);
  });

  test("unsupported architecture is named", async () => {
    const d = broken("arch", (d) => {
      const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      c.architectures = ["GPTNeoXForCausalLM"];
      writeFileSync(join(d, "config.json"), JSON.stringify(c));
    });
    assertOneLineError(cli(d), /unsupported architecture "GPTNeoXForCausalLM"/);
  });

  test("shape mismatch between config and tensors", async () => {
    const d = broken("shape", (d) => {
      const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      c.intermediate_size += 1;
      writeFileSync(join(d, "config.json"), JSON.stringify(c));
    });
    assertOneLineError(
      cli(d),
      /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[48, 32\] but the config implies \[49, 32\]/,
    );
  });

  test("missing tensor", async () => {
    const d = broken("missing", (d) => {
      const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      c.num_hidden_layers = 3;
      writeFileSync(join(d, "config.json"), JSON.stringify(c));
    });
    assertOneLineError(cli(d), /missing tensor "model\.layers\.2\.input_layernorm\.weight"/);
  });

  test("truncated GGUF and llama2.c files", async () => {
    const gg = join(dir, "x.gguf");
    writeFileSync(gg, Buffer.from([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0, 5]));
    assertOneLineError(cli(gg), /x\.gguf \(byte 8\): tensor count needs 8 bytes/);
    const l2 = join(dir, "x.bin");
    const h = Buffer.alloc(28 + 64);
    for (const [i, v] of [32, 48, 2, 4, 2, 320, 64].entries()) h.writeInt32LE(v, i * 4);
    writeFileSync(l2, h);
    writeFileSync(join(dir, "tokenizer.bin"), Buffer.alloc(4));
    assertOneLineError(cli(l2), /x\.bin \(byte 92\): .*truncated/);
  });
});
