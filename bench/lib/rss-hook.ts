/**
 * Loaded into bench child processes with `node --import`: prints the process's peak resident
 * set size to stderr at exit, which is how the forward section measures `kvlab ppl`'s peak RSS.
 */
process.on("exit", () => {
  process.stderr.write(`KVLAB_BENCH_MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
});
