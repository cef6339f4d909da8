// Entry of kvlab's worker threads that run TypeScript: Node 20 does not pass the tsx loader
// registered in the main thread on to worker threads, so each thread registers it, then
// imports the module named in workerData.entry.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
