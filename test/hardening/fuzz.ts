/**
 * Settings shared by the hardening fuzz suites: a fixed seed (so CI is deterministic and a
 * failure reproduces) and a run count scaled by KVLAB_FUZZ_RUNS for longer runs on demand,
 * e.g. `KVLAB_FUZZ_RUNS=20 node --import tsx --test test/hardening/*.test.ts` (20 x the CI
 * counts); KVLAB_FUZZ_SEED picks another seed.
 */
export const FUZZ_SEED = Number(process.env.KVLAB_FUZZ_SEED ?? 12_2026);

/** The CI count `base` times $KVLAB_FUZZ_RUNS (default 1). */
export function fuzzRuns(base: number): number {
  const scale = Number(process.env.KVLAB_FUZZ_RUNS ?? 1);
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}
