"""Train models/sotu-llama-long: the built-in model continued at 1024 tokens of context on SOTU text
mixed with synthetic long-range episodes (passkeys, key->value lists, variable chains, facts,
repeated passages), so that it retrieves from far back and KV-cache eviction has something to break.

Run from the repo root with Debian's interpreter (python3-torch 1.13 lives there):
  /usr/bin/python3 tools/train-builtin/train_long.py            # start (or --resume to continue)
The starting point is models/sotu-llama (made by train.py, same tokenizer). A checkpoint is written
to --work every --ckpt-every steps; `--resume` continues from it with the same data order, so a
run can be split over several sittings. `--export-only` writes the model from the last checkpoint.
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see train.py: BLAS's own pool oversubscribes
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import corpus  # noqa: E402
import episodes as ep  # noqa: E402
import safetensors_io  # noqa: E402
from evaluate import llamacpp_nll  # noqa: E402
from model import LlamaForCausalLM  # noqa: E402

# Share of training windows of each kind (each window = one episode, then SOTU text to fill it).
MIX = [("text", 0.30), ("repeat", 0.20), ("passkey", 0.20), ("fact", 0.15), ("kv", 0.10), ("vt", 0.05)]
# From --mix2-from on: more copying. After 225 steps on MIX the model had learned the episodes'
# format but answered no pass key (0/27): the copy signal (a 16-160 token repeat in a fifth of
# the windows) was too thin, so "copy" windows (a span, other text, the same span again) were added.
MIX2 = [("text", 0.25), ("copy", 0.20), ("repeat", 0.10), ("passkey", 0.20), ("fact", 0.12), ("kv", 0.10),
        ("vt", 0.03)]
# Steps [--p3-from, --p3-to): a copy curriculum at half the context. After 325 steps (1.3 M
# tokens) the model still answered no pass key (0/27; it wrote a number, not the key): induction
# had not formed. Half-length windows (2.5x the tokens per second) dominated by episodes whose
# continuation can only be copied give that circuit a much stronger signal.
MIX3 = [("text", 0.15), ("copy", 0.35), ("passkey", 0.25), ("kv", 0.15), ("fact", 0.10)]
# Steps [--p4-from, --p4-to): after 100 steps of MIX3 a second copy of a span was still no easier
# than the first (NLL 3.75 vs 3.87): no induction at all. Natural-text spans can be partly
# predicted without copying, which dilutes the signal; random-token sequences repeated 2-4 times
# ("randcopy") can only be predicted by copying. Short windows (--p4-ctx) make it cheap.
MIX4 = [("text", 0.30), ("randcopy", 0.35), ("copy", 0.15), ("passkey", 0.20)]
# From --p5-from: 125 steps of MIX4 still gave no copying of random sequences at all (NLL 7.7 on
# every repetition). Uniform random ids are mostly rare BPE tokens whose embeddings are barely
# trained, so "randcopy" now draws tokens from the training stream (the unigram distribution),
# windows are shorter (--p5-ctx) for more updates, and the learning rate is held at --p5-lr.
MIX5 = [("text", 0.25), ("randcopy", 0.45), ("copy", 0.10), ("passkey", 0.20)]
# Steps [--p8-from, --p8-to): 3000 more steps of MIX5 (2e-3, then 4e-3) still built no induction
# head, while a fresh 2-layer model on nothing but short random sequences repeated 8 times learns
# to copy within 300 steps (a sharp drop of the loss, as induction heads form). So: almost only
# that task for a while (sequences of 8-24 tokens repeated 4-8 times), then back to the mix.
MIX8 = [("randcopy", 0.80), ("passkey", 0.20)]
# Steps [--p9-from, --steps): the induction head formed at about step 4450 (a repeated random
# sequence: NLL 7.3 -> 2.4 -> 1.6 on its 2nd and 3rd showing) but text was forgotten (NLL 7 on
# SOTU spans). Last phase: back to the full context and mostly natural text, with enough
# copying to keep the circuit, the learning rate decaying linearly from --p9-lr to a tenth.
MIX9 = [("text", 0.35), ("copy", 0.15), ("randcopy", 0.10), ("passkey", 0.20), ("kv", 0.10), ("fact", 0.10)]


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

    def window(self, mix=MIX):
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


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def phase(step, a):
    """(ctx, batch, mix): half the context at first and in the copy curriculum, else the full context."""
    if step < a.short_steps:
        return a.ctx // 2, a.batch * 2, MIX
    if step >= a.p9_from:
        return a.ctx, a.batch, MIX9
    if a.p8_from <= step < a.p8_to:
        return a.p5_ctx, a.p6_batch, MIX8
    if a.p6_from <= step < a.p6_to:
        return a.p5_ctx, a.p6_batch, MIX5
    if a.p5_from <= step < a.p5_to:
        return a.p5_ctx, a.p5_batch, MIX5
    if a.p4_from <= step < a.p4_to:
        return a.p4_ctx, a.batch * a.ctx // a.p4_ctx, MIX4
    if a.p3_from <= step < a.p3_to:
        return a.ctx // 2, a.batch * 2, MIX3
    return a.ctx, a.batch, MIX2 if step >= a.mix2_from else MIX


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", default="models/sotu-llama", help="starting weights and tokenizer")
    ap.add_argument("--out", default="models/sotu-llama-long")
    ap.add_argument("--work", default="/tmp/sotu-train-long")
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--short-steps", type=int, default=300, help="first steps at ctx/2 with twice the batch")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--ckpt-every", type=int, default=25)
    ap.add_argument("--mix2-from", type=int, default=225, help="step from which windows are drawn with MIX2")
    ap.add_argument("--p3-from", type=int, default=325, help="copy curriculum at ctx/2 from this step")
    ap.add_argument("--p3-to", type=int, default=800, help="... up to this step (then the full context again)")
    ap.add_argument("--p4-from", type=int, default=425, help="random-copy curriculum at --p4-ctx from this step")
    ap.add_argument("--p4-to", type=int, default=1200)
    ap.add_argument("--p4-ctx", type=int, default=256)
    ap.add_argument("--p5-from", type=int, default=575, help="unigram random-copy curriculum from this step")
    ap.add_argument("--p5-to", type=int, default=3000)
    ap.add_argument("--p5-ctx", type=int, default=128)
    ap.add_argument("--p5-batch", type=int, default=32)
    ap.add_argument("--p5-lr", type=float, default=1.5e-3, help="constant learning rate in that phase")
    # Steps [--p6-from, --p6-to): the same data, smaller batches at a higher rate (more updates per
    # second; the plateau before induction forms is counted in updates).
    ap.add_argument("--p6-from", type=int, default=750)
    ap.add_argument("--p6-to", type=int, default=0)
    ap.add_argument("--p6-batch", type=int, default=8)
    ap.add_argument("--p6-lr", type=float, default=2e-3)
    # From --p7-from (inside the p6 range): 2250 steps at 2e-3 had built previous-token heads but
    # no induction head (a repeated random sequence still cost as much as the first time); the
    # plateau before it forms shortens with the learning rate, so it is raised.
    ap.add_argument("--p7-from", type=int, default=10**9)
    ap.add_argument("--p7-lr", type=float, default=4e-3)
    ap.add_argument("--p8-from", type=int, default=10**9)
    ap.add_argument("--p8-to", type=int, default=10**9)
    ap.add_argument("--p8-lr", type=float, default=2e-3)
    ap.add_argument("--p9-from", type=int, default=10**9)
    ap.add_argument("--p9-lr", type=float, default=1e-3)
    ap.add_argument("--stop-at", type=int, default=None, help="save a checkpoint at this step and exit (a sitting)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true", help="export the last checkpoint and stop")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out PPL (reference.json) on export")
    a = ap.parse_args()

    t_start = time.time()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(a.work, exist_ok=True)

    vocab, merges = load_tokenizer(a.init)
    enc = bpe.Encoder(vocab, merges)
    train_docs, held_docs = corpus.split(corpus.load_addresses("."))
    held_ids = enc.encode(corpus.heldout_text(held_docs), bos=True)
    cache = os.path.join(a.work, "train.ids.npy")
    if os.path.exists(cache):
        stream = np.load(cache)
    else:
        ids = []
        for d in train_docs:
            ids += enc.encode(d[3], bos=True) + [vocab[bpe.EOS]]
        stream = np.array(ids, dtype=np.int64)
        np.save(cache, stream)
    sents = [s for d in train_docs for s in sentences(d[3])]
    print(f"tokens: train {len(stream)}, held-out {len(held_ids)}, sentences {len(sents)}", flush=True)

    with open(os.path.join(a.init, "config.json")) as f:
        cfg = json.load(f)
    cfg["max_position_embeddings"] = a.ctx
    model = LlamaForCausalLM(cfg)
    init_sd = safetensors_io.load(os.path.join(a.init, "model.safetensors"))
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in init_sd.items()},
                                                strict=False)
    assert not unexpected and all(k.startswith("rope_") for k in missing), (missing, unexpected)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(a.seed)
    sampler = Sampler(enc, stream, sents, a.ctx, rng)
    log, step0, smooth, tokens_seen, train_s, kinds = [], 0, None, 0, 0.0, {k: 0 for k, _ in MIX + MIX2 + MIX3 + MIX4 + MIX5 + MIX8 + MIX9}
    ckpt = os.path.join(a.work, "checkpoint.pt")
    if a.resume or a.export_only:
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = st["rng"]
        log, step0, smooth, tokens_seen, train_s = st["log"], st["step"], st["smooth"], st["tokens_seen"], st["train_s"]
        kinds.update(st["kinds"])
        print(f"resumed at step {step0} ({tokens_seen} tokens, {train_s:.0f}s of training)", flush=True)

    def save_ckpt(step):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "log": log, "step": step, "smooth": smooth, "tokens_seen": tokens_seen, "train_s": train_s,
                    "kinds": kinds}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    t_seg = time.time()
    step = step0
    for step in range(step0, 0 if a.export_only else a.steps):
        ctx, batch, mix = phase(step, a)
        sampler.ctx = ctx
        rows = []
        for _ in range(batch):
            kind, w = sampler.window(mix)
            kinds[kind] += 1
            rows.append(w)
        win = torch.tensor(rows, dtype=torch.long)
        x, y = win[:, :-1], win[:, 1:]
        sampler.unigram_copy = step >= a.p5_from
        p8 = a.p8_from <= step < a.p8_to and step < a.p9_from
        sampler.copy_len, sampler.copy_reps = ((8, 25), (4, 9)) if p8 else ((8, 65), (2, 5))
        if step >= a.p9_from:
            lr = a.p9_lr * (1 - 0.9 * (step - a.p9_from) / max(1, a.steps - 1 - a.p9_from))
        elif p8:
            lr = a.p8_lr
        elif a.p7_from <= step < a.p6_to:
            lr = a.p7_lr
        elif a.p6_from <= step < a.p6_to:
            lr = a.p6_lr
        elif a.p5_from <= step < a.p5_to:
            lr = a.p5_lr
        else:
            lr = lr_at(step, a)
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        opt.step()
        tokens_seen += batch * ctx
        li = loss.item()
        smooth = li if smooth is None else 0.9 * smooth + 0.1 * li
        if step % a.log_every == 0 or step == a.steps - 1:
            el = train_s + time.time() - t_seg
            print(f"step {step:5d} ctx {ctx} loss {li:.4f} smooth {smooth:.4f} lr {lr:.2e} "
                  f"gnorm {gnorm:.2f} tokens {tokens_seen} elapsed {el:.0f}s", flush=True)
            log.append({"step": step, "ctx": ctx, "loss": round(li, 4), "smooth": round(smooth, 4),
                        "elapsed_s": round(el, 1)})
        if (step + 1) % a.ckpt_every == 0 or step == a.steps - 1 or step + 1 == a.stop_at:
            train_s += time.time() - t_seg
            t_seg = time.time()
            save_ckpt(step + 1)
        if step + 1 == a.stop_at:
            print(f"stopped at step {a.stop_at} (checkpoint saved; continue with --resume)", flush=True)
            return
    done = step0 if a.export_only else a.steps
    summary = {
        "command": " ".join(["/usr/bin/python3"] + sys.argv),
        "init": a.init, "seed": a.seed, "threads": a.threads, "torch": torch.__version__,
        "parameters": n_params, "train_tokens_available": int(len(stream)), "mix": dict(MIX), "mix2": dict(MIX2),
        "mix2_from": a.mix2_from, "mix3": dict(MIX3), "p3_from": a.p3_from, "p3_to": a.p3_to,
        "mix4": dict(MIX4), "p4_from": a.p4_from, "p4_to": a.p4_to, "p4_ctx": a.p4_ctx,
        "mix5": dict(MIX5), "p5_from": a.p5_from, "p5_to": a.p5_to, "p5_ctx": a.p5_ctx, "p5_batch": a.p5_batch,
        "p5_lr": a.p5_lr, "p6_from": a.p6_from, "p6_to": a.p6_to, "p6_batch": a.p6_batch, "p6_lr": a.p6_lr,
        "p7_from": a.p7_from, "p7_lr": a.p7_lr, "mix8": dict(MIX8), "p8_from": a.p8_from, "p8_to": a.p8_to,
        "p8_lr": a.p8_lr, "mix9": dict(MIX9), "p9_from": a.p9_from, "p9_lr": a.p9_lr,
        "windows_by_kind": kinds, "tokens_seen": tokens_seen, "steps_done": done, "steps_planned": a.steps,
        "short_steps": a.short_steps, "batch": a.batch, "ctx": a.ctx, "lr": a.lr, "warmup": a.warmup,
        "weight_decay": a.wd, "train_wall_s": round(train_s, 1),
        "final_smooth_loss": log[-1]["smooth"] if log else None, "log": log,
    }
    export(model, cfg, a, enc, held_ids, summary)
    print(f"done: {done} steps, {tokens_seen} tokens, train {train_s:.0f}s, total {time.time() - t_start:.0f}s",
          flush=True)


if __name__ == "__main__":
    main()
