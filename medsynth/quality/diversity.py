"""Diversity: Self-BLEU-4, distinct-n, embedding spread and coverage of the real data's embedding space.

- ``self_bleu``: the ZeroGen convention: up to 1,000 sampled texts, each scored with NLTK's ``sentence_bleu``
  (4-gram, uniform weights, smoothing method1) against *all* the other sampled texts as references; the mean is
  reported (higher = less diverse). Computed exactly but in O(total n-grams) instead of NLTK's O(N²·L): for every
  n-gram the two largest per-text counts are kept, so "the largest count among the other texts" is known for every
  hypothesis; the brevity penalty uses the closest other text's length as NLTK does. A test checks equality with
  NLTK's own function. Pass ``max_refs`` to use NLTK itself on a random subset of references (legacy/cost cap).
- ``distinct_n``: unique n-grams / all n-grams over the set (Li et al. 2016); depends on set size.
- ``embedding_spread``: mean pairwise cosine distance of normalised embeddings.
- ``coverage`` (Naeem et al. 2020, "density and coverage"): share of real records whose k-nearest-neighbour ball
  (radius = distance to their k-th nearest real neighbour) contains at least one synthetic record — which part of
  the real data's variety the synthetic set reaches. ``density`` is returned alongside (≈1 when synthetic records
  are distributed like real ones; > 1 when they crowd into dense regions).
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections import Counter
from typing import Any

__all__ = ["tokenize", "self_bleu", "self_bleu_scores", "distinct_n", "embedding_spread", "coverage_density"]

_TOK = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOK.findall(text.lower())


def _ngrams(toks: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)) if len(toks) >= n else Counter()


def self_bleu_scores(token_lists: list[list[str]], max_n: int = 4, epsilon: float = 0.1) -> list[float]:
    """BLEU-``max_n`` of each token list against all the others (NLTK sentence_bleu semantics, smoothing method1)."""
    n_texts = len(token_lists)
    counts = [[_ngrams(t, n) for n in range(1, max_n + 1)] for t in token_lists]
    # per n-gram: the two largest (count, owner) pairs
    top: list[dict[tuple[str, ...], tuple[int, int, int]]] = []
    for k in range(max_n):
        best: dict[tuple[str, ...], tuple[int, int, int]] = {}  # g -> (count1, owner1, count2)
        for i in range(n_texts):
            for g, c in counts[i][k].items():
                b = best.get(g)
                if b is None:
                    best[g] = (c, i, 0)
                elif c > b[0]:
                    best[g] = (c, i, b[0])
                elif c > b[2]:
                    best[g] = (b[0], b[1], c)
        top.append(best)
    lens = sorted(len(t) for t in token_lists)
    len_count = Counter(lens)
    uniq = sorted(len_count)
    out = []
    for i, toks in enumerate(token_lists):
        h = len(toks)
        # closest other length (ties -> the shorter, as NLTK's key (|r - h|, r))
        cands = []
        j = bisect.bisect_left(uniq, h)
        for idx in (j - 2, j - 1, j, j + 1):
            if 0 <= idx < len(uniq):
                L = uniq[idx]
                if L == h and len_count[L] < 2:
                    continue
                cands.append(L)
        if not cands:  # every other text has the hypothesis' length except itself — search outward
            cands = [L for L in uniq if not (L == h and len_count[L] < 2)]
        r = min(cands, key=lambda L: (abs(L - h), L)) if cands else 0
        nums, dens = [], []
        for k in range(max_n):
            num = 0
            for g, c in counts[i][k].items():
                c1, o1, c2 = top[k][g]
                m = c2 if o1 == i else c1
                num += min(c, m)
            nums.append(num)
            dens.append(max(1, sum(counts[i][k].values())))
        if nums[0] == 0:
            out.append(0.0)
            continue
        bp = 1.0 if h > r else (0.0 if h == 0 else math.exp(1 - r / h))
        s = 0.0
        for num, den in zip(nums, dens, strict=True):
            p = (num + epsilon) / den if num == 0 else num / den
            s += (1.0 / max_n) * math.log(p)
        out.append(bp * math.exp(s))
    return out


def self_bleu(texts: list[str], n_samples: int = 1000, seed: int = 0, max_refs: int | None = None) -> float:
    """Mean Self-BLEU-4 over up to ``n_samples`` sampled texts, each against all other sampled texts."""
    toks = [tokenize(t) for t in texts if t]
    if len(toks) < 2:
        return float("nan")
    rng = random.Random(seed)
    sample = rng.sample(toks, min(n_samples, len(toks)))
    if max_refs is None:
        scores = self_bleu_scores(sample)
        return float(sum(scores) / len(scores))
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    sm = SmoothingFunction().method1
    scores = []
    for i, hyp in enumerate(sample):
        refs = sample[:i] + sample[i + 1 :]
        if len(refs) > max_refs:
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


def embedding_spread(emb: Any) -> float:
    """Mean pairwise cosine distance of normalised embeddings."""
    if len(emb) < 2:
        return 0.0
    sims = emb @ emb.T
    n = len(emb)
    return float(1 - (sims.sum() - n) / (n * (n - 1)))


def coverage_density(real: Any, synthetic: Any, k: int = 5) -> tuple[float, float]:
    """(coverage, density) of Naeem et al. (2020) with cosine distance on normalised embeddings."""
    import numpy as np

    real = np.asarray(real, dtype="float32")
    synthetic = np.asarray(synthetic, dtype="float32")
    if len(real) <= k or len(synthetic) == 0:
        return float("nan"), float("nan")
    d_rr = 1.0 - real @ real.T
    np.fill_diagonal(d_rr, np.inf)
    radius = np.partition(d_rr, k - 1, axis=1)[:, k - 1]  # distance to the k-th nearest other real record
    d_rs = 1.0 - real @ synthetic.T  # (n_real, n_syn)
    inside = d_rs <= radius[:, None]
    cov = float(inside.any(axis=1).mean())
    dens = float(inside.sum() / (k * len(synthetic)))
    return cov, dens
