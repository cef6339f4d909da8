/**
 * The perplexity-vs-memory plot: x = peak KV cache bytes (log), y = PPL (left) and mean KLD
 * (right, log; the baseline's ~0 is left out), one labelled mark per run, the lower-left
 * Pareto front drawn as a staircase. Written with vega-lite (a declarative spec that is easy
 * to restyle and that researchers can open in the Vega editor), rendered headless by vega's
 * SVG renderer (no canvas/native dependency) and rasterised to PNG by resvg (a self-contained
 * Rust renderer, prebuilt for Linux/macOS/Windows), using the system's fonts.
 */
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import * as vl from "vega-lite";
import { paretoFront, type TableRow } from "./rows.ts";

interface Point {
  backend: string;
  kind: string;
  kib: number;
  ppl: number;
  kld: number | null;
  frontPpl: boolean;
  frontKld: boolean;
}

function points(rows: TableRow[]): Point[] {
  const ok = rows.filter((r) => r.status === "ok" && r.peakKvBytes !== null && r.ppl !== null);
  const pts = ok.map(
    (r): Point => ({
      backend: r.backend,
      kind: r.baseline ? "baseline (f32)" : "run",
      kib: r.peakKvBytes! / 1024,
      ppl: r.ppl!,
      // The baseline's KL against itself is ~0 (rounding only): nothing to show on a log axis.
      kld: !r.baseline && r.klMean !== null && r.klMean > 0 ? r.klMean : null,
      frontPpl: false,
      frontKld: false,
    }),
  );
  for (const p of paretoFront(
    pts,
    (p) => p.kib,
    (p) => p.ppl,
  ))
    p.frontPpl = true;
  for (const p of paretoFront(
    pts.filter((p) => p.kld !== null),
    (p) => p.kib,
    (p) => p.kld!,
  ))
    p.frontKld = true;
  return pts;
}

function panel(y: "ppl" | "kld", title: string, front: "frontPpl" | "frontKld") {
  const x = {
    field: "kib",
    type: "quantitative" as const,
    scale: { type: "log" as const, nice: false, padding: 24 },
    title: "peak KV cache (KiB, log scale)",
  };
  const yEnc = {
    field: y,
    type: "quantitative" as const,
    scale: { type: "log" as const, nice: false, padding: 16 },
    title,
  };
  return {
    width: 460,
    height: 340,
    transform: [{ filter: `datum.${y} != null` }],
    layer: [
      {
        transform: [{ filter: `datum.${front}` }],
        mark: {
          type: "line" as const,
          interpolate: "step-after" as const,
          color: "#9ca3af",
          strokeDash: [5, 3],
        },
        encoding: { x, y: yEnc, order: { field: "kib", type: "quantitative" as const } },
      },
      {
        mark: { type: "point" as const, filled: true, size: 70 },
        encoding: {
          x,
          y: yEnc,
          color: {
            field: "kind",
            type: "nominal" as const,
            scale: { domain: ["baseline (f32)", "run"], range: ["#dc2626", "#2563eb"] },
            legend: null,
          },
          shape: {
            field: front,
            type: "nominal" as const,
            scale: { domain: [true, false], range: ["diamond", "circle"] },
            legend: null,
          },
        },
      },
      {
        mark: {
          type: "text" as const,
          align: "left" as const,
          dx: 7,
          dy: -6,
          fontSize: 11,
          color: "#111827",
        },
        encoding: { x, y: yEnc, text: { field: "backend", type: "nominal" as const } },
      },
    ],
  };
}

export function plotSpec(rows: TableRow[], title: string): vl.TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: title,
      subtitle: "diamonds and dashed staircase: Pareto front (less memory, lower error); red: f32 baseline",
      fontSize: 15,
    },
    background: "white",
    padding: 12,
    data: { values: points(rows) },
    hconcat: [
      panel("ppl", "perplexity (log scale)", "frontPpl"),
      panel("kld", "mean KL divergence vs f32 (nats, log scale)", "frontKld"),
    ],
    config: {
      font: "DejaVu Sans",
      axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: "#e5e7eb" },
    },
  } as unknown as vl.TopLevelSpec;
}

export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG at 2x for legibility on high-density screens and in slides. */
export function svgToPng(svg: string, scale = 2): Buffer {
  const r = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" },
  });
  return r.render().asPng();
}
