"""Naturalness: how easily a classifier tells synthetic from real text (AUC 0.5 = indistinguishable)."""

from __future__ import annotations

import numpy as np

__all__ = ["discriminator_auc"]


def discriminator_auc(real: list[str], synthetic: list[str], seed: int = 0, folds: int = 5) -> float:
    """Cross-validated ROC AUC of a TF-IDF + logistic-regression real-vs-synthetic discriminator (balanced by
    subsampling the larger side)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic))
    if n < 10:
        return float("nan")
    r = [real[i] for i in rng.choice(len(real), n, replace=False)]
    s = [synthetic[i] for i in rng.choice(len(synthetic), n, replace=False)]
    X = r + s
    y = np.array([0] * n + [1] * n)
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), LogisticRegression(max_iter=2000))
    p = cross_val_predict(pipe, X, y, cv=StratifiedKFold(min(folds, n), shuffle=True, random_state=seed), method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))
