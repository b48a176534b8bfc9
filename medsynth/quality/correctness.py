"""Correctness: an oracle multi-label classifier trained on real data scores each synthetic record's labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Oracle", "train_oracle"]


@dataclass
class Oracle:
    vectorizer: Any
    model: Any
    labels: list[str]
    cv_micro_f1: float

    def proba(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self.vectorizer.transform(texts)))

    def agreement(self, texts: list[str], labels: list[list[str]], threshold: float = 0.5) -> list[float]:
        """Jaccard between the oracle's predicted label set and each record's labels."""
        P = self.proba(texts)
        out = []
        for p, ls in zip(P, labels, strict=True):
            pred = {self.labels[i] for i in np.flatnonzero(p >= threshold)} or {self.labels[int(p.argmax())]}
            gold = set(ls) & set(self.labels)
            out.append(len(pred & gold) / len(pred | gold) if (pred | gold) else 1.0)
        return out


def train_oracle(texts: list[str], labels: list[list[str]], seed: int = 0) -> Oracle:
    """TF-IDF (1-2 grams) + one-vs-rest logistic regression; its 3-fold CV micro-F1 on the real data is reported."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import KFold
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    mlb = MultiLabelBinarizer()
    Y = mlb.fit_transform(labels)
    keep = Y.sum(0) >= 2
    Y = Y[:, keep]
    labs = [lab for lab, k in zip(mlb.classes_, keep, strict=True) if k]

    def fit(tx: list[str], y: np.ndarray) -> tuple[Any, Any]:
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        X = vec.fit_transform(tx)
        m = OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced"))
        m.fit(X, y)
        return vec, m

    f1s = []
    idx = np.arange(len(texts))
    if len(texts) >= 30:
        for tr, te in KFold(3, shuffle=True, random_state=seed).split(idx):
            vec, m = fit([texts[i] for i in tr], Y[tr])
            pred = m.predict(vec.transform([texts[i] for i in te]))
            f1s.append(f1_score(Y[te], pred, average="micro", zero_division=0))
    vec, m = fit(texts, Y)
    return Oracle(vec, m, labs, float(np.mean(f1s)) if f1s else float("nan"))
