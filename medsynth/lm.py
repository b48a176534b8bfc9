"""Scoring text under a causal language model: one negative log-likelihood routine for every perplexity in medsynth.

Adapter training uses :func:`per_sample_nll` as its loss (DP-SGD needs it per document), the ``adapt`` step reports
:func:`corpus_perplexity` of held-out and training documents, and the ``quality`` step reports
:func:`text_perplexities` of real and synthetic texts. All three share the padding and the log-likelihood code, and
the two perplexities take their arguments in the same order (model, tokenizer, texts).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["pad_batch", "per_sample_nll", "corpus_perplexity", "text_perplexities", "encode_documents"]


def pad_batch(batch: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-padded ``input_ids`` and ``attention_mask`` tensors of a list of token-id lists."""
    import torch

    n = max(len(x) for x in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return ids, mask


def per_sample_nll(model: Any, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
    """(mean NLL per document [B], predicted-token count per document [B]) of a causal LM on right-padded documents.

    Works for peft prompt/prefix models too (their virtual positions are dropped from the logits' front)."""
    import torch

    out = model(input_ids=input_ids, attention_mask=attention_mask)
    logits = out.logits
    n = input_ids.shape[1]
    logits = logits[:, -n:, :]  # prompt tuning prepends virtual tokens
    tgt = input_ids[:, 1:]
    m = attention_mask[:, 1:].to(torch.float32)
    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    tok = m.sum(1).clamp(min=1.0)
    return -(lp * m).sum(1) / tok, m.sum(1)


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def encode_documents(tokenizer: Any, docs: list[str], max_length: int, append_eos: bool = True) -> tuple[list[list[int]], int]:
    """Token ids of each document (the tokenizer's special tokens, then EOS when ``append_eos``), cut to
    ``max_length``; and how many were cut."""
    ids, truncated = [], 0
    eos = tokenizer.eos_token_id
    for d in docs:
        t = tokenizer(d, add_special_tokens=True)["input_ids"]
        if append_eos and eos is not None:
            t = t + [eos]
        if len(t) > max_length:
            truncated += 1
            t = t[:max_length]
        ids.append(t)
    return ids, truncated


def _document_nll(model: Any, tokenizer: Any, ids: list[list[int]], order: list[int], batch_size: int) -> tuple[list[float], list[float]]:
    """(mean NLL, predicted tokens) of each document in ``order``, in batches, without gradients; eval mode restored."""
    import torch

    nll = [float("nan")] * len(ids)
    cnt = [0.0] * len(ids)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for a in range(0, len(order), batch_size):
                idx = order[a : a + batch_size]
                x, m = pad_batch([ids[i] for i in idx], _pad_id(tokenizer))
                dev = next(model.parameters()).device
                per, tok = per_sample_nll(model, x.to(dev), m.to(dev))
                for r, i in enumerate(idx):
                    nll[i], cnt[i] = float(per[r]), float(tok[r])
    finally:
        if was_training:
            model.train()
    return nll, cnt


def corpus_perplexity(model: Any, tokenizer: Any, docs: list[str], batch_size: int = 4, max_length: int = 256) -> dict[str, Any]:
    """Token-level perplexity exp(Σ NLL / Σ tokens) of ``docs`` (each with BOS, EOS appended, truncated), with the
    token and document counts it rests on."""
    ids, truncated = encode_documents(tokenizer, docs, max_length)
    nll, cnt = _document_nll(model, tokenizer, ids, list(range(len(ids))), batch_size)
    tot_tok = sum(cnt)
    tot_nll = sum(n * c for n, c in zip(nll, cnt, strict=True) if c > 0)
    return {"perplexity": math.exp(tot_nll / max(tot_tok, 1.0)), "nll_per_token": tot_nll / max(tot_tok, 1.0),
            "tokens": int(tot_tok), "documents": len(docs), "truncated": truncated}


def text_perplexities(model: Any, tokenizer: Any, texts: list[str], batch_size: int = 8, max_tokens: int = 256) -> list[float]:
    """Per-text perplexity (no EOS added; truncated to ``max_tokens`` tokens). Empty texts, and texts of one token
    (nothing to predict), get NaN. Texts are batched by length."""
    ids = [tokenizer(t, add_special_tokens=True, truncation=True, max_length=max_tokens)["input_ids"] if t and t.strip() else [] for t in texts]
    order = sorted((i for i, t in enumerate(texts) if t and t.strip()), key=lambda i: len(texts[i]))
    nll, cnt = _document_nll(model, tokenizer, ids, order, batch_size)
    return [math.exp(n) if c > 0 else float("nan") for n, c in zip(nll, cnt, strict=True)]
