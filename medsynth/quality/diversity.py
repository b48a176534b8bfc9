"""Diversity: Self-BLEU-4 (ZeroGen convention: NLTK, smoothing method1, ≤1,000 sampled texts, each scored against
all the others as references) and distinct-n (unique n-grams / all n-grams)."""

from __future__ import annotations

import random
import re

__all__ = ["tokenize", "self_bleu", "distinct_n", "embedding_spread"]

_TOK = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOK.findall(text.lower())


def self_bleu(texts: list[str], n_samples: int = 1000, seed: int = 0, max_refs: int | None = None) -> float:
    """Mean BLEU-4 of each sampled text against the other sampled texts (higher = less diverse)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    toks = [tokenize(t) for t in texts if t]
    if len(toks) < 2:
        return float("nan")
    rng = random.Random(seed)
    sample = rng.sample(toks, min(n_samples, len(toks)))
    sm = SmoothingFunction().method1
    scores = []
    for i, hyp in enumerate(sample):
        refs = sample[:i] + sample[i + 1 :]
        if max_refs and len(refs) > max_refs:
            refs = rng.sample(refs, max_refs)
        scores.append(sentence_bleu(refs, hyp, weights=(0.25, 0.25, 0.25, 0.25), smoothing_function=sm))
    return float(sum(scores) / len(scores))


def distinct_n(texts: list[str], n: int) -> float:
    total, uniq = 0, set()
    for t in texts:
        tk = tokenize(t)
        grams = [tuple(tk[i : i + n]) for i in range(len(tk) - n + 1)]
        total += len(grams)
        uniq.update(grams)
    return len(uniq) / total if total else 0.0


def embedding_spread(emb) -> float:  # type: ignore[no-untyped-def]
    """Mean pairwise cosine distance of normalised embeddings."""
    import numpy as np

    if len(emb) < 2:
        return 0.0
    sims = emb @ emb.T
    n = len(emb)
    return float(1 - (sims.sum() - n) / (n * (n - 1)))
