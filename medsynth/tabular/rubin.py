"""Rubin's rules for pooling an estimate over m multiply-imputed data sets."""

from __future__ import annotations

import numpy as np

__all__ = ["rubin_pool"]


def rubin_pool(estimates: list[float] | np.ndarray, variances: list[float] | np.ndarray) -> dict[str, float]:
    """Pooled estimate, within/between/total variance, and the Barnard-Rubin-free large-sample degrees of freedom."""
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = len(q)
    if m < 2:
        raise ValueError("Rubin's rules need at least 2 imputations (n_imputations >= 2).")
    qbar = q.mean()
    ubar = u.mean()
    b = q.var(ddof=1)
    t = ubar + (1 + 1 / m) * b
    r = (1 + 1 / m) * b / ubar if ubar > 0 else np.inf
    df = (m - 1) * (1 + 1 / r) ** 2 if np.isfinite(r) and r > 0 else np.inf
    return {"estimate": float(qbar), "within": float(ubar), "between": float(b), "total": float(t), "se": float(np.sqrt(t)), "df": float(df)}
