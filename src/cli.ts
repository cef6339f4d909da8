/**
 * The kvlab command line. Each command lives in src/commands/<name>.ts and registers itself
 * here through an explicit list (src/commands/list.ts), which imports only the command being
 * run. User errors (KvlabError) print one line and exit 1.
 */
import { Command } from "commander";
import { COMMANDS, commandsFor } from "./commands/list.ts";
import { KvlabError } from "./errors.ts";
import { disposeExecutors } from "./kernels/registry.ts";

const program = new Command();
program
  .name("kvlab")
  .description("Compressed LLM attention KV caches: perplexity, KL divergence and exact memory per backend")
  .showHelpAfterError();

for (const name of commandsFor(process.argv)) (await COMMANDS[name]!()).register(program);

try {
  await program.parseAsync(process.argv);
  await disposeExecutors();
} catch (err) {
  if (err instanceof KvlabError) {
    console.error(`error: ${err.message}`);
    await disposeExecutors().catch(() => {});
    process.exit(1);
  }
  throw err;
}
