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

/**
 * sha256 of a file, or of a folder's files (sorted relative names and contents, skipping
 * dot-files and subfolders' dot-files) so a model directory has one hash.
 */
export async function contentHash(path: string): Promise<string> {
  const h = createHash("sha256");
  const st = await stat(path);
  if (st.isDirectory()) {
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => !e.name.startsWith("."))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const p = join(dir, e.name);
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(p, r);
        else if (e.isFile()) {
          h.update(`${r}\0`);
          await hashInto(h, p);
          h.update("\0");
        }
      }
    };
    await walk(path, "");
  } else await hashInto(h, path);
  return h.digest("hex");
}
