"""Train a built-in model that retrieves from its whole 1024-token context, from scratch.

Why from scratch: models/sotu-llama-long was continued from the text-only models/sotu-llama and
formed an induction head only under a curriculum of 80% random-sequence copying, then lost it when
text came back (its README tells the story). Small transformers trained from the first step on a
mixture in which copying always pays (repeated random sequences, pass keys, key->value lists,
passages shown twice) form induction heads early and keep them, because the circuit is useful in
every batch. So this trainer starts from random weights (same architecture and tokenizer as
models/sotu-llama) and keeps one mixture for the whole run; only the context grows, in stages,
because short windows give many more updates per second while the circuit forms.

Run from the repo root with Debian's interpreter (python3-torch lives there):
  /usr/bin/python3 tools/train-builtin/train_retrieval.py [--resume] [--stop-at STEP]
Stages are "ctx:batch:steps,..." (default below). A checkpoint is written every --ckpt-every steps
and at --stop-at; --resume continues with the same data order (the numpy generator state is in the
checkpoint), so a run can be split over sittings. Every --probe-every steps the log shows two
training monitors at the current context: the pass-key answer accuracy (teacher forced: every
answer token must be the argmax) and the NLL of a random token sequence on its first vs second
showing (copying makes the second far cheaper). The model's real measurements are kvlab's own
(`kvlab probe`, `kvlab task`), run after export by tools/train-builtin/measure-long.sh.
"""

import argparse
import json
import math
import os
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
from model import LlamaForCausalLM, train_step  # noqa: E402
from long_windows import Sampler, export, load_tokenizer, sentences  # noqa: E402

# One mixture for the whole run (share of training windows by kind; each window is one episode
# topped up with SOTU text). "randcopy": sequences of corpus tokens repeated 2-4 times, which can
# only be predicted by copying; "copy": a SOTU span shown twice at any distance.
MIX = [("text", 0.35), ("randcopy", 0.20), ("copy", 0.10), ("passkey", 0.20), ("kv", 0.10), ("fact", 0.05)]
# A stage may name this mixture instead (ctx:batch:steps:boost): more and shorter random sequences
# repeated 4-8 times, the setting in which induction heads form fastest (see parse_stages).
BOOST_MIX = [("text", 0.20), ("randcopy", 0.60), ("passkey", 0.20)]
DEFAULT_STAGES = "128:32:1200,512:8:400,1024:4:400"


def parse_stages(s):
    """"ctx:batch:steps[:boost],..." -> [(end_step, ctx, batch, boost)]."""
    out, end = [], 0
    for part in s.split(","):
        f = part.split(":")
        end += int(f[2])
        out.append((end, int(f[0]), int(f[1]), len(f) > 3 and f[3] == "boost"))
    return out


def stage_at(step, stages):
    for end, ctx, batch, boost in stages:
        if step < end:
            return ctx, batch, boost
    return stages[-1][1:]


def lr_at(step, a, total):
    """Linear warmup, constant peak, then a linear decay to a tenth over the last --decay-steps."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    start = total - a.decay_steps
    if step < start:
        return a.lr
    return a.lr * (1 - 0.9 * (step - start) / max(1, a.decay_steps))


def probe_set(enc, sampler, ctx, n=16, seed=99):
    """Fixed monitor examples for this ctx: (passkey ids, answer start) pairs and random repeats."""
    r = np.random.default_rng(seed + ctx)
    keys = []
    for _ in range(n):
        filler, depth = r.random() < 0.5, float(r.random())
        saved, sampler.rng = sampler.rng, r  # text_chunks draws from the sampler's rng: use ours
        target = ctx - 8
        while True:  # shrink the filler until the whole episode fits the window
            chunks = ([ep.PASSKEY_FILLER] * max(1, (target - 70) // sampler.filler_tokens) if filler
                      else sampler.text_chunks(max(8, target - 70)))
            text = ep.passkey(r, chunks, depth)
            full = enc.encode(text, bos=True)
            if len(full) <= ctx or target < 16:
                break
            target = int(target * 0.9)
        sampler.rng = saved
        if len(full) > ctx:
            continue
        prompt = text[: text.rindex(ep.PASSKEY_QUESTION) + len(ep.PASSKEY_QUESTION)]
        pre = enc.encode(prompt, bos=True)
        start = next((i for i, (x, y) in enumerate(zip(full, pre)) if x != y), len(pre))
        keys.append((full[:-1], start))  # drop the final newline: score the key's tokens and the "."
    reps = []
    for _ in range(n):
        seq = [int(sampler.stream[i]) for i in r.integers(0, len(sampler.stream), 24)]
        reps.append([sampler.bos] + seq + seq)
    return keys, reps


@torch.no_grad()
def run_probe(model, keys, reps):
    model.eval()
    ok = 0
    for ids, start in keys:
        x = torch.tensor([ids[:-1]])
        pred = model(x)[0].argmax(-1).tolist()
        ok += all(pred[i - 1] == ids[i] for i in range(start, len(ids)))
    x = torch.tensor(reps)
    logits = model(x[:, :-1])
    nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
    first, second = nll[:, 1:24].mean().item(), nll[:, 25:].mean().item()
    model.train()
    return ok / max(1, len(keys)), first, second


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer-from", default="models/sotu-llama", help="tokenizer and architecture (not weights)")
    ap.add_argument("--out", default="models/sotu-llama-long")
    ap.add_argument("--work", default="/tmp/sotu-train-retrieval")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=1024, help="trained positions (max_position_embeddings)")
    ap.add_argument("--stages", default=DEFAULT_STAGES, help="ctx:batch:steps,... run in order")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--decay-steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--probe-every", type=int, default=50)
    ap.add_argument("--ckpt-every", type=int, default=25)
    ap.add_argument("--stop-at", type=int, default=None, help="save a checkpoint at this step and exit")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--probe-only", action="store_true", help="print the monitors of the last checkpoint at 128/512/1024")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out PPL (reference.json) on export")
    a = ap.parse_args()
    a.init = a.tokenizer_from  # export() copies the tokenizer from a.init
    stages = parse_stages(a.stages)
    total = stages[-1][0]

    t_start = time.time()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(a.work, exist_ok=True)

    vocab, merges = load_tokenizer(a.tokenizer_from)
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

    with open(os.path.join(a.tokenizer_from, "config.json")) as f:
        cfg = json.load(f)
    cfg["max_position_embeddings"] = a.ctx
    model = LlamaForCausalLM(cfg)  # random init (model.py's _init), seeded above
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(a.seed)
    sampler = Sampler(enc, stream, sents, a.ctx, rng)
    sampler.unigram_copy = True  # corpus tokens: their embeddings are trained by the text windows too
    log, probes, step0, smooth, tokens_seen, train_s = [], [], 0, None, 0, 0.0
    kinds = {k: 0 for k, _ in MIX}
    ckpt = os.path.join(a.work, "checkpoint.pt")
    if a.resume or a.export_only or a.probe_only:
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = st["rng"]
        log, probes, step0, smooth = st["log"], st["probes"], st["step"], st["smooth"]
        tokens_seen, train_s = st["tokens_seen"], st["train_s"]
        kinds.update(st["kinds"])
        print(f"resumed at step {step0} ({tokens_seen} tokens, {train_s:.0f}s of training)", flush=True)

    if a.probe_only:
        for ctx in (128, 512, 1024):
            acc, first, second = run_probe(model, *probe_set(enc, sampler, ctx))
            print(f"checkpoint step {step0} ctx {ctx}: passkey (teacher forced) {acc:.2f}, "
                  f"random repeat NLL first {first:.2f} second {second:.2f}", flush=True)
        return

    def save_ckpt(step):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "log": log, "probes": probes, "step": step, "smooth": smooth, "tokens_seen": tokens_seen,
                    "train_s": train_s, "kinds": kinds}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    probe_cache = {}
    t_seg = time.time()
    step = step0
    for step in range(step0, step0 if a.export_only else total):
        ctx, batch, boost = stage_at(step, stages)
        sampler.ctx = ctx
        sampler.copy_len, sampler.copy_reps = ((8, 25), (4, 9)) if boost else ((8, 65), (2, 5))
        rows = []
        for _ in range(batch):
            kind, w = sampler.window(BOOST_MIX if boost else MIX)
            kinds[kind] += 1
            rows.append(w)
        lr = lr_at(step, a, total)
        li, gnorm = train_step(model, opt, torch.tensor(rows, dtype=torch.long), lr)
        tokens_seen += batch * ctx
        smooth = li if smooth is None else 0.9 * smooth + 0.1 * li
        if step % a.log_every == 0 or step == total - 1:
            el = train_s + time.time() - t_seg
            print(f"step {step:5d} ctx {ctx} loss {li:.4f} smooth {smooth:.4f} lr {lr:.2e} "
                  f"gnorm {gnorm:.2f} tokens {tokens_seen} elapsed {el:.0f}s", flush=True)
            log.append({"step": step, "ctx": ctx, "loss": round(li, 4), "smooth": round(smooth, 4),
                        "elapsed_s": round(el, 1)})
        if (step + 1) % a.probe_every == 0 or step == total - 1:
            if ctx not in probe_cache:
                probe_cache[ctx] = probe_set(enc, sampler, ctx)
            acc, first, second = run_probe(model, *probe_cache[ctx])
            print(f"probe step {step + 1} ctx {ctx}: passkey (teacher forced) {acc:.2f}, "
                  f"random repeat NLL first {first:.2f} second {second:.2f}", flush=True)
            probes.append({"step": step + 1, "ctx": ctx, "passkey_tf": round(acc, 3),
                           "repeat_first_nll": round(first, 3), "repeat_second_nll": round(second, 3)})
        if (step + 1) % a.ckpt_every == 0 or step == total - 1 or step + 1 == a.stop_at:
            train_s += time.time() - t_seg
            t_seg = time.time()
            save_ckpt(step + 1)
        if step + 1 == a.stop_at:
            print(f"stopped at step {a.stop_at} (checkpoint saved; continue with --resume)", flush=True)
            return
    done = step0 if a.export_only else total
    summary = {
        "command": " ".join(["/usr/bin/python3"] + sys.argv), "init": "random (seeded)",
        "tokenizer_from": a.tokenizer_from, "seed": a.seed, "threads": a.threads, "torch": torch.__version__,
        "parameters": n_params, "train_tokens_available": int(len(stream)), "mix": dict(MIX),
        "boost_mix": dict(BOOST_MIX), "stages": a.stages, "lr": a.lr, "warmup": a.warmup, "decay_steps": a.decay_steps, "weight_decay": a.wd,
        "windows_by_kind": kinds, "tokens_seen": tokens_seen, "steps_done": done, "steps_planned": total,
        "train_wall_s": round(train_s, 1), "final_smooth_loss": log[-1]["smooth"] if log else None,
        "probes": probes, "log": log,
    }
    export(model, cfg, a, enc, held_ids, summary)
    print(f"done: {done} steps, {tokens_seen} tokens, train {train_s:.0f}s, total {time.time() - t_start:.0f}s",
          flush=True)


if __name__ == "__main__":
    main()
