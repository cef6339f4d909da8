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
  /** Vertical interval bar through the point (y units), kept clear of labels. */
  lo?: number;
  hi?: number;
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
function placeLabels(pts: Point[], xa: Axis, ya: Axis, avoidFront = false): void {
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
  for (const p of pts)
    if (p.lo !== undefined && p.hi !== undefined)
      pointBoxes.push({ x0: px(p.kib) - 2, x1: px(p.kib) + 2, y0: py(p.hi), y1: py(p.lo) });
  if (avoidFront) {
    // The dashed staircase (step-after: across at this point's y, then to the next point's y).
    const front = pts.filter((p) => p.front).sort((a, b) => a.kib - b.kib);
    for (let i = 0; i + 1 < front.length; i++) {
      const [a, b] = [front[i]!, front[i + 1]!];
      const [xa0, xb0, ya0, yb0] = [px(a.kib), px(b.kib), py(a.y), py(b.y)];
      pointBoxes.push({ x0: xa0, x1: xb0, y0: ya0 - 1.5, y1: ya0 + 1.5 });
      pointBoxes.push({ x0: xb0 - 1.5, x1: xb0 + 1.5, y0: Math.min(ya0, yb0), y1: Math.max(ya0, yb0) });
    }
  }
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

/** One text layer per alignment: the labels at the anchors placeLabels chose. */
function labelLayers(xScale: object, yScale: object) {
  return (["left", "right", "center"] as const).map((align) => ({
    transform: [{ filter: `datum.align == '${align}'` }],
    mark: {
      type: "text" as const,
      align,
      baseline: "middle" as const,
      fontSize: FONT_SIZE,
      color: "#111827",
    },
    encoding: {
      x: { field: "lx", type: "quantitative" as const, scale: xScale },
      y: { field: "ly", type: "quantitative" as const, scale: yScale },
      text: { field: "backend", type: "nominal" as const },
    },
  }));
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

/** The Pareto front of a panel as a dashed step line through the points marked `front`. */
function paretoStaircase(x: object, y: object) {
  return {
    transform: [{ filter: "datum.front" }],
    mark: {
      type: "line" as const,
      interpolate: "step-after" as const,
      color: "#9ca3af",
      strokeDash: [5, 3],
    },
    encoding: { x, y, order: { field: "kib", type: "quantitative" as const } },
  };
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
  const labels = labelLayers(x.scale, yEnc.scale);
  return {
    width: WIDTH,
    height: HEIGHT,
    data: { values: pts },
    layer: [
      paretoStaircase(x, yEnc),
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

/** Accuracy axis: fixed 0..100 % with a margin so points at 0 % and 100 % are not cut in half. */
const ACCURACY_AXIS: Axis = { log: false, domain: [-5, 105] };

function accuracyPoints(rows: TableRow[]): (Point & { label: string; ci: string })[] {
  const pts: (Point & { label: string; ci: string })[] = [];
  for (const r of rows) {
    if (r.status !== "ok" || r.peakKvBytes === null || r.accuracy === null || !Number.isFinite(r.accuracy))
      continue;
    const y = r.accuracy * 100;
    pts.push({
      backend: r.backend,
      kind: r.baseline ? "baseline" : "run",
      kib: r.peakKvBytes / 1024,
      y,
      lo: (r.accuracyLo ?? r.accuracy) * 100,
      hi: (r.accuracyHi ?? r.accuracy) * 100,
      front: false,
      lx: 0,
      ly: 0,
      align: "left",
      label: r.correct !== null && r.total !== null ? `${r.correct}/${r.total}` : "",
      ci: `${((r.accuracyLo ?? r.accuracy) * 100).toFixed(0)}-${((r.accuracyHi ?? r.accuracy) * 100).toFixed(0)}%`,
    });
  }
  // Upper-left front: less memory and higher accuracy (the lower-left front of -accuracy).
  for (const p of paretoFront(
    pts,
    (p) => p.kib,
    (p) => -p.y,
  ))
    p.front = true;
  return pts;
}

/**
 * Task accuracy vs memory: x = peak KV cache bytes (log when the runs span 3x or more, as in
 * the perplexity plot), y = accuracy (%) with its 95% Wilson interval as a vertical bar, one
 * labelled point per backend, the baseline in red, the upper-left Pareto front (less memory,
 * higher accuracy) as a dashed staircase.
 */
export function accuracyPlotSpec(rows: TableRow[], title: string): vl.TopLevelSpec {
  const pts = accuracyPoints(rows);
  const xa = axisFor(
    pts.map((p) => p.kib),
    0.12,
  );
  const ya = ACCURACY_AXIS;
  placeLabels(pts, xa, ya, true);
  const xScale = xa.log
    ? { type: "log" as const, domain: xa.domain, nice: false }
    : { type: "linear" as const, domain: xa.domain, nice: false, zero: false };
  const yScale = { type: "linear" as const, domain: ya.domain, nice: false, zero: false };
  const x = {
    field: "kib",
    type: "quantitative" as const,
    scale: xScale,
    axis: { tickCount: 6 },
    title: `peak KV cache (KiB${xa.log ? ", log scale" : ""})`,
  };
  const yEnc = {
    field: "y",
    type: "quantitative" as const,
    scale: yScale,
    axis: { values: [0, 20, 40, 60, 80, 100], labelExpr: "datum.value + '%'" },
    title: "accuracy (bars: 95% Wilson interval)",
  };
  const color = {
    field: "kind",
    type: "nominal" as const,
    scale: { domain: ["baseline", "run"], range: ["#dc2626", "#2563eb"] },
    legend: null,
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: title,
      // Two short lines: headless vega over-estimates text width, and one long line widens the image.
      subtitle: ["diamonds, dashed staircase: Pareto front (less memory, higher accuracy)", "red: baseline"],
      fontSize: 15,
    },
    background: "white",
    padding: 12,
    width: WIDTH,
    height: HEIGHT,
    data: { values: pts },
    layer: [
      paretoStaircase(x, yEnc),
      {
        mark: { type: "rule" as const, strokeWidth: 1.5, opacity: 0.55 },
        encoding: {
          x,
          y: { field: "lo", type: "quantitative" as const, scale: yScale },
          y2: { field: "hi" },
          color,
        },
      },
      ...(["lo", "hi"] as const).map((f) => ({
        mark: {
          type: "tick" as const,
          orient: "horizontal" as const,
          size: 8,
          thickness: 1.5,
          opacity: 0.55,
        },
        encoding: { x, y: { field: f, type: "quantitative" as const, scale: yScale }, color },
      })),
      {
        mark: { type: "point" as const, filled: true, size: 70, opacity: 1 },
        encoding: {
          x,
          y: yEnc,
          color,
          shape: {
            field: "front",
            type: "nominal" as const,
            scale: { domain: [true, false], range: ["diamond", "circle"] },
            legend: null,
          },
          tooltip: [
            { field: "backend", type: "nominal" as const },
            { field: "label", type: "nominal" as const, title: "correct/total" },
            { field: "y", type: "quantitative" as const, title: "accuracy (%)", format: ".1f" },
            { field: "ci", type: "nominal" as const, title: "95% interval" },
            { field: "kib", type: "quantitative" as const, title: "peak KV (KiB)", format: ",.1f" },
          ],
        },
      },
      ...labelLayers(xScale, yScale),
    ],
    config: {
      font: "DejaVu Sans",
      axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: "#e5e7eb" },
    },
  } as unknown as vl.TopLevelSpec;
}

/** Heatmap cell size (px): at least this, wider for long "correct/total" texts or panel titles. */
const CELL_W = 46;
const CELL_H = 24;
const CELL_FONT = 10;
const HEADER_FONT = 12;
/** Target width of the wrapped grid of panels. */
const HEATMAP_MAX_WIDTH = 1400;

/** k/n as a whole percent, with one decimal where rounding would read as 0% or 100% (4390/4400: 99.8%). */
function percent(k: number, n: number): string {
  const p = (100 * k) / n;
  if (!Number.isFinite(p)) return "n/a";
  const whole = Math.round(p);
  return `${(whole === 100 && k < n) || (whole === 0 && k > 0) ? p.toFixed(1) : whole}%`;
}

/**
 * Where each policy loses the fact: one small depth x length panel per backend (the baseline
 * first, then the table's order), colour = accuracy on one fixed 0..1 scale for every panel,
 * each cell's text "correct/total". Panels wrap in columns.
 */
export function heatmapSpec(rows: TableRow[], title: string): vl.TopLevelSpec {
  const cells: {
    backend: string;
    header: string;
    length: number;
    depth: number;
    accuracy: number | null;
    text: string;
    dark: boolean;
  }[] = [];
  const headers: string[] = [];
  const depths = new Set<number>();
  for (const r of rows) {
    if (r.status !== "ok" || !r.taskCells || r.taskCells.length === 0) continue;
    const acc =
      r.correct !== null && r.total !== null && r.accuracy !== null
        ? ` ${percent(r.correct, r.total)} (${r.correct}/${r.total})`
        : "";
    const header = `${r.backend}${r.baseline ? " (baseline)" : ""}\n${acc.trim()}`;
    if (headers.includes(header)) continue;
    headers.push(header);
    for (const c of r.taskCells) {
      depths.add(c.depth);
      const a = c.total > 0 && Number.isFinite(c.accuracy) ? c.accuracy : null;
      cells.push({
        backend: r.backend,
        header,
        length: c.length,
        depth: c.depth,
        accuracy: a,
        text: `${c.correct}/${c.total}`,
        // White text on the dark ends of the colour scale.
        dark: a !== null && (a < 0.2 || a > 0.85),
      });
    }
  }
  // Cells wide enough for their text, panels wide enough for their two-line title.
  const nDepths = Math.max(depths.size, 1);
  const longest = (xs: string[]) => Math.max(0, ...xs.map((x) => x.length));
  const cellW = Math.ceil(
    Math.max(
      CELL_W,
      longest(cells.map((c) => c.text)) * CELL_FONT * 0.62 + 10,
      (longest(headers.flatMap((h) => h.split("\n"))) * HEADER_FONT * 0.62 + 8) / nDepths,
    ),
  );
  const panelW = nDepths * cellW;
  const columns = Math.max(1, Math.min(headers.length, Math.floor(HEATMAP_MAX_WIDTH / (panelW + 70))));
  const x = {
    field: "depth",
    type: "ordinal" as const,
    sort: "ascending" as const,
    title: "depth",
    axis: { labelExpr: "format(datum.value * 100, '~r') + '%'", labelAngle: 0 },
  };
  // Short, horizontal, above the labels: a rotated title would be taller than a small panel.
  const y = {
    field: "length",
    type: "ordinal" as const,
    sort: "descending" as const,
    title: "tokens",
    axis: {
      titleAngle: 0,
      titleAnchor: "end",
      titleAlign: "right",
      titleBaseline: "bottom",
      titleY: -4,
      titleX: 0,
    },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: title,
      subtitle: [
        "x: depth of the fact in the context (0% = start, 100% = end); y: prompt length (tokens)",
        "colour: accuracy per cell, one scale for every panel; text: correct/total",
      ],
      fontSize: 15,
      offset: 14,
    },
    background: "white",
    padding: 12,
    data: { values: cells },
    facet: {
      field: "header",
      type: "nominal",
      sort: headers,
      title: null,
      header: { labelExpr: "split(datum.value, '\\n')", labelFontSize: HEADER_FONT, labelLineHeight: 15 },
    },
    columns,
    spacing: { row: 18, column: 24 },
    spec: {
      width: { step: cellW },
      height: { step: CELL_H },
      layer: [
        {
          mark: { type: "rect" as const, color: "#e5e7eb", stroke: "white", strokeWidth: 1 },
          encoding: { x, y },
        },
        {
          transform: [{ filter: "isValid(datum.accuracy)" }],
          mark: { type: "rect" as const, stroke: "white", strokeWidth: 1 },
          encoding: {
            x,
            y,
            color: {
              field: "accuracy",
              type: "quantitative" as const,
              scale: { domain: [0, 1], scheme: "redyellowblue", clamp: true },
              legend: {
                title: "accuracy",
                format: ".0%",
                values: [0, 0.25, 0.5, 0.75, 1],
                gradientLength: 160,
              },
            },
            tooltip: [
              { field: "backend", type: "nominal" as const },
              { field: "length", type: "ordinal" as const },
              { field: "depth", type: "ordinal" as const },
              { field: "text", type: "nominal" as const, title: "correct/total" },
            ],
          },
        },
        {
          mark: { type: "text" as const, fontSize: CELL_FONT, baseline: "middle" as const },
          encoding: {
            x,
            y,
            text: { field: "text", type: "nominal" as const },
            // A condition, not a second colour scale: the layers share the accuracy scale.
            color: { condition: { test: "datum.dark", value: "white" }, value: "#111827" },
          },
        },
      ],
    },
    // Every panel keeps its own axes (a wrapped grid would leave some without labels); one colour scale.
    resolve: { scale: { color: "shared" }, axis: { x: "independent", y: "independent" } },
    config: {
      font: "DejaVu Sans",
      axis: { labelFontSize: 10, titleFontSize: 11, grid: false },
      view: { stroke: null },
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
