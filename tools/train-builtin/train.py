"""Train the built-in default model (models/sotu-llama) from scratch: tokenizer, model, export, eval.

Run from the repo root with Debian's interpreter (python3-torch 1.13 lives there):
  /usr/bin/python3 tools/train-builtin/train.py
Everything is seeded and torch runs with deterministic algorithms on CPU; two runs (2 threads
and 1 thread) logged identical losses at the steps compared, but full runs' weights have not been
compared bit for bit. Intermediate checkpoints go to --work (default /tmp/sotu-train), never
into the repo.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

# One BLAS thread: on the shared 2-core machine, 2 torch threads plus OpenBLAS's own pool
# oversubscribe the cores and a training step ran 4x slower than with a single thread.
# Must be set before torch (and its BLAS) is loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import corpus  # noqa: E402
import safetensors_io  # noqa: E402
from evaluate import llamacpp_nll  # noqa: E402
from model import LlamaForCausalLM, train_step  # noqa: E402


def model_config(a):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": a.vocab,
        "hidden_size": a.dim,
        "intermediate_size": a.hidden,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "head_dim": a.dim // a.heads,
        "hidden_act": "silu",
        "max_position_embeddings": a.ctx,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "rms_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": None,
        "use_cache": True,
        "torch_dtype": "float16",
    }


def lr_at(step, a):
    """Linear warmup, then cosine decay to 10% of the peak."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/sotu-llama")
    ap.add_argument("--data-out", default="data/sotu")
    ap.add_argument("--work", default="/tmp/sotu-train")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=688)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--log-every", type=int, default=10)
    a = ap.parse_args()

    t_start = time.time()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.data_out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)

    # Corpus and split.
    train_docs, held_docs = corpus.split(corpus.load_addresses("."))
    held_text = corpus.heldout_text(held_docs)
    with open(os.path.join(a.data_out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(held_text)
    print(f"corpus: {len(train_docs)} train addresses, {len(held_docs)} held out "
          f"({', '.join(d[0] for d in held_docs)})", flush=True)

    # Tokenizer.
    vocab, merges = bpe.train([d[3] for d in train_docs], a.vocab)
    with open(os.path.join(a.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_json(vocab, merges), f, ensure_ascii=False, indent=1)
    with open(os.path.join(a.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_config(a.ctx), f, indent=2)
    enc = bpe.Encoder(vocab, merges)
    stream = []
    for d in train_docs:  # each address: BOS text EOS, concatenated
        stream += enc.encode(d[3], bos=True) + [vocab[bpe.EOS]]
    stream = torch.tensor(stream, dtype=torch.long)
    held_ids = enc.encode(held_text, bos=True)
    with open(os.path.join(a.work, "heldout.ids.json"), "w") as f:
        json.dump(held_ids, f)
    print(f"tokens: train {len(stream)}, held-out {len(held_ids)}", flush=True)

    # Model and optimiser.
    cfg = model_config(a)
    model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters", flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    bos = vocab[bpe.BOS]
    log = []
    t_train = time.time()
    smooth = None
    for step in range(a.steps):
        # Random windows; position 0 set to BOS, as in the llama.cpp evaluation protocol.
        offs = torch.randint(0, len(stream) - a.ctx - 1, (a.batch,), generator=gen)
        win = torch.stack([stream[o : o + a.ctx + 1] for o in offs.tolist()])  # (batch, ctx+1)
        win[:, 0] = bos
        li, gnorm = train_step(model, opt, win, lr_at(step, a))
        smooth = li if smooth is None else 0.9 * smooth + 0.1 * li
        if step % a.log_every == 0 or step == a.steps - 1:
            el = time.time() - t_train
            tps = (step + 1) * a.batch * a.ctx / el
            print(f"step {step:5d} loss {li:.4f} smooth {smooth:.4f} lr {lr_at(step, a):.2e} gnorm {gnorm:.2f} "
                  f"tok/s {tps:.0f} elapsed {el:.0f}s", flush=True)
            log.append({"step": step, "loss": round(li, 4), "smooth": round(smooth, 4), "elapsed_s": round(el, 1)})
    train_s = time.time() - t_train
    torch.save(model.state_dict(), os.path.join(a.work, "final.pt"))

    # Export in fp16 with HF names (lm_head omitted: tied).
    exported = safetensors_io.save_fp16_state(model, os.path.join(a.out, "model.safetensors"))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    # Held-out perplexity of the exported (fp16-rounded) weights, computed in fp32.
    model.load_state_dict(exported, strict=False)
    model.eval()
    ref = {"text": os.path.join(a.data_out, "heldout.txt"), "tokens_with_bos": len(held_ids),
           "ids_sha256": hashlib.sha256(",".join(map(str, held_ids)).encode()).hexdigest(),
           "first_ids": held_ids[:32], "weights": "model.safetensors (fp16) upcast to fp32", "protocols": []}
    with torch.no_grad():
        for n_ctx in (a.ctx, a.ctx // 2):
            nll, n, chunks, per_chunk = llamacpp_nll(model, held_ids, n_ctx, bos)
            ref["protocols"].append({"name": "llamacpp", "n_ctx": n_ctx, "chunks": chunks, "scored": n,
                                     "mean_nll": nll, "ppl": math.exp(nll),
                                     "chunk_mean_nll": [round(c, 6) for c in per_chunk]})
            print(f"held-out llamacpp n_ctx={n_ctx}: chunks {chunks} scored {n} mean NLL {nll:.5f} "
                  f"PPL {math.exp(nll):.4f}", flush=True)
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    summary = {
        "command": " ".join(["/usr/bin/python3"] + sys.argv),
        "seed": a.seed, "threads": a.threads, "torch": torch.__version__,
        "parameters": n_params, "train_tokens_available": len(stream),
        "tokens_seen": a.steps * a.batch * a.ctx, "steps": a.steps, "batch": a.batch, "ctx": a.ctx,
        "lr": a.lr, "warmup": a.warmup, "weight_decay": a.wd,
        "train_wall_s": round(train_s, 1), "total_wall_s": round(time.time() - t_start, 1),
        "final_loss": log[-1]["loss"], "final_smooth_loss": log[-1]["smooth"], "log": log,
    }
    with open(os.path.join(a.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"done: {n_params} params, train {train_s:.0f}s, total {time.time() - t_start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
