/** Table formats: Markdown, CSV (RFC 4180), LaTeX (booktabs) and JSON, from the same rows. */
import type { TableRow } from "./rows.ts";

export type TableFormat = "md" | "csv" | "tex" | "json";
export const TABLE_FORMATS: TableFormat[] = ["md", "csv", "tex", "json"];

export interface TableContext {
  experiment: string;
  /** One line describing model, text and protocol (shown above md/tex tables). */
  caption?: string;
}

const num = (v: number | null, digits: number): string =>
  v === null || !Number.isFinite(v) ? "–" : v.toFixed(digits);
const sci = (v: number | null): string => (v === null || !Number.isFinite(v) ? "–" : v.toExponential(2));
const signed = (v: number | null, digits: number): string =>
  v === null || !Number.isFinite(v) ? "–" : `${v >= 0 ? "+" : ""}${v.toFixed(digits)}`;
const pct = (v: number | null): string =>
  v === null || !Number.isFinite(v) ? "–" : `${(100 * v).toFixed(1)}%`;
const kib = (v: number | null): string => (v === null ? "–" : (v / 1024).toFixed(1));

/** Displayed columns: header, cell text. */
const COLUMNS: [string, (r: TableRow) => string][] = [
  ["backend", (r) => r.backend],
  ["bits/elem", (r) => num(r.bitsPerElement, 2)],
  ["KV KiB (peak)", (r) => kib(r.peakKvBytes)],
  ["vs f16", (r) => (r.compressionVsF16 === null ? "–" : `${r.compressionVsF16.toFixed(2)}×`)],
  ["PPL", (r) => num(r.ppl, 4)],
  ["ΔPPL", (r) => (r.baseline ? "–" : signed(r.dPpl, 4))],
  [
    "ΔPPL 95% CI",
    (r) => (r.baseline || r.dPplLo === null ? "–" : `[${signed(r.dPplLo, 3)}, ${signed(r.dPplHi, 3)}]`),
  ],
  ["KLD mean", (r) => sci(r.klMean)],
  ["KLD p99", (r) => sci(r.klP99)],
  ["same top-1", (r) => pct(r.sameTop1)],
  ["tok/s", (r) => num(r.tokensPerSecond, 0)],
];

/** Columns of a task experiment: accuracy instead of perplexity. */
const TASK_COLUMNS: [string, (r: TableRow) => string][] = [
  ["backend", (r) => r.backend],
  ["bits/elem", (r) => num(r.bitsPerElement, 2)],
  ["KV KiB (peak)", (r) => kib(r.peakKvBytes)],
  ["vs f16", (r) => (r.compressionVsF16 === null ? "–" : `${r.compressionVsF16.toFixed(2)}×`)],
  ["accuracy", (r) => (r.accuracy === null ? "–" : `${pct(r.accuracy)} (${r.correct}/${r.total})`)],
  ["95% CI", (r) => (r.accuracyLo === null ? "–" : `${pct(r.accuracyLo)}–${pct(r.accuracyHi)}`)],
  ["answer p", (r) => num(r.meanAnswerProb, 3)],
  ["tok/s", (r) => num(r.tokensPerSecond, 0)],
];

const isTaskTable = (rows: TableRow[]) => rows.some((r) => r.accuracy !== null);

/** The displayed columns, with attention mass kept only when some run measured it. */
function columns(rows: TableRow[]): [string, (r: TableRow) => string][] {
  if (isTaskTable(rows)) return TASK_COLUMNS;
  if (!rows.some((r) => r.attentionMassKept !== null)) return COLUMNS;
  return [
    ...COLUMNS.slice(0, -1),
    ["attn kept", (r) => pct(r.attentionMassKept)],
    COLUMNS[COLUMNS.length - 1]!,
  ];
}

export function toMarkdown(rows: TableRow[], ctx: TableContext): string {
  const COLUMNS = columns(rows);
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [`## ${ctx.experiment}`, ""];
  if (ctx.caption) lines.push(ctx.caption, "");
  lines.push(`| ${COLUMNS.map(([h]) => h).join(" | ")} |`);
  lines.push(`|${COLUMNS.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`);
  for (const r of rows) {
    if (r.status === "error") {
      lines.push(`| ${esc(r.backend)} | error: ${esc(r.error ?? "")} |${" |".repeat(COLUMNS.length - 2)}`);
      continue;
    }
    const cells = COLUMNS.map(([, f]) => esc(f(r)));
    if (r.baseline) cells[0] = `**${cells[0]}** (baseline)`;
    lines.push(`| ${cells.join(" | ")} |`);
  }
  lines.push(
    "",
    isTaskTable(rows)
      ? "accuracy: greedy answers judged right, over every (length, depth) cell; 95% CI: Wilson score interval; answer p: mean probability of the first answer token right after the question. KV KiB: peak cache bytes; vs f16: bytes of an f16 full cache at the longest prompt / peak KV bytes."
      : "ΔPPL 95% CI: from the per-token NLL differences against the baseline (batch means over blocks of 32 scored tokens); an interval containing 0 is no measurable effect. KLD: mean and 99th percentile of KL(P_baseline ‖ P_run) per scored token, nats (llama.cpp --kl-divergence definitions; baseline stored as top-k log-probs + rest mass). vs f16: bytes of an f16 full cache at the same token count / peak KV bytes.",
    "",
  );
  // Each distinct warning once, with the backends whose records carry it.
  const byWarning = new Map<string, string[]>();
  for (const r of rows)
    for (const w of r.warnings) byWarning.set(w, [...(byWarning.get(w) ?? []), r.backend]);
  if (byWarning.size > 0) {
    lines.push("Warnings:", "");
    for (const [w, backends] of byWarning)
      lines.push(`- ${esc(w)}${backends.length < rows.length ? ` (${backends.map(esc).join(", ")})` : ""}`);
    lines.push("");
  }
  return lines.join("\n");
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Raw numbers, full precision, one header line. */
export function toCsv(rows: TableRow[]): string {
  const keys: (keyof TableRow)[] = [
    "backend",
    "baseline",
    "status",
    "bitsPerElement",
    "peakKvBytes",
    "compressionVsF16",
    "ppl",
    "dPpl",
    "dPplLo",
    "dPplHi",
    "dNllZ",
    "nll",
    "klMean",
    "klP99",
    "sameTop1",
    "tokens",
    "tokensPerSecond",
    "fallbacks",
    "attentionMassKept",
    "accuracy",
    "accuracyLo",
    "accuracyHi",
    "correct",
    "total",
    "meanAnswerProb",
    "specHash",
    "error",
  ];
  const lines = [keys.join(",")];
  for (const r of rows) lines.push(keys.map((k) => csvCell(r[k])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

function texEscape(s: string): string {
  return s
    .replace(/\\/g, "\\textbackslash{}")
    .replace(/([#$%&_{}])/g, "\\$1")
    .replace(/~/g, "\\textasciitilde{}")
    .replace(/\^/g, "\\textasciicircum{}")
    .replace(/×/g, "$\\times$")
    .replace(/–/g, "--")
    .replace(/Δ/g, "$\\Delta$");
}

export function toTex(rows: TableRow[], ctx: TableContext): string {
  const COLUMNS = columns(rows);
  const ok = rows.filter((r) => r.status === "ok");
  const head = COLUMNS.map(([h]) => texEscape(h));
  const out = [
    "% Generated by kvlab export; needs \\usepackage{booktabs}.",
    "\\begin{table}[t]",
    "\\centering",
    "\\small",
    `\\begin{tabular}{l${"r".repeat(COLUMNS.length - 1)}}`,
    "\\toprule",
    `${head.join(" & ")} \\\\`,
    "\\midrule",
  ];
  for (const r of ok) {
    const cells = COLUMNS.map(([, f]) => texEscape(f(r)));
    if (r.baseline) cells[0] = `${cells[0]}$^\\dagger$`;
    out.push(`${cells.join(" & ")} \\\\`);
  }
  out.push(
    "\\bottomrule",
    "\\end{tabular}",
    `\\caption{${texEscape(ctx.caption ?? ctx.experiment)}. $^\\dagger$baseline (f32 cache).${isTaskTable(rows) ? " Accuracy with 95\\% Wilson intervals." : " KLD in nats; $\\Delta$PPL interval: 95\\%, paired per-token NLL differences."}}`,
    `\\label{tab:${ctx.experiment.replace(/[^A-Za-z0-9-]/g, "-")}}`,
    "\\end{table}",
    "",
  );
  return out.join("\n");
}

export function toJson(rows: TableRow[], ctx: TableContext): string {
  return `${JSON.stringify({ experiment: ctx.experiment, caption: ctx.caption ?? null, rows }, null, 2)}\n`;
}

export function formatTable(format: TableFormat, rows: TableRow[], ctx: TableContext): string {
  switch (format) {
    case "md":
      return toMarkdown(rows, ctx);
    case "csv":
      return toCsv(rows);
    case "tex":
      return toTex(rows, ctx);
    case "json":
      return toJson(rows, ctx);
  }
}
