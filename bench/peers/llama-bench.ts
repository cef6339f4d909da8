import { cpuLlama, importNodeLlamaCpp } from "./node-llama-cpp.ts";

interface Options {
  model: string;
  threads: number;
  kvType: "F16" | "Q8_0" | "Q4_0";
  promptTokens: number;
  decodeTokens: number;
  decodeSeconds: number;
  vocabSize: number;
}

const opts = { decodeSeconds: 15, ...(JSON.parse(process.argv[2] ?? "{}") as Partial<Options>) } as Options;
const nlc = await importNodeLlamaCpp();
const llama = await cpuLlama(nlc, opts.threads);
const model = await llama.loadModel({ modelPath: opts.model, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: opts.promptTokens + opts.decodeTokens + 16,
  batchSize: opts.promptTokens,
  threads: { ideal: opts.threads, min: opts.threads },
  // Quantized V caches need flash attention in llama.cpp; use it for every type alike.
  flashAttention: true,
  experimentalKvCacheKeyType: opts.kvType,
  experimentalKvCacheValueType: opts.kvType,
  sequences: 1,
});
const seq = context.getSequence();
let x = 12345;
const tok = () => {
  x = (x * 1103515245 + 12345) >>> 0;
  return 259 + (x % (opts.vocabSize - 259));
};
const prompt = Array.from({ length: opts.promptTokens }, tok);

// Warm-up (thread pool, weights paged in), then from an empty cache.
await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 32));
await seq.clearHistory();

let t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
const ppS = (performance.now() - t0) / 1000;
// Decode: up to decodeTokens steps, stopping after decodeSeconds (a contended machine can make
// each step take seconds); the rate uses the steps actually run.
t0 = performance.now();
let steps = 0;
while (steps < opts.decodeTokens && (performance.now() - t0) / 1000 < opts.decodeSeconds) {
  await seq.evaluateWithoutGeneratingNewTokens([tok()]);
  steps++;
}
const decS = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    ppTokensPerS: opts.promptTokens / ppS,
    decodeTokensPerS: steps / decS,
    decodeSteps: steps,
    flashAttention: context.flashAttention,
    llamaCppRelease: llama.llamaCppRelease?.release,
    cpuMathCores: llama.cpuMathCores,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
await context.dispose();
await model.dispose();
await llama.dispose();
