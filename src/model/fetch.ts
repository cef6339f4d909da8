/**
 * Download a Hugging Face model repository's inference files (config, tokenizer, safetensors
 * weights, sharded or not) into a local directory that loadModel reads. For users with
 * internet; every test runs on local files (the fetch test serves a synthetic model over a
 * local HTTP server through $HF_ENDPOINT, the variable huggingface_hub also honours).
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { ConfigError, KvlabError } from "../errors.ts";

export interface FetchOptions {
  revision?: string;
  /** Target directory (default: $KVLAB_MODELS or ~/.cache/kvlab/models, then owner--name). */
  dir?: string;
  /** Default: $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Default: $HF_TOKEN (gated models). */
  token?: string;
  onFile?(name: string, bytes: number): void;
}

export function defaultModelDir(repo: string): string {
  const base = process.env.KVLAB_MODELS ?? join(homedir(), ".cache", "kvlab", "models");
  return join(base, repo.replace("/", "--"));
}

/** Fetch the model; returns the local directory. Files already present are kept. */
export async function fetchModel(repo: string, o: FetchOptions = {}): Promise<string> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo))
    throw new ConfigError(
      "repo",
      `expected a Hugging Face repo id like "HuggingFaceTB/SmolLM2-135M", got "${repo}"`,
    );
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/$/, "");
  const revision = o.revision ?? "main";
  const dir = o.dir ?? defaultModelDir(repo);
  const token = o.token ?? process.env.HF_TOKEN;
  mkdirSync(dir, { recursive: true });

  const get = async (name: string, required: boolean): Promise<boolean> => {
    const dst = join(dir, name);
    if (existsSync(dst)) return true;
    const url = `${endpoint}/${repo}/resolve/${revision}/${name}`;
    let res: Response;
    try {
      res = await fetch(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
    } catch (err) {
      throw new KvlabError(
        `cannot download ${url}: ${(err as Error).message}; check the network or set HF_ENDPOINT`,
      );
    }
    if (res.status === 404 && !required) return false;
    if (!res.ok || !res.body)
      throw new KvlabError(
        `download of ${url} failed: HTTP ${res.status}${res.status === 401 || res.status === 403 ? " (gated model? set HF_TOKEN)" : ""}`,
      );
    mkdirSync(dirname(dst), { recursive: true });
    const part = `${dst}.part`;
    await pipeline(
      Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>),
      createWriteStream(part),
    );
    renameSync(part, dst); // never leave a partial file under the real name
    o.onFile?.(name, Number(res.headers.get("content-length") ?? 0));
    return true;
  };

  await get("config.json", true);
  await get("tokenizer.json", true);
  await get("tokenizer_config.json", false);
  if (!existsSync(join(dir, "model.safetensors")) && (await get("model.safetensors.index.json", false))) {
    const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")) as {
      weight_map: Record<string, string>;
    };
    for (const shard of new Set(Object.values(index.weight_map))) await get(shard, true);
  } else await get("model.safetensors", true);
  return dir;
}
