/**
 * The perplexity/KL-vs-memory plot on the page: the same vega-lite spec as `kvlab run`'s
 * ppl-vs-memory.svg (src/report/plot.ts plotSpec), rendered by vega's SVG renderer in the page.
 * The web build replaces plot.ts's PNG rasteriser (resvg, a Node addon) with a stub: pages show
 * the SVG itself.
 */
import { plotSpec, renderSvg } from "../../src/report/plot.ts";
import type { TableRow } from "../../src/report/rows.ts";
import type { Row } from "./messages.ts";

/** A web row as the report's TableRow (the fields the plot and table read; the rest null). */
export function toTableRow(r: Row, baseline: Row | undefined): TableRow {
  return {
    backend: r.name,
    baseline: r === baseline,
    status: "ok",
    bitsPerElement: r.bitsPerElement,
    peakKvBytes: r.peakKvBytes,
    compressionVsF16: null,
    ppl: r.ppl,
    dPpl: baseline ? r.ppl - baseline.ppl : null,
    dPplLo: null,
    dPplHi: null,
    dNllZ: null,
    nll: r.nll,
    klMean: r.kl.klMean,
    klP99: r.kl.klP99,
    sameTop1: r.kl.sameTop1,
    tokens: r.tokens,
    tokensPerSecond: r.tokensPerSecond,
    fallbacks: null,
    attentionMassKept: null,
    accuracy: null,
    accuracyLo: null,
    accuracyHi: null,
    correct: null,
    total: null,
    meanAnswerProb: null,
    taskCells: null,
    warnings: [],
    specHash: "",
  };
}

export async function plotSvg(rows: Row[], title: string): Promise<string> {
  const base = rows[0];
  return renderSvg(
    plotSpec(
      rows.map((r) => toTableRow(r, base)),
      title,
    ),
  );
}
