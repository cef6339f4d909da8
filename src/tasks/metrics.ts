/**
 * Task accuracy with uncertainty: every accuracy comes with a 95% Wilson score interval
 * (Wilson 1927), which stays inside [0, 1] and is honest at 0/n and n/n, unlike p +- 1.96 SE.
 */

/** One sample's outcome as the summary needs it. */
export interface ScoredSample {
  length: number;
  depth: number;
  correct: boolean;
  answerProb: number;
  answerRank: number;
  kvBytes: number;
}

export interface Accuracy {
  correct: number;
  total: number;
  accuracy: number;
  /** 95% Wilson interval [lo, hi]. */
  interval: [number, number];
}

export interface TaskCell extends Accuracy {
  length: number;
  depth: number;
  meanAnswerProb: number;
  medianAnswerRank: number;
  /** Mean cache bytes when the question was read. */
  kvBytes: number;
}

export interface TaskSummary extends Accuracy {
  task: string;
  /** Depth (as a string key) -> accuracy over every length. */
  byDepth: Record<string, number>;
  /** Length (as a string key) -> accuracy over every depth. */
  byLength: Record<string, number>;
  cells: TaskCell[];
  /** Mean cache bytes when the question was read, over all samples and by length. */
  kvBytes: number;
  kvBytesByLength: Record<string, number>;
  meanAnswerProb: number;
  medianAnswerRank: number;
}

const Z95 = 1.959963984540054;

/** 95% Wilson score interval of k successes in n trials. */
export function wilson(k: number, n: number, z = Z95): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const den = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / den;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export function accuracyOf(correct: number, total: number): Accuracy {
  return { correct, total, accuracy: total ? correct / total : Number.NaN, interval: wilson(correct, total) };
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const g = m.get(k);
    if (g) g.push(x);
    else m.set(k, [x]);
  }
  return m;
}

export function summarizeTask(task: string, samples: ScoredSample[]): TaskSummary {
  const acc = (g: ScoredSample[]) => g.filter((s) => s.correct).length / g.length;
  const cells: TaskCell[] = [];
  for (const g of groupBy(samples, (s) => `${s.length}|${s.depth}`).values()) {
    const k = g.filter((s) => s.correct).length;
    cells.push({
      length: g[0]!.length,
      depth: g[0]!.depth,
      ...accuracyOf(k, g.length),
      meanAnswerProb: mean(g.map((s) => s.answerProb)),
      medianAnswerRank: median(g.map((s) => s.answerRank)),
      kvBytes: mean(g.map((s) => s.kvBytes)),
    });
  }
  const byDepth = Object.fromEntries(
    [...groupBy(samples, (s) => String(s.depth))].map(([d, g]) => [d, acc(g)]),
  );
  const byLength = Object.fromEntries(
    [...groupBy(samples, (s) => String(s.length))].map(([l, g]) => [l, acc(g)]),
  );
  const kvBytesByLength = Object.fromEntries(
    [...groupBy(samples, (s) => String(s.length))].map(([l, g]) => [l, mean(g.map((s) => s.kvBytes))]),
  );
  return {
    task,
    ...accuracyOf(samples.filter((s) => s.correct).length, samples.length),
    byDepth,
    byLength,
    cells,
    kvBytes: mean(samples.map((s) => s.kvBytes)),
    kvBytesByLength,
    meanAnswerProb: mean(samples.map((s) => s.answerProb)),
    medianAnswerRank: median(samples.map((s) => s.answerRank)),
  };
}
