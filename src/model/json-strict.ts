/**
 * JSON as the trusted model loaders read it: JSON.parse keeps the last of duplicate keys
 * silently, so a file with two `"num_hidden_layers"` or two entries for one tensor would load
 * whichever came last. parseStrictJson parses and then refuses any object with a repeated key,
 * naming the key and its byte offset in the file. readJson reads a JSON side file of a model
 * (config, index, tokenizer) that way.
 */
import { ModelFormatError } from "../errors.ts";
import { readFileSync, statSync } from "../platform/host.ts";

/** The first key repeated within one object of `text` (valid JSON), with its char index. */
export function findDuplicateKey(text: string): { key: string; index: number } | null {
  // Per open object: the keys seen so far; per open array: null.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 0x5c /* \ */) i += 2;
        else if (c === 0x22) break;
        else i++;
      }
      i++;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(start, i)) as string;
        if (top.has(key)) return { key, index: start };
        top.add(key);
        expectKey = false;
      }
      continue;
    }
    if (ch === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (ch === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
    i++;
  }
  return null;
}

/** Most bytes of a JSON side file (config, index, tokenizer) read whole. */
const MAX_JSON_BYTES = 512 * 1024 * 1024;

/** A JSON file of the model directory: a regular file, valid UTF-8, no duplicate keys. */
export function readJson(file: string): unknown {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ModelFormatError(file, "not a regular file");
    if (st.size > MAX_JSON_BYTES)
      throw new ModelFormatError(
        file,
        `${st.size} bytes is too large for a JSON side file (at most ${MAX_JSON_BYTES})`,
      );
    text = new TextDecoder("utf-8", { fatal: true }).decode(readFileSync(file));
  } catch (err) {
    if (err instanceof ModelFormatError) throw err;
    throw new ModelFormatError(file, `cannot read: ${(err as Error).message}`);
  }
  const parsed = parseStrictJson(text);
  if (!parsed.ok) throw new ModelFormatError(file, parsed.message, parsed.byte);
  return parsed.value;
}

/** UTF-8 byte length of text[0, index) (for byte offsets of a char index). */
export function utf8Offset(text: string, index: number): number {
  return new TextEncoder().encode(text.slice(0, index)).length;
}

export type StrictJsonResult = { ok: true; value: unknown } | { ok: false; message: string; byte?: number };

/** JSON.parse, refusing duplicate keys (the error names the key and its byte offset in text). */
export function parseStrictJson(text: string): StrictJsonResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `not valid JSON (${(err as Error).message})` };
  }
  const dup = findDuplicateKey(text);
  if (dup)
    return {
      ok: false,
      message: `duplicate key ${JSON.stringify(dup.key)} in one object (JSON would keep only the last)`,
      byte: utf8Offset(text, dup.index),
    };
  return { ok: true, value };
}
