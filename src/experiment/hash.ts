/** Stable hashes: canonical JSON (sorted keys) of specs, and file/folder contents. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** JSON with object keys sorted at every level, so equal specs hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = (v as Record<string, unknown>)[k];
      return out;
    }
    return v;
  });
}

/** First 16 hex digits of sha256(canonical JSON): short enough to read, long enough not to collide. */
export function specHash(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);
}

async function hashInto(h: ReturnType<typeof createHash>, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on("data", (d) => h.update(d))
      .on("end", () => resolve())
      .on("error", reject);
  });
}

/** Files of a model folder that determine its outputs; READMEs, training logs and reference numbers do not. */
export function isModelFile(name: string): boolean {
  return (
    /\.(safetensors|gguf|bin|model)$/.test(name) ||
    ["config.json", "tokenizer.json", "tokenizer_config.json"].includes(name)
  );
}

/**
 * sha256 of a file, or of a folder's model files (isModelFile; sorted names and contents, no
 * subfolders) so a model directory has one hash that documentation edits do not change.
 */
export async function contentHash(path: string): Promise<string> {
  const h = createHash("sha256");
  const st = await stat(path);
  if (st.isDirectory()) {
    const names = (await readdir(path, { withFileTypes: true }))
      .filter((e) => e.isFile() && isModelFile(e.name))
      .map((e) => e.name)
      .sort();
    for (const name of names) {
      h.update(`${name}\0`);
      await hashInto(h, join(path, name));
      h.update("\0");
    }
  } else await hashInto(h, path);
  return h.digest("hex");
}
