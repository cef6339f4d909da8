/** `kvlab task`: long-context retrieval accuracy (passkey, needle, kv-recall, vt) under one KV cache backend. */
import type { Command } from "commander";
import { createCache } from "../cache/create.ts";
import { resolveCacheSpec } from "../cache/spec.ts";
import { ConfigError } from "../errors.ts";
import { contextWarning } from "../eval/probe.ts";
import { REPO_ROOT, resolveTextRef } from "../experiment/paths.ts";
import { loadModel } from "../model/load.ts";
import { DEFAULT_PREFILL_CHUNK, evaluateTask, type TaskProtocol } from "../tasks/evaluate.ts";
import {
  generateSamples,
  type MatchRule,
  TASK_NAMES,
  type TaskName,
  type TaskSpec,
} from "../tasks/generate.ts";
import { parseCacheOption, parseIntOption, readText } from "./ppl.ts";

interface TaskCliOptions {
  model: string;
  haystack?: string;
  length: string;
  depths: string;
  samples: string;
  cache: string;
  protocol: string;
  prefillChunk: string;
  seed: string;
  match?: string;
  needle?: string;
  question?: string;
  answer?: string;
  executor?: string;
  tokenizer?: string;
  samplesOut?: boolean;
  control?: boolean;
  json?: boolean;
}

function parseList(flag: string, s: string, parse: (x: string) => number): number[] {
  const out = s.split(",").map((x) => {
    const v = parse(x.trim());
    if (!Number.isFinite(v))
      throw new ConfigError(flag, `expected a comma-separated list of numbers, got "${s}"`);
    return v;
  });
  if (out.length === 0) throw new ConfigError(flag, "expected at least one value");
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function register(program: Command): void {
  program
    .command("task")
    .description(
      "long-context retrieval accuracy under a KV cache backend (greedy decoding, exact/contains match)",
    )
    .argument("<task>", TASK_NAMES.join(" | "))
    .requiredOption("--model <path>", "HF directory, llama2.c .bin or .gguf file")
    .option("--haystack <file>", "text the filler is cut from (needle: default the built-in held-out text)")
    .option("--length <tokens>", "prompt lengths in tokens, comma-separated", "512")
    .option("--depths <list>", "fact depths in [0, 1], comma-separated", "0,0.25,0.5,0.75,1")
    .option("--samples <n>", "samples per (length, depth) cell", "5")
    .option("--cache <spec>", "cache spec: codec or preset name, or JSON", "f32")
    .option(
      "--protocol <p>",
      "agnostic (question after the context is compressed) | aware (question in the prefill)",
      "agnostic",
    )
    .option("--prefill-chunk <n>", "tokens per prefill forward call", String(DEFAULT_PREFILL_CHUNK))
    .option("--seed <s>", "sample seed", "0")
    .option("--match <rule>", "digits | contains | exact | all-words (default: per task)")
    .option("--needle <sentence>", "needle: your own statement (with --question and --answer)")
    .option("--question <text>", "needle: the question; it should end where the answer starts")
    .option("--answer <text>", "needle: the expected answer")
    .option("--executor <name>", "ref | wasm | webgpu (default: wasm)")
    .option("--tokenizer <file>", "llama2.c only: tokenizer.bin (default: beside the checkpoint)")
    .option("--control", "leave the fact out (same filler and question): the score of a model never shown it")
    .option("--samples-out", "with --json: include every sample's output")
    .option("--json", "print one JSON object")
    .action(async (taskArg: string, o: TaskCliOptions) => {
      if (!(TASK_NAMES as readonly string[]).includes(taskArg))
        throw new ConfigError("<task>", `expected one of ${TASK_NAMES.join(", ")}, got "${taskArg}"`);
      const task = taskArg as TaskName;
      const protocol = o.protocol as TaskProtocol;
      if (protocol !== "agnostic" && protocol !== "aware")
        throw new ConfigError("--protocol", `expected agnostic or aware, got "${o.protocol}"`);
      const rules: MatchRule[] = ["digits", "contains", "exact", "all-words"];
      if (o.match !== undefined && !rules.includes(o.match as MatchRule))
        throw new ConfigError("--match", `expected one of ${rules.join(", ")}, got "${o.match}"`);
      const custom = [o.needle, o.question, o.answer].filter((x) => x !== undefined).length;
      if (custom !== 0 && custom !== 3)
        throw new ConfigError("--needle", "give --needle, --question and --answer together");
      if (custom === 3 && task !== "needle")
        throw new ConfigError("--needle", "only the needle task takes a needle");
      let haystackFile = o.haystack;
      if (haystackFile === undefined && task === "needle")
        haystackFile = resolveTextRef("builtin:sotu", REPO_ROOT);
      const spec: TaskSpec = {
        task,
        lengths: parseList("--length", o.length, Number),
        depths: parseList("--depths", o.depths, Number),
        samples: parseIntOption("--samples", o.samples, 1)!,
        seed: parseIntOption("--seed", o.seed, 0)!,
        ...(haystackFile !== undefined ? { haystack: readText(haystackFile) } : {}),
        ...(custom === 3
          ? { needle: { statement: o.needle!, question: o.question!, answer: o.answer! } }
          : {}),
        ...(o.match !== undefined ? { match: o.match as MatchRule } : {}),
        ...(o.control ? { control: true } : {}),
      };
      const prefillChunk = parseIntOption("--prefill-chunk", o.prefillChunk, 1)!;
      const input = parseCacheOption(o.cache);
      const cacheSpec = resolveCacheSpec(input, "--cache"); // validate before the slow part
      const model = await loadModel(o.model, { executor: o.executor, tokenizer: o.tokenizer });
      try {
        const tooLong = contextWarning(model.config, Math.max(...spec.lengths));
        const warnings = tooLong ? [tooLong] : [];
        for (const w of warnings) if (!o.json) console.error(`warning: ${w}`);
        const samples = generateSamples(model.tokenizer, spec);
        const progress = !o.json && process.stderr.isTTY;
        let right = 0;
        const r = await evaluateTask(
          model,
          samples,
          (shape) => createCache(input, shape, { executor: model.executor }),
          {
            protocol,
            prefillChunk,
            ...(progress
              ? {
                  onSample: (s, d, t) => {
                    if (s.correct) right++;
                    process.stderr.write(`\r[${d}/${t}] ${right} right`);
                  },
                }
              : {}),
          },
        );
        if (progress) process.stderr.write("\n");
        const { samples: perSample, ...summary } = r;
        const out = {
          model: model.source,
          cache: cacheSpec.name,
          executor: model.executor.name,
          seed: spec.seed,
          control: spec.control === true,
          ...summary,
          ...(warnings.length ? { warnings } : {}),
          ...(o.samplesOut ? { samples: perSample } : {}),
        };
        if (o.json) {
          console.log(JSON.stringify(out));
          return;
        }
        console.log(
          `${out.model}  task=${task}  protocol=${protocol}  cache=${out.cache}  executor=${out.executor}  seed=${spec.seed}`,
        );
        const depths = spec.depths.map(String);
        console.log(["length \\ depth", ...depths, "all"].join("\t"));
        for (const len of spec.lengths) {
          const row = depths.map((d) => {
            const c = r.cells.find((x) => x.length === len && String(x.depth) === d)!;
            return `${c.correct}/${c.total}`;
          });
          console.log([String(len), ...row, pct(r.byLength[String(len)]!)].join("\t"));
        }
        console.log(
          `accuracy ${pct(r.accuracy)} (${r.correct}/${r.total}, 95% Wilson ${pct(r.interval[0])}-${pct(r.interval[1])})`,
        );
        console.log(
          `first answer token: mean probability ${r.meanAnswerProb.toFixed(3)}, median rank ${r.medianAnswerRank}`,
        );
        console.log(`KV cache when the question is read: ${Math.round(r.kvBytes)} bytes (mean)`);
      } finally {
        model.dispose();
      }
    });
}
