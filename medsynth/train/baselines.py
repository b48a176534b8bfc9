"""Is a trained classifier worth anything? Baselines from the same run and a verdict that says so.

Every classification model the ``train`` step trains is evaluated next to

- the **prior** predictor: every record gets the training set's label frequencies as its probabilities (for a
  single-label task the majority label is predicted; for a multi-label task every label whose frequency reaches the
  decision threshold). It has no ranking skill: its AUROC is 0.5 by construction;
- with DP, the **same model trained without DP on the same records** (evaluated, never saved or released).

The verdict (:func:`usefulness`) is ``useful`` only when the model beats the prior with confidence: the lower end
of a 95 % paired bootstrap interval (records resampled, ``n_boot`` times) of *model − prior* on macro AUROC is above
0. Otherwise it is ``not_useful``: the model ranks no better than the label frequencies would, whatever its other
figures say. When AUROC cannot be computed (a single class in the evaluation set) the verdict is ``not_assessed``.
"""

from __future__ import annotations

from typing import Any

from ..data.records import Record

__all__ = ["prior_proba", "usefulness", "MODEL_VERDICTS"]

#: the verdicts a trained model can get
MODEL_VERDICTS = ("useful", "not_useful", "not_assessed")


def prior_proba(train: list[Record], labels: list[str], task: str, n: int) -> Any:
    """``n`` rows of the prior predictor's probabilities over ``labels`` (the training records' label frequencies)."""
    import numpy as np

    if task == "multiclass":
        freq = np.array([sum(1 for r in train if r.labels and r.labels[0] == lab) for lab in labels], dtype=float)
        freq = freq / max(freq.sum(), 1.0)
    else:
        freq = np.array([sum(1 for r in train if lab in r.labels) for lab in labels], dtype=float) / max(len(train), 1)
    return np.tile(freq, (n, 1))


def _auroc(y: Any, P: Any, task: str, n_labels: int) -> float | None:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if task == "multiclass":
        present = sorted(set(np.asarray(y).tolist()))
        if len(present) < 2:
            return None
        if n_labels == 2:
            return float(roc_auc_score(y, P[:, 1]))
        Y = np.eye(n_labels)[np.asarray(y)]
        return float(np.mean([roc_auc_score(Y[:, j], P[:, j]) for j in present]))
    Y = np.asarray(y)
    present = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    if not present:
        return None
    return float(np.mean([roc_auc_score(Y[:, j], P[:, j]) for j in present]))


def usefulness(y: Any, P_model: Any, P_prior: Any, task: str, n_labels: int, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The verdict of a model against the prior predictor on the same evaluation records (see the module docstring):
    ``{"verdict", "auroc", "auroc_prior", "auroc_gain", "auroc_gain_ci95", "n_boot", "reason"}``."""
    import numpy as np

    y = np.asarray(y)
    base = _auroc(y, P_model, task, n_labels)
    prior = _auroc(y, P_prior, task, n_labels)
    if base is None or prior is None:
        return {"verdict": "not_assessed", "reason": "AUROC is undefined on this evaluation set (one class only)", "n_boot": 0}
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        a, b = _auroc(y[idx], P_model[idx], task, n_labels), _auroc(y[idx], P_prior[idx], task, n_labels)
        if a is not None and b is not None:
            gains.append(a - b)
    lo, hi = (float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))) if gains else (float("nan"), float("nan"))
    useful = bool(gains) and lo > 0
    reason = (f"macro AUROC {base:.3f} vs {prior:.3f} for the label frequencies; 95 % bootstrap interval of the gain "
              f"[{lo:+.3f}, {hi:+.3f}] " + ("is above 0" if useful else "includes 0 or is below it: no better than the prior"))
    return {"verdict": "useful" if useful else "not_useful", "auroc": base, "auroc_prior": prior, "auroc_gain": base - prior,
            "auroc_gain_ci95": [lo, hi], "n_boot": len(gains), "reason": reason}
