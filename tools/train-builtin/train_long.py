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

    def window(self):
        ctx, r = self.ctx, self.rng
        u, acc, kind = r.random(), 0.0, MIX[-1][0]
        for k, p in MIX:
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
    """(ctx, batch): a cheaper first phase at half the context, then the full context."""
    return (a.ctx // 2, a.batch * 2) if step < a.short_steps else (a.ctx, a.batch)


def export(model, cfg, a, enc, held_ids, summary):
    os.makedirs(a.out, exist_ok=True)
    sd = {k: v.detach().to(torch.float16).numpy() for k, v in model.state_dict().items() if not k.startswith("rope_")}
    st_path = os.path.join(a.out, "model.safetensors")
    safetensors_io.save(st_path, sd, metadata={"format": "pt"})
    back = safetensors_io.load(st_path)
    assert set(back) == set(sd) and all(np.array_equal(back[k], sd[k]) for k in sd), "safetensors round trip failed"
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(os.path.join(a.init, "tokenizer.json"), os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_config(a.ctx), f, indent=2)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in back.items()}, strict=False)
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
    log, step0, smooth, tokens_seen, train_s, kinds = [], 0, None, 0, 0.0, {k: 0 for k, _ in MIX}
    ckpt = os.path.join(a.work, "checkpoint.pt")
    if a.resume or a.export_only:
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = st["rng"]
        log, step0, smooth, tokens_seen, train_s, kinds = (st["log"], st["step"], st["smooth"], st["tokens_seen"],
                                                           st["train_s"], st["kinds"])
        print(f"resumed at step {step0} ({tokens_seen} tokens, {train_s:.0f}s of training)", flush=True)

    def save_ckpt(step):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "log": log, "step": step, "smooth": smooth, "tokens_seen": tokens_seen, "train_s": train_s,
                    "kinds": kinds}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    t_seg = time.time()
    step = step0
    for step in range(step0, 0 if a.export_only else a.steps):
        ctx, batch = phase(step, a)
        sampler.ctx = ctx
        rows = []
        for _ in range(batch):
            kind, w = sampler.window()
            kinds[kind] += 1
            rows.append(w)
        win = torch.tensor(rows, dtype=torch.long)
        x, y = win[:, :-1], win[:, 1:]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
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
            print(f"step {step:5d} ctx {ctx} loss {li:.4f} smooth {smooth:.4f} lr {lr_at(step, a):.2e} "
                  f"gnorm {gnorm:.2f} tokens {tokens_seen} elapsed {el:.0f}s", flush=True)
            log.append({"step": step, "ctx": ctx, "loss": round(li, 4), "smooth": round(smooth, 4),
                        "elapsed_s": round(el, 1)})
        if (step + 1) % a.ckpt_every == 0 or step == a.steps - 1:
            train_s += time.time() - t_seg
            t_seg = time.time()
            save_ckpt(step + 1)
    done = step0 if a.export_only else a.steps
    summary = {
        "command": " ".join(["/usr/bin/python3"] + sys.argv),
        "init": a.init, "seed": a.seed, "threads": a.threads, "torch": torch.__version__,
        "parameters": n_params, "train_tokens_available": int(len(stream)), "mix": dict(MIX),
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
