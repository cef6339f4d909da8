/**
 * The scoring policies as scorers, for the budget allocations (allocation.ts) to wrap: each
 * row is the policy's own option schema without `budget` (the allocation owns the budget) and
 * its scorer factory. `scorer: snapkv` or `scorer: { type: h2o, recent: 0.25 }` in a spec.
 */
import { z } from "zod";
import type { PolicyContext } from "../policy.ts";
import { expectedAttentionOptions, expectedAttentionScorer } from "./expected-attention.ts";
import { h2oOptions, h2oScorer } from "./h2o.ts";
import { knormOptions, knormScorer } from "./knorm.ts";
import { kvzipOptions, kvzipScorer } from "./kvzip.ts";
import { lfuOptions, lfuScorer } from "./lfu.ts";
import { lruOptions, lruScorer } from "./lru.ts";
import { randomOptions, randomScorer } from "./random.ts";
import type { Scorer } from "./scorer.ts";
import { snapkvOptions, snapkvScorer } from "./snapkv.ts";
import { tovaOptions, tovaScorer } from "./tova.ts";

// biome-ignore lint/suspicious/noExplicitAny: each row's options match its own factory
type Row = { options: z.ZodObject; make: (opts: any, ctx: PolicyContext) => Scorer };

export const SCORERS = {
  h2o: { options: h2oOptions.omit({ budget: true }), make: h2oScorer },
  tova: { options: tovaOptions.omit({ budget: true, scope: true }), make: tovaScorer },
  snapkv: { options: snapkvOptions.omit({ budget: true }), make: snapkvScorer },
  knorm: { options: knormOptions.omit({ budget: true }), make: knormScorer },
  random: { options: randomOptions.omit({ budget: true }), make: randomScorer },
  lru: { options: lruOptions.omit({ budget: true }), make: lruScorer },
  lfu: { options: lfuOptions.omit({ budget: true }), make: lfuScorer },
  "expected-attention": {
    options: expectedAttentionOptions.omit({ budget: true }),
    make: expectedAttentionScorer,
  },
  kvzip: { options: kvzipOptions.omit({ budget: true }), make: kvzipScorer },
} satisfies Record<string, Row>;

export type ScorerName = keyof typeof SCORERS;
const NAMES = Object.keys(SCORERS) as [ScorerName, ...ScorerName[]];

/** A scorer spec: a scoring policy's name or its options without budget; resolves to the full options. */
export function scorerSpec() {
  const objects = NAMES.map((n) => SCORERS[n].options) as unknown as [
    z.ZodObject,
    z.ZodObject,
    ...z.ZodObject[],
  ];
  return z
    .union([z.enum(NAMES), z.discriminatedUnion("type", objects)], {
      error: (i) =>
        `expected a scoring policy (${NAMES.join(", ")}) or { type: <one of them>, ...its options but budget }, got ${JSON.stringify(i.input)}`,
    })
    .transform((x, ctx) => {
      if (typeof x !== "string") return x as { type: ScorerName; [k: string]: unknown };
      const r = SCORERS[x].options.safeParse({ type: x });
      if (!r.success) {
        ctx.addIssue({ code: "custom", message: r.error.issues[0]!.message });
        return z.NEVER;
      }
      return r.data as { type: ScorerName; [k: string]: unknown };
    });
}

export function makeScorer(spec: { type: ScorerName }, ctx: PolicyContext): Scorer {
  return (SCORERS[spec.type] as Row).make(spec, ctx);
}
