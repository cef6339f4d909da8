/**
 * One full garbage collection, now. V8 collects its heap when the JS heap grows, but kvlab's
 * forward passes allocate in WASM memory, so a large JS object dropped before them (a model's
 * vocabulary) would stay resident through the run's peak. Node-only (commands are): the `gc`
 * function is made available to a fresh context with V8's --expose-gc flag.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}
