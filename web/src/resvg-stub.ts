// The web build's stand-in for @resvg/resvg-js (a Node addon that rasterises SVG to PNG):
// src/report/plot.ts imports it for svgToPng, which the page never calls (it shows the SVG).
export class Resvg {
  constructor() {
    throw new Error("PNG rendering (resvg) is not available in the browser; use the SVG");
  }
}
