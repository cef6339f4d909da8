/**
 * The baseline's per-token distributions, stored for KL: for every scored token, the top-k
 * ids and their f32 log-probs plus the rest mass (f64). k = 64 by default: about 0.5 KB per
 * token, against vocab * 4 bytes for exact f32 log-probs (8 KB at vocab 2048), and without
 * the rounding error that 16-bit log-probs would add to KL values of 1e-4 and below (an f16
 * log-prob near -10 is only good to 0.004 nats). The price is that the tail beyond the top-k
 * is one bucket, so KL is a lower bound; see kl.ts. The mean rest mass is reported per run.
 *
 * File layout (little-endian), written to a temporary name and renamed so a crash never
 * leaves a partial file under the final name:
 *   "KVLB" | u32 version=1 | u32 k | u32 nTokens | u32 keyBytes | key (utf8, zero-padded to 4)
 *   then per token: i32 target | f64 restMass | i32 ids[k] | f32 logp[k]
 * `key` identifies what the baseline was computed on (spec hash, model and text hashes), so a
 * stale file is recomputed instead of silently reused.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ModelFormatError } from "../errors.ts";
import type { TopKEntry } from "./kl.ts";

const MAGIC = 0x424c564b; // "KVLB"
const VERSION = 1;

export interface BaselineTopK {
  key: string;
  k: number;
  /** Target token per scored index: (nTokens). */
  targets: Int32Array;
  entries: TopKEntry[];
}

export function entryBytes(k: number): number {
  return 4 + 8 + 8 * k;
}

export function encodeBaseline(b: BaselineTopK): Buffer {
  const key = Buffer.from(b.key, "utf8");
  const keyPadded = Math.ceil(key.length / 4) * 4;
  const n = b.entries.length;
  const header = 20 + keyPadded;
  const buf = Buffer.alloc(header + n * entryBytes(b.k));
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(VERSION, 4);
  buf.writeUInt32LE(b.k, 8);
  buf.writeUInt32LE(n, 12);
  buf.writeUInt32LE(key.length, 16);
  key.copy(buf, 20);
  let o = header;
  for (let t = 0; t < n; t++) {
    const e = b.entries[t]!;
    buf.writeInt32LE(b.targets[t]!, o);
    buf.writeDoubleLE(e.restMass, o + 4);
    o += 12;
    // Entries shorter than k (vocab < k) are padded with id -1 and log-prob -Infinity.
    for (let j = 0; j < b.k; j++) buf.writeInt32LE(j < e.ids.length ? e.ids[j]! : -1, o + 4 * j);
    o += 4 * b.k;
    for (let j = 0; j < b.k; j++)
      buf.writeFloatLE(j < e.logp.length ? e.logp[j]! : Number.NEGATIVE_INFINITY, o + 4 * j);
    o += 4 * b.k;
  }
  return buf;
}

export function decodeBaseline(buf: Buffer, file = "<baseline>"): BaselineTopK {
  if (buf.length < 20 || buf.readUInt32LE(0) !== MAGIC)
    throw new ModelFormatError(file, "not a kvlab baseline file (bad magic); delete it to recompute", 0);
  if (buf.readUInt32LE(4) !== VERSION)
    throw new ModelFormatError(file, `unsupported baseline version ${buf.readUInt32LE(4)}; delete it`, 4);
  const k = buf.readUInt32LE(8);
  const n = buf.readUInt32LE(12);
  const keyLen = buf.readUInt32LE(16);
  const header = 20 + Math.ceil(keyLen / 4) * 4;
  if (buf.length !== header + n * entryBytes(k))
    throw new ModelFormatError(file, `truncated: expected ${header + n * entryBytes(k)} bytes`, buf.length);
  const key = buf.subarray(20, 20 + keyLen).toString("utf8");
  const targets = new Int32Array(n);
  const entries: TopKEntry[] = [];
  let o = header;
  for (let t = 0; t < n; t++) {
    targets[t] = buf.readInt32LE(o);
    const restMass = buf.readDoubleLE(o + 4);
    o += 12;
    let kk = k;
    const ids = new Int32Array(k);
    for (let j = 0; j < k; j++) {
      ids[j] = buf.readInt32LE(o + 4 * j);
      if (ids[j] === -1 && kk === k) kk = j;
    }
    o += 4 * k;
    const logp = new Float32Array(k);
    for (let j = 0; j < k; j++) logp[j] = buf.readFloatLE(o + 4 * j);
    o += 4 * k;
    entries.push({ ids: ids.subarray(0, kk), logp: logp.subarray(0, kk), restMass });
  }
  return { key, k, targets, entries };
}

/** Write atomically: temporary file beside the target (ignored by git), then rename. */
export async function saveBaseline(file: string, b: BaselineTopK): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.partial-${basename(file)}-${process.pid}`);
  await writeFile(tmp, encodeBaseline(b));
  await rename(tmp, file);
}

/** The stored baseline, or undefined when the file is absent or was computed for another key. */
export async function loadBaseline(file: string, key: string): Promise<BaselineTopK | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    return undefined;
  }
  const b = decodeBaseline(buf, file);
  return b.key === key ? b : undefined;
}
