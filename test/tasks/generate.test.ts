/** Task generators: deterministic, within length, the fact where the depth says, templates in step with the trainer. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO_ROOT } from "../../src/experiment/paths.ts";
import type { LanguageModel } from "../../src/model/llama.ts";
import { loadModel } from "../../src/model/load.ts";
import { generateSamples, TASK_NAMES, type TaskSpec } from "../../src/tasks/generate.ts";
import { KV_RECALL, PASSKEY, VARIABLE_TRACKING } from "../../src/tasks/templates.ts";

const haystack = readFileSync(join(REPO_ROOT, "data/sotu/heldout.txt"), "utf8");

describe("task generators", () => {
  let m: LanguageModel;
  before(async () => {
    m = await loadModel(join(REPO_ROOT, "models/sotu-llama"), { executor: "ref" });
  });
  after(() => m.dispose());

  const spec = (task: TaskSpec["task"], extra: Partial<TaskSpec> = {}): TaskSpec => ({
    task,
    lengths: [128, 300],
    depths: [0, 0.5, 1],
    samples: 2,
    seed: 3,
    haystack,
    ...extra,
  });

  for (const task of TASK_NAMES) {
    it(`${task}: deterministic, fits the length, fact at its depth`, () => {
      const a = generateSamples(m.tokenizer, spec(task));
      const b = generateSamples(m.tokenizer, spec(task));
      assert.deepEqual(a, b);
      assert.equal(a.length, 2 * 3 * 2);
      for (const s of a) {
        const n = s.context.length + s.question.length;
        assert.ok(n <= s.length, `${n} tokens > ${s.length}`);
        // Filled up to within one filler unit (a haystack sentence can be long).
        assert.ok(
          n >= (task === "needle" ? s.length * 0.4 : s.length - 64),
          `${n} tokens is far below ${s.length}`,
        );
        assert.equal(s.context[0], m.tokenizer.bosId);
        // The whole prompt tokenized at once equals context + question.
        const text = m.tokenizer.decode([...s.context, ...s.question]);
        assert.deepEqual(m.tokenizer.encode(text), [...s.context, ...s.question]);
        // The fact's tokens decode to text containing the answer's source (the key, value or statement).
        const fact = m.tokenizer.decode(s.context.slice(s.factTokens[0], s.factTokens[1]));
        const probe = task === "vt" ? s.answer.split(" ")[0]! : s.answer;
        assert.ok(fact.includes(probe), `${task}: fact ${JSON.stringify(fact)} lacks ${probe}`);
      }
    });
  }

  for (const task of ["passkey", "kv-recall"] as const)
    it(`${task}: deeper facts sit later (uniform filler units)`, () => {
      const a = generateSamples(m.tokenizer, spec(task, { haystack: undefined }));
      for (const len of [128, 300])
        for (let i = 0; i < 2; i++) {
          const at = [0, 0.5, 1].map(
            (d) => a.find((s) => s.length === len && s.depth === d && s.index === i)!,
          );
          const ctx = at[2]!.context.length;
          const intro = m.tokenizer.encode(task === "passkey" ? PASSKEY.intro : KV_RECALL.intro).length;
          assert.ok(
            at[0]!.factTokens[0] <= intro,
            `${task} ${len}: depth 0 fact at token ${at[0]!.factTokens[0]}`,
          );
          assert.ok(at[0]!.factTokens[0] < at[1]!.factTokens[0], `${task} ${len}: depth 0 not before 0.5`);
          assert.ok(at[1]!.factTokens[0] <= at[2]!.factTokens[0], `${task} ${len}: depth 0.5 after 1`);
          assert.ok(at[2]!.factTokens[1] >= ctx - 2, `${task} ${len}: depth 1 fact does not end the context`);
        }
    });

  it("cells are independent of the rest of the grid", () => {
    const small = generateSamples(m.tokenizer, spec("passkey", { lengths: [300], depths: [0.5] }));
    const big = generateSamples(m.tokenizer, spec("passkey"));
    const same = big.filter((s) => s.length === 300 && s.depth === 0.5);
    assert.deepEqual(same, small);
    const other = generateSamples(m.tokenizer, spec("passkey", { seed: 4, lengths: [300], depths: [0.5] }));
    assert.notDeepEqual(other[0]!.answer, small[0]!.answer);
  });

  it("passkey without a haystack repeats the classic filler; control prompts lack the fact", () => {
    const [s] = generateSamples(
      m.tokenizer,
      spec("passkey", { haystack: undefined, lengths: [256], depths: [0.5], samples: 1 }),
    );
    const text = m.tokenizer.decode(s!.context);
    assert.ok(text.startsWith(PASSKEY.intro));
    assert.ok(text.split(PASSKEY.filler).length > 3);
    assert.ok(text.includes(PASSKEY.needle(s!.answer)));
    const [c] = generateSamples(
      m.tokenizer,
      spec("passkey", { haystack: undefined, lengths: [256], depths: [0.5], samples: 1, control: true }),
    );
    const ctext = m.tokenizer.decode(c!.context);
    assert.ok(!ctext.includes("The pass key is"));
    assert.deepEqual(c!.question, s!.question);
  });

  it("refuses impossible grids with the field named", () => {
    assert.throws(() => generateSamples(m.tokenizer, spec("passkey", { lengths: [20] })), /lengths/);
    assert.throws(() => generateSamples(m.tokenizer, spec("passkey", { depths: [1.5] })), /depths/);
    assert.throws(() => generateSamples(m.tokenizer, spec("needle", { haystack: undefined })), /haystack/);
    assert.throws(() => generateSamples(m.tokenizer, spec("passkey", { samples: 0 })), /samples/);
  });
});

describe("task templates", () => {
  it("are the ones the built-in model was trained on (tools/train-builtin/episodes.py)", () => {
    const py = readFileSync(join(REPO_ROOT, "tools/train-builtin/episodes.py"), "utf8");
    // Python string literals as the trainer writes them ("\n" escaped).
    const lit = (s: string) => JSON.stringify(s).slice(1, -1);
    for (const s of [
      PASSKEY.intro,
      PASSKEY.filler,
      PASSKEY.needle("{key}"),
      PASSKEY.question,
      KV_RECALL.intro,
      KV_RECALL.line("{key}", "{value}"),
      KV_RECALL.question("{key}"),
      VARIABLE_TRACKING.intro,
      VARIABLE_TRACKING.assignValue("{name}", "{value}"),
      VARIABLE_TRACKING.assignVar("{name}", "{prev}"),
      VARIABLE_TRACKING.question("{value}"),
    ])
      assert.ok(py.includes(`"${lit(s)}"`), `episodes.py lacks ${lit(s)}`);
  });
});
