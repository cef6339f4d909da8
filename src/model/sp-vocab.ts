/**
 * A SentencePiece (BPE-type) vocabulary, as stored in llama2.c's tokenizer.bin and in GGUF
 * metadata (pieces + scores), turned into a tokenizer.json for `@huggingface/tokenizers`.
 * That library then does the tokenizing, so kvlab has no tokenizer of its own to get wrong.
 *
 * The conversion is the one HF's LlamaConverter / SentencePieceExtractor performs: merges are
 * every split (left, right) of a piece whose halves are both pieces, ordered by the merged
 * piece's score (highest first; ties by the halves' ids), which is exactly SentencePiece's
 * "merge the best-scoring adjacent pair" rule. Normalizer and decoder are SentencePiece's
 * (dummy prefix "▁", spaces as "▁", byte fallback <0xXX>).
 */

export interface SpVocab {
  /** Pieces by id, with "▁" for spaces (llama2.c files store " ": convert before calling). */
  pieces: string[];
  scores: number[];
  /** Ids that are special/control tokens (unk, bos, eos ...); never merged, matched verbatim. */
  special: number[];
  unkId: number;
}

export function spTokenizerJson(v: SpVocab): object {
  const vocab: Record<string, number> = {};
  v.pieces.forEach((p, id) => {
    if (!(p in vocab)) vocab[p] = id;
  });
  const special = new Set(v.special);
  const merges: { l: string; r: string; score: number; order: number }[] = [];
  let order = 0;
  v.pieces.forEach((piece, id) => {
    if (special.has(id) || /^<0x[0-9A-Fa-f]{2}>$/.test(piece)) return;
    const local: { l: string; r: string; li: number; ri: number }[] = [];
    const chars = Array.from(piece); // split on code points, not UTF-16 units
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join("");
      const r = chars.slice(i).join("");
      if (l in vocab && r in vocab) local.push({ l, r, li: vocab[l]!, ri: vocab[r]! });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    for (const m of local) merges.push({ l: m.l, r: m.r, score: v.scores[id]!, order: order++ });
  });
  merges.sort((a, b) => b.score - a.score || a.order - b.order);
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [...special].map((id) => ({
      id,
      content: v.pieces[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: v.pieces[v.unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.l, m.r]),
    },
  };
}
