/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time by function, top N.
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [N]
 * The release WASM has no name section, so V8 reports `wasm-function[i]`; the names are read
 * back from build/kvlab.wat (function i = the i-th `(func $name` there, kvlab imports none).
 * Caveat: the bench's own baseline module also shows as wasm-function[0..3].
 */
import { existsSync, readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: profile-summary.ts <file.cpuprofile> [N]");
  process.exit(1);
}
const watPath = new URL("../build/kvlab.wat", import.meta.url);
const watNames = existsSync(watPath)
  ? [...readFileSync(watPath, "utf8").matchAll(/^ \(func \$(\S+)/gm)].map((m) => m[1]!)
  : [];
const prof = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const n = byId.get(prof.samples[i]!)!;
  const dt = prof.timeDeltas[i] ?? 0;
  total += dt;
  const url = n.callFrame.url.replace(/^.*\/(src|bench|assembly|node_modules)\//, "$1/");
  const wasm = /^wasm-function\[(\d+)\]$/.exec(n.callFrame.functionName);
  if (wasm && watNames[Number(wasm[1])]) {
    const key = `wasm ${watNames[Number(wasm[1])]}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    continue;
  }
  const key =
    `${n.callFrame.functionName || "(anonymous)"} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ""}`.trim();
  self.set(key, (self.get(key) ?? 0) + dt);
}
const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25));
console.log(`total ${(total / 1000).toFixed(0)} ms sampled`);
for (const [k, us] of top)
  console.log(
    `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
  );
