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

/** Ids of `file` (BOS first when the vocab adds one); at least `need` of them when given and the text has them. */
export function tokensOfFile(tok: TextTokenizer, file: string, need?: number): number[] {
  if (need === undefined) return tok.encode(readTextFile(file));
  let bytes = Math.max(1 << 16, need * 16);
  for (;;) {
    const { text, complete } = readTextPrefix(file, bytes);
    const ids = tok.encode(text);
    if (complete) return ids;
    if (ids.length - MARGIN >= need) return ids.slice(0, ids.length - MARGIN);
    bytes *= 4;
  }
}
