"""Held-out perplexity with llama.cpp's protocol (the one kvlab's `llamacpp` protocol implements).

Tokenize the whole text with BOS; chunk i is tokens[i*n_ctx, (i+1)*n_ctx) with its first token
replaced by BOS; each chunk runs from an empty context; the logits at positions
n_ctx/2 .. n_ctx-2 are scored against the next token; PPL = exp(mean NLL over all scored tokens).
"""

import torch
import torch.nn.functional as F


def llamacpp_nll(model, ids, n_ctx, bos, batch=8):
    """(mean NLL, scored tokens, chunks, per-chunk mean NLL) over floor(len(ids)/n_ctx) chunks."""
    n_chunks = len(ids) // n_ctx
    first = n_ctx // 2
    total, count, per_chunk = 0.0, 0, []
    for c0 in range(0, n_chunks, batch):
        rows = []
        for c in range(c0, min(n_chunks, c0 + batch)):
            row = list(ids[c * n_ctx : (c + 1) * n_ctx])
            row[0] = bos
            rows.append(row)
        x = torch.tensor(rows, dtype=torch.long)  # (b, n_ctx)
        logp = F.log_softmax(model(x).double(), dim=-1)  # (b, n_ctx, vocab)
        tgt = x[:, first + 1 :]  # next tokens for positions first .. n_ctx-2
        nll = -logp[:, first : n_ctx - 1].gather(-1, tgt.unsqueeze(-1)).squeeze(-1)  # (b, n_ctx/2-1)
        for r in nll:
            per_chunk.append(r.mean().item())
        total += nll.sum().item()
        count += nll.numel()
    return total / count, count, n_chunks, per_chunk
