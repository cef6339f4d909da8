/**
 * src/commands/list.ts: the CLI imports only the command it runs (peak RSS of `kvlab ppl`,
 * results/bench/rss/README.md), and the lazy list stays in step with what the modules register.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { COMMANDS, commandsFor } from "../../src/commands/list.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

test("each lazily loaded command module registers exactly the command it is listed under", async () => {
  for (const [name, load] of Object.entries(COMMANDS)) {
    const program = new Command();
    (await load()).register(program);
    assert.deepEqual(
      program.commands.map((c) => c.name()),
      [name],
      `src/commands/list.ts lists "${name}"`,
    );
  }
});

test("commandsFor: the named command alone, every command for anything else", () => {
  const all = Object.keys(COMMANDS);
  assert.deepEqual(commandsFor(["node", "kvlab", "ppl", "--model", "m"]), ["ppl"]);
  assert.deepEqual(commandsFor(["node", "kvlab", "queue", "push"]), ["queue"]);
  assert.deepEqual(commandsFor(["node", "kvlab"]), all);
  assert.deepEqual(commandsFor(["node", "kvlab", "--help"]), all);
  assert.deepEqual(commandsFor(["node", "kvlab", "help", "ppl"]), all);
  assert.deepEqual(commandsFor(["node", "kvlab", "pl"]), all);
  // Not an own property of the list, though every object has it.
  assert.deepEqual(commandsFor(["node", "kvlab", "toString"]), all);
});

/** Module URLs the CLI resolves for `args` (an ESM resolve hook records them). */
function resolvedModules(args: string[]): { urls: string[]; stdout: string; status: number | null } {
  const hook = `
    export async function resolve(s, c, next) {
      const r = await next(s, c);
      process.stderr.write("RESOLVED " + r.url + "\\n");
      return r;
    }`;
  const register = `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--import",
      `data:text/javascript,${encodeURIComponent(register)}`,
      "src/cli.ts",
      ...args,
    ],
    { cwd: REPO, encoding: "utf8" },
  );
  const urls = [...r.stderr.matchAll(/^RESOLVED (.*)$/gm)].map((m) => m[1]!);
  return { urls, stdout: r.stdout, status: r.status };
}

test("kvlab ppl --help loads ppl.ts and neither the other commands nor BullMQ; kvlab --help lists them all", () => {
  const ppl = resolvedModules(["ppl", "--help"]);
  assert.equal(ppl.status, 0);
  assert.match(ppl.stdout, /--cache <spec>/);
  assert.ok(
    ppl.urls.some((u) => u.endsWith("/src/commands/ppl.ts")),
    "ppl.ts resolved",
  );
  for (const other of ["queue", "worker", "export", "run", "info", "task"])
    assert.ok(!ppl.urls.some((u) => u.endsWith(`/src/commands/${other}.ts`)), `${other}.ts not loaded`);
  assert.ok(!ppl.urls.some((u) => /\/node_modules\/(bullmq|ioredis)\//.test(u)), "BullMQ not loaded");

  const all = resolvedModules(["--help"]);
  assert.equal(all.status, 0);
  for (const name of Object.keys(COMMANDS)) assert.match(all.stdout, new RegExp(`^  ${name}\\b`, "m"));
  assert.ok(
    all.urls.some((u) => /\/node_modules\/bullmq\//.test(u)),
    "the hook sees BullMQ when queue.ts loads",
  );
});
