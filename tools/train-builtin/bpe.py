"""A byte-level BPE (GPT-2 style) trainer and encoder that writes a Hugging Face tokenizer.json.

Written by hand because PyPI (and so the `tokenizers` package) is not reachable here. The
pre-tokenizer reproduces the ByteLevel pre-tokenizer's GPT-2 regex; Python's `re` has no \\p{L}
or \\p{N}, so those classes are built from unicodedata, and \\s is spelled out as JavaScript's
whitespace set (the consumer is @huggingface/tokenizers in Node). Encoding applies merges by rank,
lowest first, which is what HF's BPE model does; tools/train-builtin/check-tokenizer.ts and
test/model/builtin-files.test.ts check that the JS library produces the same ids.
"""

import re
import sys
import unicodedata

BOS, EOS = "<s>", "</s>"
SPECIALS = [BOS, EOS]  # ids 0 and 1

# JavaScript's \s (ECMAScript WhiteSpace + LineTerminator).
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def _category_class(prefix):
    """Regex class body of all code points whose Unicode category starts with prefix."""
    ranges, start, prev = [], None, None
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp)).startswith(prefix):
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            ranges.append((start, prev))
            start = None
    if start is not None:
        ranges.append((start, prev))
    esc = lambda c: "\\U%08x" % c  # noqa: E731
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


_L = _category_class("L")
_N = _category_class("N")
_S = _JS_SPACE
PRETOKEN_RE = re.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{_L}]+| ?[{_N}]+| ?[^{_S}{_L}{_N}]+|[{_S}]+(?![^{_S}])|[{_S}]+"
)


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHARS = bytes_to_unicode()


def pretokenize(text):
    """Text -> list of byte-level strings (each character one byte), as ByteLevel does."""
    return ["".join(BYTE_CHARS[b] for b in m.encode("utf-8")) for m in PRETOKEN_RE.findall(text)]


def train(texts, vocab_size, log=print):
    """Learn merges until the vocabulary has vocab_size entries. Returns (vocab, merges).

    vocab: token string -> id (specials 0..1, then the 256 byte characters by byte value, then
    merged tokens in merge order). Ties between equally frequent pairs go to the pair whose
    token ids are smallest, so training is deterministic.
    """
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for b in range(256):
        vocab[BYTE_CHARS[b]] = len(vocab)
    id_to_tok = {i: t for t, i in vocab.items()}

    word_freq = {}
    for t in texts:
        for w in pretokenize(t):
            word_freq[w] = word_freq.get(w, 0) + 1
    words = [[vocab[c] for c in w] for w in word_freq]
    freqs = list(word_freq.values())
    log(f"bpe: {len(words)} distinct pre-tokens from {sum(freqs)} pre-tokens")

    pair_count = {}
    pair_words = {}  # pair -> set of word indices containing it
    for wi, w in enumerate(words):
        f = freqs[wi]
        for p in zip(w, w[1:]):
            pair_count[p] = pair_count.get(p, 0) + f
            pair_words.setdefault(p, set()).add(wi)

    merges = []
    while len(vocab) < vocab_size and pair_count:
        best = max(pair_count.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
        a, b = best
        new_tok = id_to_tok[a] + id_to_tok[b]
        if new_tok not in vocab:
            vocab[new_tok] = len(vocab)
            id_to_tok[vocab[new_tok]] = new_tok
        new_id = vocab[new_tok]
        merges.append((id_to_tok[a], id_to_tok[b]))
        for wi in list(pair_words.get(best, ())):
            w, f = words[wi], freqs[wi]
            for p in zip(w, w[1:]):  # remove this word's old pairs
                pair_count[p] -= f
                if pair_count[p] == 0:
                    del pair_count[p]
                s = pair_words.get(p)
                if s is not None:
                    s.discard(wi)
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pair_count[p] = pair_count.get(p, 0) + f
                pair_words.setdefault(p, set()).add(wi)
        pair_words.pop(best, None)
    log(f"bpe: {len(merges)} merges, vocab {len(vocab)}")
    return vocab, merges


class Encoder:
    """Applies learned merges by rank to pre-tokens; caches per distinct pre-token."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {}

    def _bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            best_rank, best_i = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best_rank, best_i = r, i
            if best_rank is None:
                break
            a, b = parts[best_i], parts[best_i + 1]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return [self.vocab[p] for p in parts]

    def encode(self, text, bos=True):
        ids = [self.vocab[BOS]] if bos else []
        for w in pretokenize(text):
            r = self.cache.get(w)
            if r is None:
                r = self.cache[w] = self._bpe(w)
            ids.extend(r)
        return ids

    def decode(self, ids):
        inv = {i: t for t, i in self.vocab.items()}
        byte_of = {c: b for b, c in BYTE_CHARS.items()}
        toks = [inv[i] for i in ids if inv[i] not in SPECIALS]
        return bytes(byte_of[c] for c in "".join(toks)).decode("utf-8", errors="replace")


def tokenizer_json(vocab, merges):
    """A Hugging Face tokenizer.json (ByteLevel pre-tokenizer and decoder, BPE model, BOS template)."""
    added = [
        {"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for s in SPECIALS
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": BOS, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {BOS: {"id": BOS, "ids": [vocab[BOS]], "tokens": [BOS]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [[a, b] for a, b in merges],
        },
    }


def tokenizer_config(max_len):
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": None,
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_len,
    }
