/**
 * Table rows from run records: one row per backend (the latest record per spec hash), the
 * baseline first and marked, the rest by peak KV bytes descending (most memory first), ties by
 * PPL. ΔPPL is against the baseline row of the same records.
 */
import type { RunRecord } from "../experiment/types.ts";
import type { TaskCell } from "../tasks/metrics.ts";

export interface TableRow {
  backend: string;
  baseline: boolean;
  status: "ok" | "error";
  error?: string;
  /** Bits per retained element at the peak (scales, residual, indices and policy state included). */
  bitsPerElement: number | null;
  peakKvBytes: number | null;
  compressionVsF16: number | null;
  ppl: number | null;
  dPpl: number | null;
  /** 95% interval of ΔPPL from the paired per-token NLL differences (batch means); null without one. */
  dPplLo: number | null;
  dPplHi: number | null;
  /** z of the mean per-token NLL difference (|z| < 2: not distinguishable from the baseline). */
  dNllZ: number | null;
  nll: number | null;
  klMean: number | null;
  klP99: number | null;
  sameTop1: number | null;
  tokens: number | null;
  tokensPerSecond: number | null;
  fallbacks: number | null;
  /** Mean share of full-cache attention mass on retained tokens (diagnostic; null when off). */
  attentionMassKept: number | null;
  /** Task protocol: accuracy with its 95% Wilson interval, the first answer token's mean probability. */
  accuracy: number | null;
  accuracyLo: number | null;
  accuracyHi: number | null;
  correct: number | null;
  total: number | null;
  meanAnswerProb: number | null;
  /** Task protocol: accuracy per (length, depth) cell (for the heatmap). */
  taskCells: TaskCell[] | null;
  /** The record's warnings (e.g. a group narrowed to head_dim, context past trained positions). */
  warnings: string[];
  specHash: string;
}

export function toRows(records: RunRecord[]): TableRow[] {
  const base = records.find((r) => r.baseline && r.status === "ok");
  // NaN is written to JSON as null: a task run has no PPL.
  const finite = (v: number | null | undefined) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const basePpl = finite(base?.metrics?.ppl);
  const rows = records.map((r): TableRow => {
    const m = r.status === "ok" ? r.metrics : undefined;
    const ppl = finite(m?.ppl);
    const t = m?.task;
    return {
      backend: r.name,
      baseline: r.baseline,
      status: r.status,
      ...(r.error !== undefined ? { error: r.error } : {}),
      bitsPerElement: m?.bitsPerElement ?? null,
      peakKvBytes: m?.peakKvBytes ?? null,
      compressionVsF16: m?.compressionVsF16 ?? null,
      ppl,
      dPpl: ppl !== null && basePpl !== null ? ppl - basePpl : null,
      dPplLo: m?.dPplInterval?.[0] ?? null,
      dPplHi: m?.dPplInterval?.[1] ?? null,
      dNllZ: finite(m?.dNll?.z),
      nll: finite(m?.nll),
      klMean: m?.klMean ?? null,
      klP99: m?.klP99 ?? null,
      sameTop1: m?.sameTop1 ?? null,
      tokens: m?.tokens ?? null,
      tokensPerSecond: m?.tokensPerSecond ?? null,
      fallbacks: m ? Object.values(m.fallbacks ?? {}).reduce((a, b) => a + b, 0) : null,
      attentionMassKept: m?.attentionMassKept?.mean ?? null,
      accuracy: t?.accuracy ?? null,
      accuracyLo: t?.interval[0] ?? null,
      accuracyHi: t?.interval[1] ?? null,
      correct: t?.correct ?? null,
      total: t?.total ?? null,
      meanAnswerProb: finite(t?.meanAnswerProb),
      taskCells: t?.cells ?? null,
      warnings: m?.warnings ?? [],
      specHash: r.specHash,
    };
  });
  const rank = (r: TableRow) => (r.baseline ? 0 : r.status === "ok" ? 1 : 2);
  return rows.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (b.peakKvBytes ?? 0) - (a.peakKvBytes ?? 0) ||
      (a.ppl ?? Number.POSITIVE_INFINITY) - (b.ppl ?? Number.POSITIVE_INFINITY) ||
      (b.accuracy ?? 0) - (a.accuracy ?? 0) ||
      a.backend.localeCompare(b.backend),
  );
}

/** Points on the lower-left Pareto front of (memory, y): no other point has both less or equal memory and lower y. */
export function paretoFront<T>(points: T[], x: (p: T) => number, y: (p: T) => number): T[] {
  const sorted = [...points].filter((p) => Number.isFinite(x(p)) && Number.isFinite(y(p)));
  sorted.sort((a, b) => x(a) - x(b) || y(a) - y(b));
  const front: T[] = [];
  let best = Number.POSITIVE_INFINITY;
  for (const p of sorted) {
    if (y(p) < best) {
      front.push(p);
      best = y(p);
    }
  }
  return front;
}
