/**
 * Token ids of a text file, reading only as much of it as a protocol needs. A 200 MB text
 * scored for one 512-token chunk should not be read and tokenized whole (it took minutes and
 * gigabytes): the file is read in growing prefixes until their ids cover `need` tokens plus a
 * margin. Every tokenizer kvlab uses splits text into pre-tokens locally, so the ids of a prefix
 * agree with the whole text's except near the cut; the last MARGIN ids of a prefix are dropped.
 */
import type { TextTokenizer } from "../model/tokenizer.ts";
import { readTextFile, readTextPrefix } from "../text-file.ts";

const MARGIN = 64;
/**
 * The first prefix read: 16 bytes per needed id, at least 4 KiB. Tokenizing more than a
 * protocol needs is not free: the tokenizer's garbage grows V8's young generation to its 32 MiB
 * maximum on 64 KiB of text, which was most of `kvlab ppl`'s fixed peak RSS on a small model
 * (results/bench/rss/README.md). A prefix that falls short grows 4x and is tokenized again.
 */
const FIRST_BYTES_MIN = 1 << 12;
const FIRST_BYTES_PER_ID = 16;

/** Ids of `file` (BOS first when the vocab adds one); at least `need` of them when given and the text has them. */
export function tokensOfFile(tok: TextTokenizer, file: string, need?: number): number[] {
  if (need === undefined) return tok.encode(readTextFile(file));
  let bytes = Math.max(FIRST_BYTES_MIN, need * FIRST_BYTES_PER_ID);
  for (;;) {
    const { text, complete } = readTextPrefix(file, bytes);
    const ids = tok.encode(text);
    if (complete) return ids;
    if (ids.length - MARGIN >= need) return ids.slice(0, ids.length - MARGIN);
    bytes *= 4;
  }
}
