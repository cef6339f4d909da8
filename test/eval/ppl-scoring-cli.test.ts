/**
 * kvlab ppl reports KVzip's scoring forwards (the extra compute of a policy that asks for
 * them, src/eval/scoring-pass.ts) in --json and in its text output, so a user comparing
 * tokens/s sees the cost that is not in the measured forward.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../../src/experiment/paths.ts";

const CTX = 128;
const CHUNK = 32;

function ppl(extra: string[]) {
  const args = ["bin/kvlab.js", "ppl", "--model", "models/sotu-llama", "--text", "data/sotu/heldout.txt"];
  const run = spawnSync(
    process.execPath,
    [
      ...args,
      "--protocol",
      "chunked",
      "--ctx",
      `${CTX}`,
      "--chunk-size",
      `${CHUNK}`,
      "--chunks",
      "1",
      ...extra,
    ],
    { cwd: REPO_ROOT, encoding: "utf8" },
  );
  assert.equal(run.status, 0, run.stderr);
  return run.stdout;
}

describe("kvlab ppl: scoring forwards", { timeout: 120_000 }, () => {
  const cache = JSON.stringify({ policy: { type: "kvzip", budget: 48 } });
  it("--json carries passes, tokens and scratch bytes of the scoring forwards", () => {
    const out = JSON.parse(ppl(["--cache", cache, "--json"]).trim().split("\n").pop()!);
    const sc = out.scoring;
    assert.ok(sc, "scoring missing from --json");
    // One scoring pass per prefill chunk; each feeds its chunk into the context copy, then the
    // prompt and the chunk again (the repeat).
    assert.equal(sc.passes, CTX / CHUNK);
    assert.equal(sc.tokens - sc.repeatTokens, CTX);
    assert.equal(sc.repeatTokens, sc.passes * (sc.promptTokens + CHUNK));
    assert.ok(sc.scratchBytes > 0 && sc.seconds >= 0);
  });
  it("the text output names them; a policy without scoring forwards prints no such line", () => {
    assert.match(ppl(["--cache", cache]), /scoring forwards: 4 passes, \d+ tokens/);
    assert.doesNotMatch(ppl(["--cache", "f16"]), /scoring forwards/);
    const plain = JSON.parse(ppl(["--cache", "f16", "--json"]).trim().split("\n").pop()!);
    assert.equal(plain.scoring, undefined);
  });
});
