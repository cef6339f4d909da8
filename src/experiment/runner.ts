/**
 * Runs an experiment: the f32 baseline first (its top-k distributions saved for KL), then
 * every other backend, each appended to runs.jsonl as soon as it finishes. Runs whose spec
 * hash already has an ok record are skipped unless `force`; a run that throws is recorded as
 * errored with its message and the sweep goes on.
 */
import { join } from "node:path";
import { storageNotes } from "../cache/spec.ts";
import type { ResolvedCacheSpec } from "../cache/types.ts";
import { KlAccumulator, logSoftmax, type TopKEntry, topK } from "../eval/kl.ts";
import { type BaselineTopK, loadBaseline, saveBaseline } from "../eval/kl-baseline.ts";
import { loadNll, saveNll } from "../eval/nll-baseline.ts";
import { pairedDifference } from "../eval/probe.ts";
import { specHash } from "./hash.ts";
import { provenance } from "./machine.ts";
import { type Progress, plainProgress } from "./progress.ts";
import { completed, dirStore, latestPerSpec, type RunStore } from "./run-store.ts";
import type { ExperimentConfig } from "./schema.ts";
import type { EvalOutput, LoadedExperiment, RunMetrics, RunnerDeps, RunRecord, RunSpec } from "./types.ts";

export interface RunOptions {
  /** Folder for runs.jsonl and the baseline file (default results/<name> under the cwd). */
  outDir?: string;
  /** Rerun runs that are already complete. */
  force?: boolean;
  progress?: Progress;
  /**
   * Run only the planned runs whose spec hash passes (a shard, or the one run of a queued job);
   * the others are neither run nor reported.
   */
  select?: (hash: string) => boolean;
  /** Names this process's files: runs.<tag>.jsonl, baseline.<tag>.kvlb (a shard: "K-of-N"). */
  tag?: string;
  /** Where records are read from and appended to; default: every run file in outDir, appending to runsFile(outDir, tag). */
  store?: RunStore;
}

export interface RunSummary {
  outDir: string;
  /** Runs executed now (ok or errored). */
  ran: RunRecord[];
  skipped: number;
  /** The latest record per spec of this experiment's runs, in config order. */
  records: RunRecord[];
}

export const BASELINE_FILE = "baseline.kvlb";
export const BASELINE_NLL_FILE = "baseline-nll.f64";
/** Consecutive scored tokens per block of the batch-means interval (token losses are autocorrelated). */
export const DNLL_BLOCK = 32;

export interface PlannedRun {
  name: string;
  baseline: boolean;
  spec: RunSpec;
  hash: string;
}

/** Every run of a config, the baseline first, each with its spec hash (its identity). */
export function plan(
  config: ExperimentConfig,
  loaded: Pick<LoadedExperiment, "modelHash" | "textHash">,
): PlannedRun[] {
  return config.caches.map(({ spec, baseline }) => {
    const { name: _name, ...cacheIdentity } = spec;
    const runSpec: RunSpec = {
      cache: spec,
      model: { ref: config.modelRef, hash: loaded.modelHash },
      text: { ref: config.textRef, hash: loaded.textHash },
      protocol: config.protocol,
      executor: config.executor,
      seed: config.seed,
      baselineTopK: config.topK,
      ...(config.attentionMass ? { attentionMass: true as const } : {}),
    };
    // The display name is not part of the identity: renaming a backend does not rerun it.
    const hash = specHash({ ...runSpec, cache: cacheIdentity });
    return { name: spec.name, baseline, spec: runSpec, hash };
  });
}

function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** Paired per-token NLL difference against the baseline, and the ΔPPL interval it implies. */
function pairedOf(nll: Float64Array, base: Float64Array | undefined) {
  if (!base || base.length !== nll.length || nll.length < 2 * DNLL_BLOCK) return {};
  const d = new Float64Array(nll.length);
  for (let i = 0; i < d.length; i++) d[i] = nll[i]! - base[i]!;
  const p = pairedDifference(d, DNLL_BLOCK);
  let sum = 0;
  for (const x of base) sum += x;
  const basePpl = Math.exp(sum / base.length);
  return {
    dNll: { mean: p.mean, lo: p.lo, hi: p.hi, z: p.z, blocks: p.blocks, blockTokens: DNLL_BLOCK },
    dPplInterval: [basePpl * Math.expm1(p.lo), basePpl * Math.expm1(p.hi)] as [number, number],
  };
}

function metricsOf(
  out: EvalOutput,
  loaded: LoadedExperiment,
  kl?: KlAccumulator,
  paired: Pick<RunMetrics, "dNll" | "dPplInterval"> = {},
): RunMetrics {
  const { nLayers, nKvHeads, headDim } = loaded.shape;
  const f16Bytes = 2 * 2 * nLayers * nKvHeads * headDim * loaded.segmentTokens;
  return {
    nll: out.nll,
    ppl: Math.exp(out.nll),
    tokens: out.tokens,
    ...(kl && kl.count > 0 ? kl.summary() : {}),
    kvBytes: out.memory,
    ...(out.segments ? { kvBytesBySegment: out.segments } : {}),
    peakKvBytes: out.peakKvBytes,
    ...(out.peakPhysicalKvBytes !== undefined ? { peakPhysicalKvBytes: out.peakPhysicalKvBytes } : {}),
    ...(out.physicalKvBytes ? { physicalKvBytes: out.physicalKvBytes } : {}),
    bitsPerElement: out.bitsPerElement,
    f16Bytes,
    compressionVsF16: out.peakKvBytes > 0 ? f16Bytes / out.peakKvBytes : Number.NaN,
    tokensPerSecond: out.tokensPerSecond,
    peakRssBytes: peakRssBytes(),
    fallbacks: out.fallbacks,
    ...(out.attentionMassKept !== undefined ? { attentionMassKept: out.attentionMassKept } : {}),
    ...paired,
    ...(out.task ? { task: out.task } : {}),
    ...(out.scoring ? { scoring: out.scoring } : {}),
    ...(loaded.warnings?.length ? { warnings: loaded.warnings } : {}),
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
}

/** What every step of one experiment's evaluation shares (built once by runExperiment). */
interface RunContext {
  config: ExperimentConfig;
  loaded: LoadedExperiment;
  store: RunStore;
  progress: Progress;
  provenance: ReturnType<typeof provenance>;
  baselineFile: string;
  baselineNllFile: string;
  /** Task runs have no token distributions: no KL, no paired NLL; the f32 run is the reference row. */
  isTask: boolean;
  /** Runs executed now, in order. */
  ran: RunRecord[];
}

/** The baseline's saved distributions (KL) and per-token NLL (paired ΔPPL), when there are any. */
interface Baseline {
  topK?: BaselineTopK;
  nll?: Float64Array; // (scored tokens)
}

/** Evaluate one backend; capture the baseline's top-k when `capture`, or accumulate KL against `baseline`. */
async function evaluateBackend(
  ctx: RunContext,
  cache: ResolvedCacheSpec,
  capture: BaselineTopK | undefined,
  baseline: BaselineTopK | undefined,
) {
  const { config, loaded, progress } = ctx;
  let logp: Float64Array | undefined;
  const kl = capture || baseline ? new KlAccumulator() : undefined;
  const nll = new Float64Array(ctx.isTask ? 0 : loaded.scoredTokens); // (scoredTokens) per-token NLL
  let mismatch: string | undefined;
  const out = await loaded.evaluate(cache, {
    onScored(logits, target, i) {
      if (!logp || logp.length !== logits.length) logp = new Float64Array(logits.length);
      logSoftmax(logits, logp);
      if (i < nll.length) nll[i] = -logp[target]!;
      let ref: TopKEntry | undefined;
      if (capture) {
        ref = topK(logp, config.topK);
        capture.entries[i] = ref;
        capture.targets[i] = target;
      } else if (baseline) {
        ref = baseline.entries[i];
        if (!ref || baseline.targets[i] !== target) {
          mismatch ??= `scored token ${i} (target ${target}) does not match the baseline's (${baseline.targets[i]}); delete ${ctx.baselineFile} and rerun`;
          return;
        }
      }
      if (ref) kl!.add(ref, logp);
    },
    onProgress: (d) => progress.tokens(d, loaded.scoredTokens),
  });
  if (mismatch) throw new Error(mismatch);
  return { out, kl, nll };
}

/** Run `body` for one planned run and append its record (ok with metrics, or error with the message). */
async function recordRun(
  ctx: RunContext,
  r: PlannedRun,
  body: () => Promise<RunMetrics>,
): Promise<RunRecord> {
  ctx.progress.runStart(ctx.ran.length, r.name);
  const started = new Date();
  const t0 = performance.now();
  // Field order as in every runs.jsonl so far: identity, status, spec, timing, provenance, result.
  const rec = (status: Pick<RunRecord, "status" | "error">, metrics?: RunMetrics): RunRecord => ({
    experiment: ctx.config.name,
    name: r.name,
    baseline: r.baseline,
    ...status,
    specHash: r.hash,
    spec: r.spec,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    wallSeconds: (performance.now() - t0) / 1000,
    ...ctx.provenance,
    ...(metrics ? { metrics } : {}),
  });
  let record: RunRecord;
  try {
    const metrics = await body();
    const notes = storageNotes(r.spec.cache, ctx.loaded.shape.headDim);
    for (const n of notes) ctx.progress.note(`warning: ${r.name}: ${n}`);
    if (notes.length) metrics.warnings = [...(metrics.warnings ?? []), ...notes];
    record = rec({ status: "ok" }, metrics);
  } catch (err) {
    record = rec({ status: "error", error: errorMessage(err) });
  }
  await ctx.store.append(record);
  ctx.ran.push(record);
  ctx.progress.runEnd(record);
  return record;
}

/**
 * The baseline every other run is compared with: run (and recorded) when it is due, else read
 * from its files, else (a complete record but no distribution files, e.g. a fresh clone)
 * recomputed without a new record. A failed baseline leaves the other runs without KL.
 */
async function prepareBaseline(ctx: RunContext, base: PlannedRun, todo: PlannedRun[]): Promise<Baseline> {
  const { config, loaded, progress } = ctx;
  const empty = (): BaselineTopK => ({
    key: base.hash,
    k: config.topK,
    targets: new Int32Array(loaded.scoredTokens),
    entries: [],
  });
  const finish = async (b: BaselineTopK, nll: Float64Array): Promise<Baseline> => {
    b.targets = b.targets.subarray(0, b.entries.length);
    await saveBaseline(ctx.baselineFile, b);
    const scored = nll.subarray(0, b.entries.length);
    await saveNll(ctx.baselineNllFile, base.hash, scored);
    return { topK: b, nll: scored };
  };

  if (ctx.isTask) {
    if (todo.includes(base))
      await recordRun(ctx, base, async () =>
        metricsOf((await evaluateBackend(ctx, base.spec.cache, undefined, undefined)).out, loaded),
      );
    return {};
  }
  if (todo.includes(base)) {
    const capture = empty();
    let result: Baseline = {};
    const rec = await recordRun(ctx, base, async () => {
      const { out, kl, nll } = await evaluateBackend(ctx, base.spec.cache, capture, undefined);
      result = await finish(capture, nll);
      return metricsOf(out, loaded, kl);
    });
    if (rec.status === "error") progress.note("the baseline failed: the other runs get no KL divergence");
    return result;
  }
  if (todo.length === 0) return {};
  const topKSaved = await loadBaseline(ctx.baselineFile, base.hash);
  const nllSaved = await loadNll(ctx.baselineNllFile, base.hash);
  if (topKSaved && nllSaved) return { topK: topKSaved, nll: nllSaved };
  progress.note(`recomputing the baseline distributions (${ctx.baselineFile} is absent or stale)`);
  const capture = empty();
  try {
    const { nll } = await evaluateBackend(ctx, base.spec.cache, capture, undefined);
    return await finish(capture, nll);
  } catch (err) {
    progress.note(`the baseline failed (${errorMessage(err)}): the other runs get no KL divergence`);
    return {};
  }
}

/** The latest record per spec of `runs` in the store, in plan order. */
async function collect(store: RunStore, runs: PlannedRun[]): Promise<RunRecord[]> {
  const all = await store.read();
  const hashes = new Set(runs.map((r) => r.hash));
  const latest = latestPerSpec(all.records.filter((r) => hashes.has(r.specHash)));
  const order = new Map(runs.map((r, i) => [r.hash, i]));
  return latest.sort((a, b) => order.get(a.specHash)! - order.get(b.specHash)!);
}

/** Plan, skip what is done, run the baseline, run the rest (each appended as it ends), collect. */
export async function runExperiment(
  config: ExperimentConfig,
  deps: RunnerDeps,
  options: RunOptions = {},
): Promise<RunSummary> {
  const outDir = options.outDir ?? join("results", config.name);
  const progress = options.progress ?? plainProgress();
  const store = options.store ?? dirStore(outDir, options.tag);
  const tagged = (name: string) => (options.tag ? name.replace(/\.(\w+)$/, `.${options.tag}.$1`) : name);

  const loaded = await deps.load(config);
  try {
    const planned = plan(config, loaded);
    const base = planned[0]!;
    const runs = options.select ? planned.filter((r) => options.select!(r.hash)) : planned;
    const existing = await store.read();
    if (existing.badLines)
      progress.note(`${outDir}: skipped ${existing.badLines} unreadable line(s) (interrupted write)`);
    const done = completed(existing.records);
    const todo = runs.filter((r) => options.force || !done.has(r.hash));
    progress.start(todo.length, runs.length - todo.length, loaded.scoredTokens);
    for (const w of loaded.warnings ?? []) progress.note(`warning: ${w}`);

    const ctx: RunContext = {
      config,
      loaded,
      store,
      progress,
      provenance: provenance(),
      baselineFile: join(outDir, tagged(BASELINE_FILE)),
      baselineNllFile: join(outDir, tagged(BASELINE_NLL_FILE)),
      isTask: config.protocol.type === "task",
      ran: [],
    };
    const baseline = await prepareBaseline(ctx, base, todo);
    for (const r of todo) {
      if (r === base) continue;
      await recordRun(ctx, r, async () => {
        const { out, kl, nll } = await evaluateBackend(ctx, r.spec.cache, undefined, baseline.topK);
        return metricsOf(out, loaded, kl, pairedOf(nll, baseline.nll));
      });
    }
    progress.stop();
    return { outDir, ran: ctx.ran, skipped: runs.length - todo.length, records: await collect(store, runs) };
  } finally {
    await loaded.dispose?.();
  }
}
