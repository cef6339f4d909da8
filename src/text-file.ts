/**
 * Reading an evaluation text: a regular file (not a directory, device or FIFO: /dev/zero never
 * ends), decoded as strict UTF-8. Invalid UTF-8 is refused with the byte offset of the first bad
 * sequence rather than silently replaced by U+FFFD, which would make the token ids (and so the
 * scores) differ from llama.cpp's byte-level tokenization of the same file. A BOM is kept, as
 * the bytes are: the text is exactly what is stored.
 */
import { ModelFormatError } from "./errors.ts";
import { closeSync, fstatSync, openSync, readSync } from "./platform/host.ts";

/** Byte offset of the first invalid UTF-8 sequence in b, or -1 when b is valid UTF-8. */
export function firstInvalidUtf8(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // past U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      const x = b[i + k];
      if (x === undefined) return i;
      if (k === 1 ? x < lo || x > hi : x < 0x80 || x > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** The text of `file` (see the file comment). Errors are ModelFormatErrors naming the file. */
export function readTextFile(file: string): string {
  return readTextPrefix(file, Number.POSITIVE_INFINITY).text;
}

/**
 * The first `maxBytes` bytes of `file` as text (cut back to a character boundary), and whether
 * that is the whole file. Only the bytes read are validated: what is never read is never judged.
 */
export function readTextPrefix(file: string, maxBytes: number): { text: string; complete: boolean } {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    throw new ModelFormatError(file, `cannot read the text file: ${(err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new ModelFormatError(
        file,
        `is ${st.isDirectory() ? "a directory" : "not a regular file (a device, FIFO or socket)"}; give a text file`,
      );
    const complete = st.size <= maxBytes;
    const buf = new Uint8Array(complete ? st.size : maxBytes);
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, buf.length - done, done);
      if (n <= 0) break;
      done += n;
    }
    let end = done;
    if (!complete) {
      // Back to the start of the last (possibly cut) character.
      let j = end - 1;
      while (j > 0 && end - j < 4 && (buf[j]! & 0xc0) === 0x80) j--;
      end = j;
    }
    const bytes = buf.subarray(0, end);
    try {
      return { text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes), complete };
    } catch {
      const at = firstInvalidUtf8(bytes);
      throw new ModelFormatError(
        file,
        "invalid UTF-8 (kvlab tokenizes the text's characters; convert the file to UTF-8)",
        at < 0 ? undefined : at,
      );
    }
  } finally {
    closeSync(fd);
  }
}
