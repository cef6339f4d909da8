// Loaded into bench child processes with `node --import`: prints the process's peak resident
// set size to stderr at exit, which is how the forward sections measure `kvlab ppl`'s peak RSS.
// Plain JavaScript, so that it loads without the TypeScript loader (the installed CLI's runs,
// bench/lib/kvlab-cli.ts).
process.on("exit", () => {
  process.stderr.write(`KVLAB_BENCH_MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
});
