// kvlab for browsers and bundlers (package.json exports "browser" condition): the core API
// (src/core.ts), where files given as bytes are served from memory (loadModelFromFiles,
// mountFiles) and the kernels are fetched from a URL or given as bytes
// (setDefaultWasmLocation, createWasmExecutor({ wasm })). The experiment
// runner, its run store and the CLI stay Node-only (src/index.ts).
export * from "./core.ts";
