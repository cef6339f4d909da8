// kvlab for browsers and bundlers (package.json exports "browser" condition): the core API
// (src/core.ts), with files served from memory (mountFiles) and the kernels fetched from a URL
// or given as bytes (setDefaultWasmLocation, createWasmExecutor({ wasm })). The experiment
// runner, its run store and the CLI stay Node-only (src/index.ts).
export * from "./core.ts";
export { loadModelFromFiles } from "./model/from-files.ts";
