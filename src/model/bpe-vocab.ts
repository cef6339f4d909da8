/**
 * A byte-level BPE vocabulary of a given size, as GPT-2's tokenizer.json lays it out (Radford et
 * al. 2019; HF tokenizers' ByteLevel pre-tokenizer and decoder): the 256 byte symbols of GPT-2's
 * bytes_to_unicode, then merged pieces, then <|endoftext|> as the last id. Used by synth-model
 * for GPT-2 shapes, so a synthetic GPT-2 tokenizes as the real one does (through
 * `@huggingface/tokenizers`), only with made-up merges.
 */

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const out = new Array<string>(256);
  for (const b of bs) out[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (out[b] === undefined) out[b] = String.fromCharCode(256 + n++);
  return out;
}

/** tokenizer.json of a byte-level BPE vocab of exactly `size` tokens (size >= 258). */
export function byteLevelTokenizerJson(size: number): { json: object; eosId: number } {
  const syms = bytesToUnicode();
  const vocab: Record<string, number> = {};
  const pieces: string[] = [];
  const add = (p: string) => {
    vocab[p] = pieces.length;
    pieces.push(p);
  };
  for (const s of syms) add(s);
  const merges: string[] = [];
  // Merges over a few frequent symbols: "Ġ" (space) + letter, letter pairs, then longer pieces
  // built from earlier ones (every merge joins two existing pieces, as BPE training does).
  const letters = "etaoinshrdlucmfwypvbgkjqxz";
  const seeds = ["Ġ", ...letters];
  let frontier = [...letters];
  const want = size - 1; // the last id is <|endoftext|>
  outer: while (pieces.length < want) {
    const next: string[] = [];
    for (const a of seeds)
      for (const b of frontier) {
        if (pieces.length >= want) break outer;
        const p = a + b;
        if (p in vocab) continue;
        merges.push(`${a} ${b}`);
        add(p);
        next.push(p);
      }
    frontier = next;
  }
  const eosId = pieces.length;
  add("<|endoftext|>");
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    eosId,
    json: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [
        {
          id: eosId,
          content: "<|endoftext|>",
          single_word: false,
          lstrip: false,
          rstrip: false,
          normalized: true,
          special: true,
        },
      ],
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", ...byteLevel },
      post_processor: { type: "ByteLevel", ...byteLevel, trim_offsets: false },
      decoder: { type: "ByteLevel", ...byteLevel },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: "",
        end_of_word_suffix: "",
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges,
      },
    },
  };
}
