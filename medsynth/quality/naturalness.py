"""Naturalness: how easily a classifier tells synthetic from real text, and how likely a reference LM finds it.

- ``discriminator``: cross-validated TF-IDF (word 1-2 grams) + logistic-regression real-vs-synthetic classifier on
  balanced samples. Per set: ROC AUC (0.5 = indistinguishable, the goal; 1.0 = trivially told apart). Per record:
  the out-of-fold probability that the record is synthetic (``p_synthetic``; records not in the balanced sample
  are scored by the model fitted on all of it).
- perplexity (computed by :func:`medsynth.lm.text_perplexities`, the one LM-scoring routine): per-record
  perplexity under a causal reference LM (the embedded model, or any prepared model / HF folder, offline):
  exp(mean token negative log-likelihood), the first token excluded. Per set: the median for synthetic and for real
  records (a synthetic median far above the real one = less fluent text; far below = degenerate, repetitive text).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["discriminator_auc", "discriminator"]


def discriminator(real: list[str], synthetic: list[str], seed: int = 0, folds: int = 5) -> tuple[float, list[float]]:
    """(cross-validated ROC AUC, per-synthetic-record probability of being synthetic)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic))
    if n < 10:
        return float("nan"), [float("nan")] * len(synthetic)
    ri = rng.choice(len(real), n, replace=False)
    si = rng.choice(len(synthetic), n, replace=False)
    X = [real[i] for i in ri] + [synthetic[i] for i in si]
    y = np.array([0] * n + [1] * n)

    def pipe() -> Any:
        return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), LogisticRegression(max_iter=2000))

    p = cross_val_predict(pipe(), X, y, cv=StratifiedKFold(min(folds, n), shuffle=True, random_state=seed), method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, p))
    per = np.full(len(synthetic), np.nan)
    per[si] = p[n:]
    rest = np.flatnonzero(np.isnan(per))
    if len(rest):
        m = pipe().fit(X, y)
        per[rest] = m.predict_proba([synthetic[i] for i in rest])[:, 1]
    return auc, [float(x) for x in per]


def discriminator_auc(real: list[str], synthetic: list[str], seed: int = 0, folds: int = 5) -> float:
    """Cross-validated ROC AUC of the real-vs-synthetic discriminator (balanced by subsampling the larger side)."""
    return discriminator(real, synthetic, seed, folds)[0]
