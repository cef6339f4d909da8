/**
 * Which of the two builds of assembly/ the wasm executor loads (issue 15, relaxed SIMD):
 *   build/kvlab.wasm          baseline: simd128 + threads (every engine kvlab supports)
 *   build/kvlab-relaxed.wasm  + relaxed SIMD: f32x4.relaxed_madd (FMA) in the f32 kernels and
 *                             i32x4.relaxed_dot_i8x16_i7x16_add_s in the q8 scores
 * "auto" (the default) takes the relaxed build where the engine validates it (browsers, Node 22+;
 * Node 20 only with --experimental-wasm-relaxed-simd, which the CLI launcher does not pass, so
 * Node 20 runs the baseline). $KVLAB_WASM=baseline|relaxed|auto overrides; both builds are
 * tested against ref (test/kernels/wasm-builds.test.ts).
 *
 * The two builds agree with ref within the same tolerances but not bit for bit: an FMA rounds
 * once where mul + add rounds twice. Integer q8 scores are bit-identical in both.
 *
 * Validation is not enough: V8 11.3 (Node 20 with the flag) validates the relaxed build but
 * reads the relaxed dot's first operand unsigned (measured: wrong scores). So the relaxed build
 * is used only when its relaxedDotCheck gives the standard's answer (loadWasmBuild).
 */
import { type LoadedWasm, loadKvlabWasm } from "./wasm-loader.ts";

export type WasmBuild = "auto" | "baseline" | "relaxed";

export const WASM_BUILDS: readonly WasmBuild[] = ["auto", "baseline", "relaxed"];

/** $KVLAB_WASM (default auto); another value is an error naming the variable. */
export function wasmBuildFromEnv(): WasmBuild {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
    ?.KVLAB_WASM;
  if (v === undefined || v === "") return "auto";
  if ((WASM_BUILDS as readonly string[]).includes(v)) return v as WasmBuild;
  throw new Error(`KVLAB_WASM=${v}: expected one of ${WASM_BUILDS.join(", ")}`);
}

/** The relaxed build's location next to the baseline's (…/kvlab.wasm -> …/kvlab-relaxed.wasm). */
export function relaxedLocation(base: string | URL): string | URL {
  if (base instanceof URL) return new URL(base.href.replace(/kvlab\.wasm$/, "kvlab-relaxed.wasm"));
  return base.replace(/kvlab\.wasm$/, "kvlab-relaxed.wasm");
}

/** Whether a loaded module's relaxed i8 x i7 dot follows the standard (signed first operand). */
export function relaxedDotOk(w: LoadedWasm): boolean {
  return w.exports.relaxedDotCheck(-3, 5) === -60 && w.exports.relaxedDotCheck(127, 127) === 4 * 127 * 127;
}

/**
 * Load a build, given the baseline's location: "baseline"; "relaxed" (an error saying why when
 * this engine cannot run it: it is never silently replaced); "auto" the relaxed one when it
 * compiles here (the engine validates relaxed SIMD) and passes relaxedDotOk, else the baseline.
 */
export async function loadWasmBuild(
  build: WasmBuild,
  base: string | URL,
): Promise<LoadedWasm & { location: string | URL }> {
  if (build === "baseline") return { ...(await loadKvlabWasm(base)), location: base };
  const location = relaxedLocation(base);
  let why: string;
  try {
    const w = await loadKvlabWasm(location);
    if (relaxedDotOk(w)) return { ...w, location };
    why =
      "this engine's relaxed SIMD dot product does not follow the standard (it reads the signed operand unsigned; V8 11.3 / Node 20 with --experimental-wasm-relaxed-simd does this)";
  } catch (e) {
    why = (e as Error).message;
  }
  if (build === "auto") return { ...(await loadKvlabWasm(base)), location: base };
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  throw new Error(
    `${String(location)} does not run here: ${why}${node ? ` (Node ${node}; Node 22+ has relaxed SIMD)` : ""}; use KVLAB_WASM=baseline, or npm run asbuild if the file is missing`,
  );
}
