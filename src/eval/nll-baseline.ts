/**
 * The baseline's per-token NLL, stored beside its top-k distributions so that every later run
 * gets a paired ΔPPL interval (run NLL - baseline NLL, token by token) without rerunning the
 * baseline. The target's log-prob is not always among the stored top-k, hence its own file.
 *
 * Layout (little-endian): "KVNL" | u32 version=1 | u32 nTokens | u32 keyBytes | key (utf8,
 * zero-padded to 8) | f64 nll[nTokens]. Written to a temporary name and renamed.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ModelFormatError } from "../errors.ts";

const MAGIC = 0x4c4e564b; // "KVNL"
const VERSION = 1;

export function encodeNll(key: string, nll: Float64Array): Buffer {
  const k = Buffer.from(key, "utf8");
  const header = 16 + Math.ceil(k.length / 8) * 8;
  const buf = Buffer.alloc(header + 8 * nll.length);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(VERSION, 4);
  buf.writeUInt32LE(nll.length, 8);
  buf.writeUInt32LE(k.length, 12);
  k.copy(buf, 16);
  for (let i = 0; i < nll.length; i++) buf.writeDoubleLE(nll[i]!, header + 8 * i);
  return buf;
}

export function decodeNll(buf: Buffer, file = "<baseline nll>"): { key: string; nll: Float64Array } {
  if (buf.length < 16 || buf.readUInt32LE(0) !== MAGIC)
    throw new ModelFormatError(file, "not a kvlab baseline NLL file (bad magic); delete it to recompute", 0);
  if (buf.readUInt32LE(4) !== VERSION)
    throw new ModelFormatError(file, `unsupported version ${buf.readUInt32LE(4)}; delete it`, 4);
  const n = buf.readUInt32LE(8);
  const keyLen = buf.readUInt32LE(12);
  const header = 16 + Math.ceil(keyLen / 8) * 8;
  if (buf.length !== header + 8 * n)
    throw new ModelFormatError(file, `truncated: expected ${header + 8 * n} bytes; delete it`, buf.length);
  const nll = new Float64Array(n);
  for (let i = 0; i < n; i++) nll[i] = buf.readDoubleLE(header + 8 * i);
  return { key: buf.subarray(16, 16 + keyLen).toString("utf8"), nll };
}

export async function saveNll(file: string, key: string, nll: Float64Array): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.partial-${basename(file)}-${process.pid}`);
  await writeFile(tmp, encodeNll(key, nll));
  await rename(tmp, file);
}

/** The stored NLLs, or undefined when the file is absent or belongs to another baseline. */
export async function loadNll(file: string, key: string): Promise<Float64Array | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    return undefined;
  }
  const r = decodeNll(buf, file);
  return r.key === key ? r.nll : undefined;
}
