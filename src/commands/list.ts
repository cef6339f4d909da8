/**
 * The CLI's commands, each loaded only when it is needed. `kvlab ppl` imports ppl.ts alone, not
 * BullMQ/ioredis (queue, worker, export), the experiment runner or the report writers: importing
 * every command cost `kvlab ppl` about 20 MiB of peak RSS as installed (dist/) and about 35 MiB
 * under the tsx loader (results/bench/rss/README.md).
 */
import type { Command } from "commander";

export type CommandModule = { register(program: Command): void };

/**
 * Command name (as its module registers it) -> its module, in the order `kvlab --help` lists
 * them. test/cli/lazy-commands.test.ts checks that each module registers exactly its key.
 */
export const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  info: () => import("./info.ts"),
  ppl: () => import("./ppl.ts"),
  probe: () => import("./probe.ts"),
  generate: () => import("./generate.ts"),
  "synth-model": () => import("./synth-model.ts"),
  "fetch-model": () => import("./fetch-model.ts"),
  task: () => import("./task.ts"),
  run: () => import("./run.ts"),
  export: () => import("./export.ts"),
  merge: () => import("./merge.ts"),
  queue: () => import("./queue.ts"),
  worker: () => import("./worker.ts"),
  schema: () => import("./schema.ts"),
  "profile-heads": () => import("./profile-heads.ts"),
};

/**
 * The commands to register for `argv` (as process.argv: node, script, then the arguments): the
 * command named first alone when it is one of COMMANDS; otherwise (no arguments, an option
 * first, `help`, an unknown or misspelt name) all of them, so that `kvlab --help` lists every
 * command and commander's "unknown command ... (Did you mean ...?)" still has them to suggest.
 */
export function commandsFor(argv: readonly string[]): string[] {
  const first = argv[2];
  return first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
}
