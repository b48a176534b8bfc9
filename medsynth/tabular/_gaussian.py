"""Multivariate normal model of an incomplete table fitted by EM, and its conditional-mean imputations.

The ``gaussian`` learner of the stack. Each row's missing cells are imputed by E[x_m | x_o] under N(mu, Sigma),
using only the cells observed in that row: unlike chained equations there is no feedback through other imputed
cells, and under MAR the EM estimate of (mu, Sigma) is consistent (the missingness is ignorable for likelihood
inference). Works on the engine's feature space (standardised numbers, one-hot categories); a ridge on Sigma keeps
one-hot blocks and small tables well conditioned. Rows are grouped by missingness pattern, so the cost is one
small solve per pattern and EM iteration.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GaussianEM"]


class GaussianEM:
    def __init__(self, max_iter: int = 20, ridge: float = 0.02, tol: float = 1e-3):
        self.max_iter = max_iter
        self.ridge = ridge
        self.tol = tol

    @staticmethod
    def _patterns(M: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(rows, missing column indices, observed column indices) per distinct missingness pattern."""
        if not len(M):
            return []
        pats, inv = np.unique(M, axis=0, return_inverse=True)
        inv = np.asarray(inv).reshape(-1)
        order = np.argsort(inv, kind="stable")
        bounds = np.flatnonzero(np.diff(inv[order])) + 1
        out = []
        for g in np.split(order, bounds):
            m = pats[inv[g[0]]]
            if m.any():
                out.append((g, np.flatnonzero(m), np.flatnonzero(~m)))
        return out

    def _conditional(self, X: np.ndarray, M: np.ndarray, pats: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                     acc: bool) -> tuple[np.ndarray, np.ndarray | None]:
        mu, S = self.mean_, self.cov_
        d = X.shape[1]
        out = np.where(M, 0.0, X)
        extra = np.zeros((d, d)) if acc else None
        for rows, mi, oi in pats:
            Smm = S[mi][:, mi]
            if not len(oi):
                out[rows[:, None], mi] = mu[mi]
                if acc:
                    extra[mi[:, None], mi] += len(rows) * Smm
                continue
            Smo = S[mi][:, oi]
            Soo = S[oi][:, oi]
            Soo[np.diag_indices_from(Soo)] += self.ridge
            B = np.linalg.solve(Soo, Smo.T).T  # (|m|, |o|)
            out[rows[:, None], mi] = mu[mi] + (X[rows[:, None], oi] - mu[oi]) @ B.T
            if acc:
                extra[mi[:, None], mi] += len(rows) * (Smm - B @ Smo.T)
        return out, extra

    def fit(self, X: np.ndarray) -> GaussianEM:
        """``X``: (n, d) with NaN for missing cells (already on comparable scales)."""
        n, d = X.shape
        M = np.isnan(X)
        pats = self._patterns(M)
        with np.errstate(all="ignore"):
            mu = np.nanmean(np.where(M, np.nan, X), axis=0)
        mu = np.where(np.isfinite(mu), mu, 0.0)
        Xf = np.where(M, mu, X)
        S = np.cov(Xf, rowvar=False, bias=True).reshape(d, d) if n > 1 else np.eye(d)
        self.mean_, self.cov_ = mu, S + self.ridge * np.eye(d)
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            Xh, extra = self._conditional(X, M, pats, acc=True)
            mu_new = Xh.mean(0)
            C = (Xh - mu_new).T @ (Xh - mu_new) / n + extra / n
            shift = float(np.max(np.abs(C - self.cov_))) if self.n_iter_ else np.inf
            self.mean_, self.cov_ = mu_new, C
            self.n_iter_ += 1
            if shift < self.tol:
                break
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``X`` with every missing cell replaced by its conditional mean given the row's observed cells."""
        M = np.isnan(X)
        out, _ = self._conditional(X, M, self._patterns(M), acc=False)
        return out
