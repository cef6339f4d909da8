/**
 * What a section produces: tables for people (printed, and Markdown), flat records for the
 * JSON, "skipped: <reason>" lines for what could not run here, and target checks (issue 7).
 */

export type Cell = string | number | null;

export interface Table {
  title: string;
  columns: string[];
  rows: Cell[][];
  /** Lines printed under the table (what the baseline is, what was left out and why). */
  notes: string[];
}

export interface TargetCheck {
  target: string;
  /** e.g. ">= 0.6" or "<= 0.35". */
  want: string;
  /** The measured ratio, or null when it could not be measured. */
  measured: number | null;
  pass: boolean | null;
  detail: string;
}

export interface SectionResult {
  name: string;
  tables: Table[];
  /** Raw figures for the JSON (one object per measurement). */
  records: Record<string, unknown>[];
  skipped: string[];
  targets: TargetCheck[];
  seconds: number;
  /** 1-minute load average before and after the section: the machine is shared, read figures with it. */
  load: [number, number];
}

export function newSection(name: string): SectionResult {
  return { name, tables: [], records: [], skipped: [], targets: [], seconds: 0, load: [0, 0] };
}

export function skip(section: SectionResult, reason: string): void {
  section.skipped.push(reason);
  console.log(`  skipped: ${reason}`);
}

/** Number formatting: 3 significant digits, no exponent for everyday magnitudes. */
export function fmt(x: Cell): string {
  if (x === null) return "-";
  if (typeof x === "string") return x;
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (Number.isInteger(x) && a < 1e6) return String(x);
  if (a >= 1000) return Math.round(x).toString();
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

export function check(target: string, want: string, measured: number | null, detail: string): TargetCheck {
  let pass: boolean | null = null;
  if (measured !== null && Number.isFinite(measured)) {
    const bound = Number(want.slice(2).trim());
    pass = want.startsWith(">=") ? measured >= bound : measured <= bound;
  }
  return { target, want, measured, pass, detail };
}

export function renderText(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(fmt))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? "").length)));
  const line = (r: Cell[]) => r.map((c, i) => String(c ?? "").padStart(widths[i]!)).join("  ");
  const out = [`\n${t.title}`, line(t.columns), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const r of cells.slice(1)) out.push(line(r as Cell[]));
  for (const n of t.notes) out.push(`  ${n}`);
  return out.join("\n");
}

export function renderMarkdown(t: Table): string {
  const out = [
    `### ${t.title}`,
    "",
    `| ${t.columns.join(" | ")} |`,
    `|${t.columns.map(() => "---").join("|")}|`,
  ];
  for (const r of t.rows) out.push(`| ${r.map(fmt).join(" | ")} |`);
  if (t.notes.length) out.push("", ...t.notes.map((n) => `- ${n}`));
  return out.join("\n");
}

export function targetsTable(checks: TargetCheck[]): Table {
  return {
    title: "Targets (issue 7)",
    columns: ["target", "want", "measured", "status", "detail"],
    rows: checks.map((c) => [
      c.target,
      c.want,
      c.measured,
      c.want === "baseline" ? "baseline" : c.pass === null ? "not measured" : c.pass ? "met" : "MISSED",
      c.detail,
    ]),
    notes: [],
  };
}
