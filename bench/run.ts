/**
 * `npm run bench -- [--json] [--quick] [--only baselines,codecs,attention,forward,peer]`
 *
 * Runs the sections in order, prints each table, and with --json writes
 * results/bench/<machine>.json and results/bench/<machine>.md. A section whose subject does
 * not exist here (an executor not registered, a command not written yet, a peer that will not
 * load) prints "skipped: <reason>" and the run goes on.
 */
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { disposeExecutors } from "../src/kernels/registry.ts";
import { parseArgs, type SectionName } from "./lib/args.ts";
import { type BenchContext, createContext } from "./lib/context.ts";
import { machineInfo } from "./lib/machine.ts";
import { newSection, renderMarkdown, renderText, type SectionResult, targetsTable } from "./lib/report.ts";
import { runAttention } from "./sections/attention.ts";
import { runBaselines } from "./sections/baselines.ts";
import { runCodecs } from "./sections/codecs.ts";
import { runForward } from "./sections/forward.ts";
import { runPeer } from "./sections/peer.ts";

const SECTIONS: Record<SectionName, (ctx: BenchContext, done: SectionResult[]) => Promise<SectionResult>> = {
  baselines: runBaselines,
  codecs: runCodecs,
  attention: runAttention,
  forward: runForward,
  peer: runPeer,
};

const args = parseArgs(process.argv.slice(2));
// Kernels in this process (codecs, attention) run on 1 thread unless KVLAB_THREADS says
// otherwise: issue 7's kernel targets are per thread, and on a shared 2-core machine a worker
// that is not scheduled stalls every split kernel. The forward section sets threads per child.
process.env.KVLAB_THREADS ??= "1";
const machine = machineInfo();
console.log(
  `kvlab bench on ${machine.name} (${machine.cpuModel}, ${machine.cores} cores, ${machine.totalMemGiB} GiB, node ${machine.node}), KVLAB_THREADS=${process.env.KVLAB_THREADS}${args.quick ? " --quick" : ""}`,
);
const started = Date.now();
const ctx = await createContext(args, machine);
const done: SectionResult[] = [];
for (const [name, run] of Object.entries(SECTIONS) as [SectionName, (typeof SECTIONS)[SectionName]][]) {
  if (!args.only.has(name)) continue;
  console.log(`\n== ${name}`);
  const t0 = Date.now();
  const load0 = os.loadavg()[0]!;
  let result: SectionResult;
  try {
    result = await run(ctx, done);
  } catch (err) {
    // One broken section must not lose the others' figures.
    result = newSection(name);
    const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
    result.skipped.push(`failed: ${msg.split("\n").slice(0, 4).join(" | ")}`);
    console.log(`  failed: ${msg}`);
  }
  result.seconds = (Date.now() - t0) / 1000;
  result.load = [load0, os.loadavg()[0]!];
  console.log(
    `  (${result.seconds.toFixed(0)} s, load average ${result.load[0].toFixed(1)} -> ${result.load[1].toFixed(1)} on ${machine.cores} cores)`,
  );
  for (const t of result.tables) console.log(renderText(t));
  done.push(result);
}
await disposeExecutors();

const targets = done.flatMap((s) => s.targets);
if (targets.length) console.log(renderText(targetsTable(targets)));
const totalSeconds = (Date.now() - started) / 1000;
console.log(`\nbench finished in ${totalSeconds.toFixed(0)} s`);

if (args.json) {
  await mkdir(args.outDir, { recursive: true });
  const base = path.join(args.outDir, machine.name);
  const json = {
    machine,
    date: new Date().toISOString(),
    options: { quick: args.quick, only: [...args.only], kvlabThreads: process.env.KVLAB_THREADS },
    totalSeconds,
    sections: done,
    targets,
  };
  await writeFile(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  const md = [
    `# kvlab bench: ${machine.name}`,
    "",
    `${machine.cpuModel}, ${machine.cores} cores, ${machine.totalMemGiB} GiB, node ${machine.node}; ${json.date}; ${totalSeconds.toFixed(0)} s${args.quick ? "; --quick" : ""}.`,
    `Command: \`npm run bench -- --json\`; in-process kernels with KVLAB_THREADS=${process.env.KVLAB_THREADS}. Every figure sits next to a baseline measured in the same run.`,
  ];
  if (targets.length) md.push("", renderMarkdown(targetsTable(targets)));
  for (const s of done) {
    md.push(
      "",
      `## ${s.name} (${s.seconds.toFixed(0)} s, load average ${s.load[0].toFixed(1)} -> ${s.load[1].toFixed(1)})`,
    );
    for (const t of s.tables) md.push("", renderMarkdown(t));
    for (const r of s.skipped) md.push("", `- skipped: ${r}`);
  }
  await writeFile(`${base}.md`, `${md.join("\n")}\n`);
  console.log(`wrote ${base}.json and ${base}.md`);
}
