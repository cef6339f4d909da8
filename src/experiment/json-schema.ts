/**
 * A JSON Schema (draft 2020-12) for experiment configs, so that editors validate and complete
 * experiment YAML (`# yaml-language-server: $schema=schema.json` in VS Code's YAML extension).
 * The config's own fields come from the zod schema that `kvlab run` validates with
 * (src/experiment/schema.ts), so they cannot drift; a cache entry is described from the
 * registries (codec, preset and policy names, the storage options of src/cache/spec.ts).
 * Policy options come from each policy's zod schema (declared once, in src/cache/policies/<name>.ts).
 * `kvlab schema` prints it; experiments/schema.json is its committed output (a test keeps it in step).
 */
import { z } from "zod";
import { policySpecSchema } from "../cache/policies/registry.ts";
import { PRESETS } from "../cache/presets.ts";
import { CODECS } from "../quant/registry.ts";
import { configSchema } from "./schema.ts";

type JsonSchema = Record<string, unknown>;

/** One side of the cache (keys or values): a codec name or the codec with its storage options. */
function sideSchema(): JsonSchema {
  const codecs = Object.keys(CODECS);
  return {
    anyOf: [
      { type: "string", enum: codecs },
      {
        type: "object",
        properties: {
          type: { type: "string", enum: codecs },
          group: {
            anyOf: [{ type: "integer", minimum: 1 }, { const: "head" }],
            description: "elements per scale: a number, or head (one scale per head row)",
          },
          symmetric: { type: "boolean" },
          axis: { enum: ["token", "channel"], description: "channel: keys quantized per channel (KIVI)" },
          residual: { type: "integer", minimum: 0, description: "newest tokens kept in f32" },
          rotation: {
            enum: ["none", "hadamard"],
            description:
              "randomized Hadamard rotation before encoding (keys: queries alike; values: output rotated back)",
          },
          preRope: { type: "boolean", description: "keys only: stored before RoPE" },
        },
        required: ["type"],
        additionalProperties: false,
      },
    ],
  };
}

/** The policy of a cache: a name, or the union of every policy's options (from their zod schemas). */
function policyJsonSchema(): JsonSchema {
  const { $schema: _, ...schema } = z.toJSONSchema(policySpecSchema(), {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  return schema;
}

/** A cache backend: a codec or preset name, or an object of preset/codec/keys/values/policy. */
export function cacheSpecSchema(): JsonSchema {
  const side = sideSchema();
  return {
    anyOf: [
      { type: "string", enum: [...Object.keys(CODECS), ...Object.keys(PRESETS)] },
      {
        type: "object",
        properties: {
          name: { type: "string", minLength: 1, description: "label in tables and plots" },
          preset: { type: "string", enum: Object.keys(PRESETS) },
          codec: {
            anyOf: [
              side,
              {
                type: "object",
                properties: { keys: side, values: side },
                additionalProperties: false,
              },
            ],
          },
          keys: side,
          values: side,
          policy: policyJsonSchema(),
          query: {
            type: "string",
            enum: ["f32", "q8", "q8w"],
            default: "f32",
            description:
              "query rows: f32 (exact), q8 (q8_0 per block of 32, for integer dot products; src/quant/q8-query.ts) or q8w (q8 and the softmax weights over int8/int4 values in q8_0 per block of 32 slots; src/quant/q8-weights.ts)",
          },
        },
        additionalProperties: false,
      },
    ],
  };
}

export function experimentJsonSchema(): JsonSchema {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const properties = schema.properties as Record<string, JsonSchema>;
  properties.caches = { ...properties.caches, type: "array", items: cacheSpecSchema() };
  return {
    ...schema,
    title: "kvlab experiment config",
    description: "npx kvlab run <this file>; reference: experiments/README.md",
  };
}
