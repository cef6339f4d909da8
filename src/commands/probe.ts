/** `kvlab probe`: the gates a model must pass before its tables rank eviction policies (src/eval/probe.ts). */
import type { Command } from "commander";
import { ConfigError } from "../errors.ts";
import {
  COPY_RATIO_THRESHOLD,
  GATE_WINDOW,
  type ProbeResult,
  probeModel,
  SINK_THRESHOLD,
} from "../eval/probe.ts";
import { loadModel } from "../model/load.ts";
import { parseIntOption, readText } from "./ppl.ts";

interface ProbeCliOptions {
  model: string;
  text: string;
  ctx?: string;
  windows?: string;
  segments?: string;
  copyWindow?: string;
  executor?: string;
  tokenizer?: string;
  json?: boolean;
}

const HELP = `
Three probes, each on the same text (src/eval/probe.ts documents them):

  context curve  The text in segments of --ctx tokens (BOS first, the second half of each
                 segment scored, as kvlab ppl), decoded token by token with a full f32 cache
                 and with exact sliding windows (every query at every layer sees its W most
                 recent positions, itself included: policy window, budget W-1, chunk size 1).
                 Same scored tokens in every run, so per-token NLL differences are paired:
                 dNLL = NLL(window) - NLL(full) with a 95% interval from batch means over
                 blocks of 32 scored tokens, and z = dNLL / se. dNLL > 0: the window is worse.
  copy test      A text passage of P tokens (default (ctx-1)/2, at most 256) shown twice,
                 BOS + passage + passage; PPL of the second copy with the full cache and with
                 a short window (--copy-window, default 16). A model that copies has
                 full < ${COPY_RATIO_THRESHOLD} x window.
  sink           Mean softmax mass that query positions >= 8 put on position 0, per layer and
                 query head, recomputed from the q and k the cache receives (a recording
                 wrapper around the real cache) over up to 4 segments.

Gates (printed at the end, and under "gates" with --json):
  contextHelps   full-cache PPL below the ${GATE_WINDOW}-token window's, with the 95% interval of
                 dNLL above 0 (null when --ctx <= ${GATE_WINDOW})
  copies         second-copy PPL full < ${COPY_RATIO_THRESHOLD} x window
  sink           some head of a layer >= 1 puts more than ${SINK_THRESHOLD} of its mass on position 0

A model that fails contextHelps cannot show what eviction costs: a table ranking eviction
policies on it measures noise. Cost: one token-by-token pass over segments x ctx tokens per
window (and one for the full cache). --json prints one object (curve.points, copy, sinks,
gates, reasons, warnings). A --ctx beyond the model's trained positions (max_position_embeddings)
runs, with a warning: the full cache is then no reference.
`;

/** "16,32,64" -> [16, 32, 64]: integers >= 2. */
export function parseWindows(s: string): number[] {
  const out = s.split(",").map((x) => x.trim());
  return out.map((x) => {
    const n = Number(x);
    if (x === "" || !Number.isInteger(n) || n < 2)
      throw new ConfigError(
        "--windows",
        `expected integers >= 2 separated by commas, got ${JSON.stringify(s)}`,
      );
    return n;
  });
}

const num = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const yes = (b: boolean | null) => (b === null ? "n/a" : b ? "PASS" : "fail");

/** The human-readable report. */
export function formatProbe(r: ProbeResult): string {
  const L: string[] = [];
  const c = r.curve;
  L.push(
    `${r.model}  ctx=${r.nCtx} (trained positions ${r.trainedPositions})  segments=${c.segments}  executor=${r.executor}`,
  );
  for (const w of r.warnings) L.push(`warning: ${w}`);
  L.push("");
  L.push(
    `Context curve: ${c.scoredTokens} scored tokens, exact sliding windows, token by token; dNLL = NLL(window) - NLL(full), 95% CI from blocks of ${c.block}`,
  );
  L.push(
    `${"window".padStart(8)} ${"PPL".padStart(10)} ${"mean NLL".padStart(9)} ${"dNLL".padStart(9)} ${"95% CI".padStart(21)} ${"z".padStart(7)} ${"PPL/full".padStart(8)}`,
  );
  for (const p of c.points) {
    const d = p.delta;
    const ci = d ? `[${num(d.lo, 4)}, ${num(d.hi, 4)}]` : "";
    L.push(
      `${(p.window === null ? "full" : String(p.window)).padStart(8)} ${num(p.ppl, 3).padStart(10)} ${num(p.nll, 4).padStart(9)} ${(d ? num(d.mean, 4) : "").padStart(9)} ${ci.padStart(21)} ${(d ? num(d.z, 2) : "").padStart(7)} ${(d ? num(Math.exp(d.mean), 4) : "").padStart(8)}`,
    );
  }
  L.push(`lowest PPL: ${c.best === null ? "full cache" : `window ${c.best}`}`);
  L.push("");
  const k = r.copy;
  L.push(
    `Copy test: ${k.passages} passages of ${k.passage} tokens shown twice; ${k.scoredTokens} second-copy tokens scored`,
  );
  L.push(
    `  second copy: PPL full ${num(k.fullPpl, 3)}, window ${k.window} ${num(k.windowPpl, 3)}, ratio ${num(k.ratio, 3)} (copies if < ${k.threshold}); first copy, full: ${num(k.firstCopyPpl, 3)}`,
  );
  L.push("");
  const s = r.sinks;
  L.push(
    `First-token attention mass: queries at positions >= ${s.skip} (${s.queriesPerSegment} per segment, ${s.segments} segments); uniform attention would give ${num(s.uniformMass, 4)}`,
  );
  const nH = s.mass[0]?.length ?? 0;
  L.push(
    `${"layer".padStart(6)} ${Array.from({ length: nH }, (_, h) => `h${h}`.padStart(6)).join(" ")}    max`,
  );
  for (const [l, row] of s.mass.entries())
    L.push(
      `${String(l).padStart(6)} ${row.map((m) => num(m, 3).padStart(6)).join(" ")} ${num(s.maxByLayer[l]!, 3).padStart(6)}`,
    );
  L.push(
    `  recomputation check: max |attention output - cache's| ${s.check.maxAbsOutDiff.toExponential(2)} (max |output| ${num(s.check.maxAbsOut, 3)})`,
  );
  L.push("");
  L.push("Gates");
  L.push(`  contextHelps ${yes(r.gates.contextHelps).padEnd(5)} ${r.reasons.contextHelps}`);
  L.push(`  copies       ${yes(r.gates.copies).padEnd(5)} ${r.reasons.copies}`);
  L.push(`  sink         ${(r.gates.sink ? "yes" : "no").padEnd(5)} ${r.reasons.sink}`);
  return L.join("\n");
}

export function register(program: Command): void {
  program
    .command("probe")
    .description(
      "gates before ranking eviction policies: same-token context curve, repeated-passage copy test, first-token attention mass",
    )
    .requiredOption("--model <path>", "HF directory, llama2.c .bin or .gguf file")
    .requiredOption("--text <file>", "text file (read as UTF-8 bytes exactly as stored)")
    .option("--ctx <n>", "tokens per segment (default: the model's trained positions, at most 2048)")
    .option(
      "--windows <list>",
      "sliding windows, comma-separated (default: 16,32,64,... below --ctx; 128 always added)",
    )
    .option(
      "--segments <k>",
      "segments of the text for the context curve (default: 8 or as many as it holds)",
    )
    .option("--copy-window <w>", "copy test: the short window (default 16)")
    .option("--executor <name>", "ref | wasm | webgpu (default: wasm)")
    .option("--tokenizer <file>", "llama2.c only: tokenizer.bin (default: beside the checkpoint)")
    .option("--json", "print one JSON object")
    .addHelpText("after", HELP)
    .action(async (o: ProbeCliOptions) => {
      const nCtx = parseIntOption("--ctx", o.ctx, 4);
      const segments = parseIntOption("--segments", o.segments, 1);
      const copyWindow = parseIntOption("--copy-window", o.copyWindow, 2);
      const windows = o.windows === undefined ? undefined : parseWindows(o.windows);
      const model = await loadModel(o.model, { executor: o.executor, tokenizer: o.tokenizer });
      try {
        const tokens = model.tokenizer.encode(readText(o.text));
        const progress = process.stderr.isTTY;
        let r: ProbeResult;
        try {
          r = await probeModel(model, tokens, {
            nCtx,
            segments,
            windows,
            copy: { window: copyWindow },
            onProgress: progress
              ? (stage, d, t) => process.stderr.write(`\r\x1b[K${stage} [${d}/${t}]`)
              : undefined,
          });
        } finally {
          if (progress) process.stderr.write("\r\x1b[K");
        }
        // The human report carries its warnings; with --json they also go to stderr.
        if (o.json) for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
        console.log(o.json ? JSON.stringify(r) : formatProbe(r));
      } finally {
        model.dispose();
      }
    });
}
