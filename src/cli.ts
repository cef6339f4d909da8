/**
 * The kvlab command line. Each command lives in src/commands/<name>.ts and registers itself
 * here through an explicit list. User errors (KvlabError) print one line and exit 1.
 */
import { Command } from "commander";
import { register as registerExport } from "./commands/export.ts";
import { register as registerFetchModel } from "./commands/fetch-model.ts";
import { register as registerGenerate } from "./commands/generate.ts";
import { register as registerInfo } from "./commands/info.ts";
import { register as registerMerge } from "./commands/merge.ts";
import { register as registerPpl } from "./commands/ppl.ts";
import { register as registerProbe } from "./commands/probe.ts";
import { register as registerProfileHeads } from "./commands/profile-heads.ts";
import { register as registerQueue } from "./commands/queue.ts";
import { register as registerRun } from "./commands/run.ts";
import { register as registerSchema } from "./commands/schema.ts";
import { register as registerSynthModel } from "./commands/synth-model.ts";
import { register as registerTask } from "./commands/task.ts";
import { register as registerWorker } from "./commands/worker.ts";
import { KvlabError } from "./errors.ts";
import { disposeExecutors } from "./kernels/registry.ts";

const program = new Command();
program
  .name("kvlab")
  .description("Compressed LLM attention KV caches: perplexity, KL divergence and exact memory per backend")
  .showHelpAfterError();

for (const register of [
  registerInfo,
  registerPpl,
  registerProbe,
  registerGenerate,
  registerSynthModel,
  registerFetchModel,
  registerTask,
  registerRun,
  registerExport,
  registerMerge,
  registerQueue,
  registerWorker,
  registerSchema,
  registerProfileHeads,
])
  register(program);

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
