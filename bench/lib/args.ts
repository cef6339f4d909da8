/** Command-line options of `npm run bench -- [--json] [--quick] [--only a,b] [--out dir]`. */

export const SECTION_NAMES = ["baselines", "codecs", "attention", "forward", "peer"] as const;
export type SectionName = (typeof SECTION_NAMES)[number];

export interface BenchArgs {
  /** Write results/bench/<machine>.json and .md. */
  json: boolean;
  /** Fewer sizes and shorter timing budgets (a smoke run in about a minute). */
  quick: boolean;
  only: Set<SectionName>;
  /** Where --json writes (default results/bench). */
  outDir: string;
}

export function parseArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = {
    json: false,
    quick: false,
    only: new Set(SECTION_NAMES),
    outDir: "results/bench",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--json") args.json = true;
    else if (a === "--quick") args.quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const list = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (!list) throw new Error("--only needs a comma-separated list of sections");
      const names = list.split(",").map((s) => s.trim());
      for (const n of names)
        if (!(SECTION_NAMES as readonly string[]).includes(n))
          throw new Error(`--only: unknown section "${n}"; known: ${SECTION_NAMES.join(", ")}`);
      args.only = new Set(names as SectionName[]);
    } else if (a === "--out") {
      const dir = argv[++i];
      if (!dir) throw new Error("--out needs a directory");
      args.outDir = dir;
    } else if (a === "--help" || a === "-h") {
      console.log(
        `npm run bench -- [--json] [--quick] [--only ${SECTION_NAMES.join(",")}] [--out results/bench]`,
      );
      process.exit(0);
    } else throw new Error(`unknown option "${a}" (try --help)`);
  }
  return args;
}
