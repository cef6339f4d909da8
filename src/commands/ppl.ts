/** `kvlab ppl`: perplexity of a model on a text file under one KV cache backend. */
import type { Command } from "commander";
import { createCache } from "../cache/create.ts";
import { resolveCacheSpec, storageNotes } from "../cache/spec.ts";
import type { CacheSpecInput } from "../cache/types.ts";
import { ConfigError } from "../errors.ts";
import { evaluatePerplexity, type PerplexityProtocol } from "../eval/perplexity.ts";
import { contextWarning } from "../eval/probe.ts";
import { tokensOfFile } from "../eval/text-tokens.ts";
import { loadModel } from "../model/load.ts";
import type { WeightsMode } from "../model/tensors.ts";
import { collectGarbage } from "../platform/host.ts";
import { readTextFile } from "../text-file.ts";

/** Parse --cache: JSON (starts with "{") or a codec/preset name. */
export function parseCacheOption(s: string): CacheSpecInput {
  const t = s.trim();
  if (!t.startsWith("{")) return t;
  try {
    return JSON.parse(t) as CacheSpecInput;
  } catch (err) {
    throw new ConfigError("--cache", `not valid JSON: ${(err as Error).message}`);
  }
}

export function parseIntOption(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(name, `expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Read a text file exactly as stored (UTF-8, line endings untouched: CRLF matters to the ids);
 * directories, devices and invalid UTF-8 are refused (src/text-file.ts).
 */
export function readText(file: string): string {
  return readTextFile(file);
}

interface PplOptions {
  model: string;
  text: string;
  protocol: string;
  ctx: string;
  chunks?: string;
  chunkSize?: string;
  cache: string;
  executor?: string;
  weights?: string;
  tokenizer?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("ppl")
    .description(
      "perplexity of a model on a text under a KV cache backend (llama.cpp-compatible or chunked prefill)",
    )
    .requiredOption("--model <path>", "HF directory, llama2.c .bin or .gguf file")
    .requiredOption("--text <file>", "text file (read as UTF-8 bytes exactly as stored)")
    .option("--protocol <name>", "llamacpp | chunked", "llamacpp")
    .requiredOption("--ctx <n>", "tokens per segment (n_ctx)")
    .option("--chunks <n>", "number of segments (default: as many as the text holds)")
    .option("--chunk-size <c>", "chunked protocol: tokens per forward call (1 = token-by-token decoding)")
    .option("--cache <spec>", "cache spec: codec or preset name, or JSON", "f32")
    .option("--executor <name>", "ref | wasm | webgpu (default: wasm)")
    .option(
      "--weights <mode>",
      "keep: F16/BF16 (and GGUF Q8_0) matrices stay as stored, widened inside the matmul (same results, half the memory or less); f32: widened on load",
      "keep",
    )
    .option("--tokenizer <file>", "llama2.c only: tokenizer.bin (default: beside the checkpoint)")
    .option("--json", "print one JSON object")
    .action(async (o: PplOptions) => {
      const nCtx = parseIntOption("--ctx", o.ctx, 4)!;
      const nChunks = parseIntOption("--chunks", o.chunks, 1);
      let protocol: PerplexityProtocol;
      if (o.protocol === "llamacpp") protocol = { kind: "llamacpp", nCtx, nChunks };
      else if (o.protocol === "chunked")
        protocol = {
          kind: "chunked",
          nCtx,
          nChunks,
          chunkSize: parseIntOption("--chunk-size", o.chunkSize ?? "1", 1)!,
        };
      else throw new ConfigError("--protocol", `expected llamacpp or chunked, got "${o.protocol}"`);
      const input = parseCacheOption(o.cache);
      const spec = resolveCacheSpec(input, "--cache"); // validate before the slow part
      const model = await loadModel(o.model, {
        executor: o.executor,
        tokenizer: o.tokenizer,
        weights: o.weights as WeightsMode,
      });
      const warning = contextWarning(model.config, nCtx);
      if (warning) process.stderr.write(`warning: ${warning}\n`);
      const notes = storageNotes(spec, model.config.headDim);
      for (const n of notes) process.stderr.write(`warning: ${n}\n`);
      // With --chunks only the tokens it scores are read and tokenized (a huge file is fine).
      const tokens = tokensOfFile(
        model.tokenizer,
        o.text,
        nChunks !== undefined ? nChunks * nCtx : undefined,
      );
      // The vocabulary is not needed again for scoring: its memory (tens of MiB; 83 MiB of heap
      // for Qwen2.5's 151,936 tokens) is freed before the forward passes reach their peak
      // (rebuilt should anything encode again, e.g. kvzip's scoring prompt).
      model.tokenizer.release?.();
      collectGarbage();
      const progress = !o.json && process.stderr.isTTY;
      const r = await evaluatePerplexity(
        model,
        tokens,
        protocol,
        (shape) => createCache(input, shape, { executor: model.executor }),
        progress ? { onProgress: (d, t) => process.stderr.write(`\r[${d}/${t}]`) } : {},
      );
      if (progress) process.stderr.write("\n");
      const out = {
        model: model.source,
        family: model.config.arch,
        ...(model.config.slidingWindow !== undefined ? { slidingWindow: model.config.slidingWindow } : {}),
        // Gemma 2: attention scores soft-capped by every cache (src/cache/softcap.ts).
        ...(model.config.attnSoftcap !== undefined ? { attnSoftcap: model.config.attnSoftcap } : {}),
        protocol: o.protocol,
        nCtx,
        chunks: r.segments,
        ...(protocol.kind === "chunked" ? { chunkSize: protocol.chunkSize } : {}),
        cache: spec.name,
        executor: model.executor.name,
        ppl: r.ppl,
        nll: r.nll,
        tokens: r.tokens,
        kvBytes: r.kvBytes,
        bitsPerElement: r.bitsPerElement,
        peakKvBytes: r.peakKvBytes,
        tokensPerSecond: r.tokensPerSecond,
        fallbacks: Object.fromEntries(model.executor.fallbacks),
        // KVzip's scoring forwards (src/eval/scoring-pass.ts): extra compute beside the measured one.
        ...(r.scoring ? { scoring: r.scoring } : {}),
        warnings: [...(warning ? [warning] : []), ...notes],
      };
      model.dispose();
      if (o.json) {
        console.log(JSON.stringify(out));
        return;
      }
      console.log(
        `${out.model} (${out.family}${out.slidingWindow !== undefined ? `, sliding window ${out.slidingWindow}` : ""}${out.attnSoftcap !== undefined ? `, attention soft-cap ${out.attnSoftcap}` : ""})  ${out.protocol} ctx=${nCtx} chunks=${out.chunks}  cache=${out.cache}  executor=${out.executor}`,
      );
      console.log(`PPL ${r.ppl.toFixed(4)}  mean NLL ${r.nll.toFixed(6)}  over ${r.tokens} scored tokens`);
      console.log(
        `KV memory ${r.kvBytes} bytes (${r.bitsPerElement.toFixed(3)} bits/element), peak ${r.peakKvBytes} bytes`,
      );
      console.log(`${r.tokensPerSecond.toFixed(1)} tokens/s`);
      const sc = r.scoring;
      if (sc)
        console.log(
          `scoring forwards: ${sc.passes} passes, ${sc.tokens} tokens (${sc.repeatTokens} repeated), ${sc.seconds.toFixed(1)} s, scratch peak ${sc.scratchBytes} bytes`,
        );
    });
}
