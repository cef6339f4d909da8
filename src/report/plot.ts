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
  y: number;
  front: boolean;
  /** Label anchor in data coordinates and its alignment, placed by placeLabels. */
  lx: number;
  ly: number;
  align: "left" | "right" | "center";
}

const WIDTH = 460;
const HEIGHT = 340;
const FONT_SIZE = 11;
/** DejaVu Sans averages about 0.6 em per character; a generous estimate keeps labels apart. */
const CHAR_W = FONT_SIZE * 0.62;

/** An axis: log when the values span 3x or more (window collapse, KLD decades), else linear. */
interface Axis {
  log: boolean;
  domain: [number, number];
}

function axisFor(values: number[], frac: number): Axis {
  if (values.length === 0) return { log: true, domain: [1, 10] };
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (hi / lo >= 3) {
    const pad = Math.exp(Math.log(hi / lo) * frac);
    return { log: true, domain: [lo / pad, hi * pad] };
  }
  // Linear, zoomed on the data (small PPL differences stay visible), never below zero.
  const span = Math.max(hi - lo, hi * 2e-3);
  return { log: false, domain: [Math.max(0, lo - span * frac * 2), hi + span * frac * 2] };
}

/** Pixel position of v on an axis of `size` pixels (0 at the domain's start). */
function toPixel(a: Axis, v: number, size: number): number {
  const [d0, d1] = a.domain;
  return a.log ? (size * Math.log(v / d0)) / Math.log(d1 / d0) : (size * (v - d0)) / (d1 - d0);
}

function fromPixel(a: Axis, p: number, size: number): number {
  const [d0, d1] = a.domain;
  return a.log ? d0 * Math.exp((p / size) * Math.log(d1 / d0)) : d0 + (p / size) * (d1 - d0);
}

interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

const overlap = (a: Box, b: Box) =>
  Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0)) *
  Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));

/**
 * Greedy label placement in pixel space (vega's own `label` transform needs a canvas, which a
 * headless SVG render does not have): for each point, try eight spots around it and keep the
 * first that overlaps no point and no earlier label and stays inside the plot, else the one
 * with the least overlap.
 */
function placeLabels(pts: Point[], xa: Axis, ya: Axis): void {
  const px = (x: number) => toPixel(xa, x, WIDTH);
  const py = (y: number) => HEIGHT - toPixel(ya, y, HEIGHT);
  const ix = (p: number) => fromPixel(xa, p, WIDTH);
  const iy = (p: number) => fromPixel(ya, HEIGHT - p, HEIGHT);
  const pointBoxes = pts.map((p) => ({
    x0: px(p.kib) - 5,
    x1: px(p.kib) + 5,
    y0: py(p.y) - 5,
    y1: py(p.y) + 5,
  }));
  const placed: Box[] = [];
  const h = FONT_SIZE + 2;
  for (const p of pts) {
    const x = px(p.kib);
    const y = py(p.y);
    const w = p.backend.length * CHAR_W;
    const candidates: [number, number, Point["align"]][] = [
      [x + 7, y, "left"],
      [x - 7, y, "right"],
      [x + 4, y - h, "left"],
      [x + 4, y + h, "left"],
      [x - 4, y - h, "right"],
      [x - 4, y + h, "right"],
      [x, y - h - 2, "center"],
      [x, y + h + 2, "center"],
    ];
    let best: { c: (typeof candidates)[number]; cost: number; box: Box } | undefined;
    for (const c of candidates) {
      const x0 = c[2] === "left" ? c[0] : c[2] === "right" ? c[0] - w : c[0] - w / 2;
      const box = { x0, x1: x0 + w, y0: c[1] - h / 2, y1: c[1] + h / 2 };
      let cost = 0;
      for (const b of placed) cost += overlap(box, b);
      for (const b of pointBoxes) cost += overlap(box, b);
      // Leaving the plot area is worse than a small overlap.
      cost +=
        4 *
        (Math.max(0, -box.x0) +
          Math.max(0, box.x1 - WIDTH) +
          Math.max(0, -box.y0) +
          Math.max(0, box.y1 - HEIGHT)) *
        h;
      if (!best || cost < best.cost) best = { c, cost, box };
      if (cost === 0) break;
    }
    placed.push(best!.box);
    p.lx = ix(best!.c[0]);
    p.ly = iy(best!.c[1]);
    p.align = best!.c[2];
  }
}

function panelPoints(rows: TableRow[], y: "ppl" | "kld"): Point[] {
  const pts: Point[] = [];
  for (const r of rows) {
    if (r.status !== "ok" || r.peakKvBytes === null || r.ppl === null) continue;
    // The baseline's KL against itself is ~0 (rounding only): nothing to show on a log axis.
    const v = y === "ppl" ? r.ppl : r.baseline ? null : r.klMean;
    if (v === null || !(v > 0)) continue;
    pts.push({
      backend: r.backend,
      kind: r.baseline ? "baseline (f32)" : "run",
      kib: r.peakKvBytes / 1024,
      y: v,
      front: false,
      lx: 0,
      ly: 0,
      align: "left",
    });
  }
  for (const p of paretoFront(
    pts,
    (p) => p.kib,
    (p) => p.y,
  ))
    p.front = true;
  return pts;
}

function panel(rows: TableRow[], y: "ppl" | "kld", title: string) {
  const pts = panelPoints(rows, y);
  const xa = axisFor(
    pts.map((p) => p.kib),
    0.12,
  );
  const ya = axisFor(
    pts.map((p) => p.y),
    0.08,
  );
  placeLabels(pts, xa, ya);
  const scaleOf = (a: Axis) =>
    a.log
      ? { type: "log" as const, domain: a.domain, nice: false }
      : { type: "linear" as const, domain: a.domain, nice: false, zero: false };
  const x = {
    field: "kib",
    type: "quantitative" as const,
    scale: scaleOf(xa),
    axis: { tickCount: 6 },
    title: `peak KV cache (KiB${xa.log ? ", log scale" : ""})`,
  };
  const yEnc = {
    field: "y",
    type: "quantitative" as const,
    scale: scaleOf(ya),
    axis: { tickCount: 6 },
    title: `${title}${ya.log ? " (log scale)" : ""}`,
  };
  const labels = (["left", "right", "center"] as const).map((align) => ({
    transform: [{ filter: `datum.align == '${align}'` }],
    mark: {
      type: "text" as const,
      align,
      baseline: "middle" as const,
      fontSize: FONT_SIZE,
      color: "#111827",
    },
    encoding: {
      x: { field: "lx", type: "quantitative" as const, scale: x.scale },
      y: { field: "ly", type: "quantitative" as const, scale: yEnc.scale },
      text: { field: "backend", type: "nominal" as const },
    },
  }));
  return {
    width: WIDTH,
    height: HEIGHT,
    data: { values: pts },
    layer: [
      {
        transform: [{ filter: "datum.front" }],
        mark: {
          type: "line" as const,
          interpolate: "step-after" as const,
          color: "#9ca3af",
          strokeDash: [5, 3],
        },
        encoding: { x, y: yEnc, order: { field: "kib", type: "quantitative" as const } },
      },
      {
        mark: { type: "point" as const, filled: true, size: 70, clip: true },
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
            field: "front",
            type: "nominal" as const,
            scale: { domain: [true, false], range: ["diamond", "circle"] },
            legend: null,
          },
        },
      },
      ...labels,
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
    hconcat: [panel(rows, "ppl", "perplexity"), panel(rows, "kld", "mean KL divergence vs f32 (nats)")],
    resolve: { scale: { x: "independent", y: "independent" } },
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
