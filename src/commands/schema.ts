/** `kvlab schema`: the JSON Schema of experiment configs (for editors), on stdout or to a file. */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { experimentJsonSchema } from "../experiment/json-schema.ts";

export function schemaText(): string {
  return `${JSON.stringify(experimentJsonSchema(), null, 2)}\n`;
}

export function register(program: Command): void {
  program
    .command("schema")
    .description("print the JSON Schema of experiment configs (editors validate and complete YAML with it)")
    .option("--out <file>", "write it to a file instead of stdout")
    .action((o: { out?: string }) => {
      if (o.out) writeFileSync(o.out, schemaText());
      else process.stdout.write(schemaText());
    });
}
