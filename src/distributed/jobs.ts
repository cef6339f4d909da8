/**
 * The work queue's job: one run of one experiment. Its payload carries the config as parsed
 * from the file (each worker validates and plans it again and must reach the same spec hash)
 * and where the record goes. Anything else in a job is refused as malformed.
 */
import { z } from "zod";

export const JOB_PAYLOAD_VERSION = 1;

export const jobPayloadSchema = z.strictObject({
  v: z.literal(JOB_PAYLOAD_VERSION),
  experiment: z.string().regex(/^[A-Za-z0-9._-]+$/),
  name: z.string().min(1),
  specHash: z.string().regex(/^[0-9a-f]{16}$/),
  /** The config file on the machine that pushed the job (messages; relative refs resolve against configDir). */
  configFile: z.string().min(1),
  configDir: z.string().min(1),
  /** The config as parsed from its YAML/JSON file. */
  config: z.record(z.string(), z.unknown()),
  store: z.discriminatedUnion("type", [
    /** Append to a results folder every worker sees (relative: to the worker's working directory). */
    z.strictObject({ type: z.literal("dir"), dir: z.string().min(1) }),
    /** Keep the record in Redis (machines that share no disk); `kvlab export DIR --redis URL` reads them. */
    z.strictObject({ type: z.literal("redis") }),
  ]),
});

export type JobPayload = z.infer<typeof jobPayloadSchema>;

/** A readable reason a payload is malformed, or undefined when it is valid. */
export function checkPayload(
  data: unknown,
): { ok: true; payload: JobPayload } | { ok: false; reason: string } {
  const r = jobPayloadSchema.safeParse(data);
  if (r.success) return { ok: true, payload: r.data };
  const issues = r.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join(".") : "(payload)"}: ${i.message}`)
    .join("; ");
  return {
    ok: false,
    reason: `malformed job payload (not pushed by this kvlab's \`kvlab queue push\`?): ${issues}`,
  };
}

/** BullMQ job id: one job per (experiment, run); no ":" (BullMQ's separator). */
export function jobId(experiment: string, specHash: string): string {
  return `${experiment}.${specHash}`;
}
