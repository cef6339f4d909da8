"""Training windows and model export shared by the built-in long-context trainer (train_retrieval.py).

A window is ctx+1 token ids: one synthetic episode (tools/train-builtin/episodes.py) or a copy
exercise, topped up with SOTU text. export() writes a kvlab model folder (fp16 safetensors, config,
tokenizer) with the trainer's own held-out NLL per chunk (reference.json), which kvlab's tests
compare against the TypeScript forward.
"""

import hashlib
import json
import math
import os
import shutil

import torch

import bpe
import episodes as ep
import safetensors_io
from evaluate import llamacpp_nll


def load_tokenizer(model_dir):
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in tj["model"]["merges"]]
    return tj["model"]["vocab"], merges


def sentences(text):
    """Split an address into sentence-sized chunks (each keeps its trailing space/newline)."""
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch in ".!?" and i + 1 < len(text) and text[i + 1] in " \n":
            out.append(text[start : i + 2])
            start = i + 2
    if start < len(text):
        out.append(text[start:])
    return [s for s in out if s.strip()]


class Sampler:
    """Builds (ctx+1)-token training windows; all randomness from one numpy Generator."""

    def __init__(self, enc, stream, sents, ctx, rng):
        self.enc, self.stream, self.sents, self.ctx, self.rng = enc, stream, sents, ctx, rng
        self.bos, self.eos = enc.vocab[bpe.BOS], enc.vocab[bpe.EOS]
        self.filler_tokens = len(enc.encode(ep.PASSKEY_FILLER, bos=False))
        self.vocab_size = len(enc.vocab)
        self.unigram_copy = False
        self.copy_len, self.copy_reps = (8, 65), (2, 5)  # [lo, hi) of sequence length and repetitions

    def text_span(self, n):
        o = int(self.rng.integers(0, len(self.stream) - n - 1))
        return list(self.stream[o : o + n])

    def text_chunks(self, n_tokens):
        """Consecutive SOTU sentences worth about n_tokens tokens (3.6 characters a token)."""
        i = int(self.rng.integers(0, len(self.sents) - 1))
        out, chars = [], 0
        while chars < n_tokens * 3.6 and i < len(self.sents):
            out.append(self.sents[i])
            chars += len(self.sents[i])
            i += 1
        return out

    def episode(self, kind, target):
        r = self.rng
        if kind == "passkey":
            if r.random() < 0.6:
                chunks = [ep.PASSKEY_FILLER] * max(1, (target - 40) // self.filler_tokens)
            else:
                chunks = self.text_chunks(target - 40)
            return ep.passkey(r, chunks, float(r.random()))
        if kind == "kv":
            return ep.kv_recall(r, max(2, (target - 30) // 19))
        if kind == "vt":
            return ep.variable_tracking(r, self.text_chunks(target - 60))
        return ep.fact(r, self.text_chunks(target - 40), float(r.random()))

    def window(self, mix):
        """One (kind, ids) training window; mix: [(kind, share)], kinds as in the branches below."""
        ctx, r = self.ctx, self.rng
        u, acc, kind = r.random(), 0.0, mix[-1][0]
        for k, p in mix:
            acc += p
            if u < acc:
                kind = k
                break
        if kind == "text":
            w = self.text_span(ctx + 1)
        elif kind == "repeat":  # a span of the window shown again later: copying pays off
            base = self.text_span(ctx + 1)
            n = int(r.integers(16, 161))
            a = int(r.integers(1, ctx // 2 - n // 2))
            p = int(r.integers(a + n, ctx + 1 - n))
            w = (base[:p] + base[a : a + n] + base[p:])[: ctx + 1]
        elif kind == "randcopy":  # random token sequences, each repeated 2-4 times
            w = [self.bos]
            while len(w) < ctx + 1:
                n = int(r.integers(self.copy_len[0], min(self.copy_len[1], ctx // 3)))
                if self.unigram_copy:  # tokens drawn from the training stream: well-trained embeddings
                    seq = [int(self.stream[i]) for i in r.integers(0, len(self.stream), n)]
                else:
                    seq = [int(t) for t in r.integers(2, self.vocab_size, n)]
                w += seq * int(r.integers(self.copy_reps[0], self.copy_reps[1]))
        elif kind == "copy":  # span A, other text, A again (at distances up to the whole context)
            n = int(r.integers(24, 201 if ctx >= 512 else ctx // 3))
            gap = int(r.integers(0, ctx - 2 * n))
            a = self.text_span(n)
            w = [self.bos] + a + self.text_span(gap) + a
            w = w + self.text_span(ctx + 1 - len(w))
        else:
            for _ in range(8):
                target = int(r.integers(96, ctx + 1))
                ids = self.enc.encode(self.episode(kind, target), bos=True) + [self.eos]
                if len(ids) <= ctx + 1:
                    break
            else:
                ids = ids[: ctx + 1]
            w = ids
            if len(w) < ctx + 1:
                w = w + [self.bos] + self.text_span(ctx - len(w))
        w = w[: ctx + 1]
        w[0] = self.bos
        return kind, w


def export(model, cfg, a, enc, held_ids, summary):
    os.makedirs(a.out, exist_ok=True)
    exported = safetensors_io.save_fp16_state(model, os.path.join(a.out, "model.safetensors"))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(os.path.join(a.init, "tokenizer.json"), os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_config(a.ctx), f, indent=2)
    model.load_state_dict(exported, strict=False)
    model.eval()
    ref = {"text": "data/sotu/heldout.txt", "tokens_with_bos": len(held_ids),
           "ids_sha256": hashlib.sha256(",".join(map(str, held_ids)).encode()).hexdigest(),
           "first_ids": held_ids[:32], "weights": "model.safetensors (fp16) upcast to fp32", "protocols": []}
    with torch.no_grad():
        for n_ctx in () if a.no_eval else (a.ctx, a.ctx // 2, 128):
            nll, n, chunks, per_chunk = llamacpp_nll(model, held_ids, n_ctx, enc.vocab[bpe.BOS], batch=4)
            ref["protocols"].append({"name": "llamacpp", "n_ctx": n_ctx, "chunks": chunks, "scored": n,
                                     "mean_nll": nll, "ppl": math.exp(nll),
                                     "chunk_mean_nll": [round(c, 6) for c in per_chunk]})
            print(f"held-out llamacpp n_ctx={n_ctx}: chunks {chunks} scored {n} PPL {math.exp(nll):.4f}", flush=True)
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    with open(os.path.join(a.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=1)
