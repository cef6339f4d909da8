/** Run records for report tests. */
import type { RunRecord } from "../../src/experiment/types.ts";

export function record(name: string, kib: number, ppl: number, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    name,
    baseline: false,
    status: "ok",
    specHash: name,
    experiment: "demo",
    spec: {
      protocol: { type: "chunked", ctx: 64, chunkSize: 16 },
      model: { ref: "builtin:m", hash: "" },
      text: { ref: "builtin:t", hash: "" },
      executor: "ref",
    },
    metrics: {
      ppl,
      nll: Math.log(ppl),
      tokens: 100,
      peakKvBytes: kib * 1024,
      bitsPerElement: 8,
      compressionVsF16: 64 / kib,
      klMean: 0.01,
      klP99: 0.05,
      sameTop1: 0.9,
      tokensPerSecond: 500,
      fallbacks: { matmul: 2 },
    },
    ...extra,
  } as unknown as RunRecord;
}
