import { cpuLlama, importNodeLlamaCpp } from "./node-llama-cpp.ts";

interface Options {
  model: string;
  threads: number;
  kvType: "F16" | "Q8_0" | "Q4_0";
  promptTokens: number;
  /** Untimed decode steps before the first window. */
  warmup: number;
  windows: number;
  windowTokens: number;
  vocabSize: number;
}

const opts = JSON.parse(process.argv[2] ?? "{}") as Options;
const nlc = await importNodeLlamaCpp();
const llama = await cpuLlama(nlc, opts.threads);
const model = await llama.loadModel({ modelPath: opts.model, gpuLayers: 0 });
const decodeTokens = opts.warmup + opts.windows * opts.windowTokens;
const context = await model.createContext({
  contextSize: opts.promptTokens + decodeTokens + 16,
  batchSize: 512,
  threads: { ideal: opts.threads, min: opts.threads },
  // A quantized V cache needs flash attention in llama.cpp; on for every type alike.
  flashAttention: true,
  experimentalKvCacheKeyType: opts.kvType,
  experimentalKvCacheValueType: opts.kvType,
  sequences: 1,
});
const seq = context.getSequence();
let x = 12345;
const prompt = Array.from({ length: opts.promptTokens }, () => {
  x = (x * 1103515245 + 12345) >>> 0;
  return 259 + (x % (opts.vocabSize - 259));
});

const t0 = performance.now();
const stamps: number[] = []; // arrival time of each generated token
for await (const _token of seq.evaluate(prompt, { temperature: 0 })) {
  stamps.push(performance.now());
  if (stamps.length > decodeTokens) break;
}
// Token 0 comes out of the prompt's evaluation; tokens 1..decodeTokens are one decode step each.
const windows: number[] = [];
for (let w = 0; w < opts.windows; w++) {
  const a = stamps[opts.warmup + w * opts.windowTokens]!;
  const b = stamps[opts.warmup + (w + 1) * opts.windowTokens]!;
  windows.push((opts.windowTokens * 1000) / (b - a));
}
console.log(
  JSON.stringify({
    promptSeconds: (stamps[0]! - t0) / 1000,
    decodeTokensPerS: windows,
    flashAttention: context.flashAttention,
    llamaCppRelease: llama.llamaCppRelease?.release,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
await context.dispose();
await model.dispose();
await llama.dispose();
