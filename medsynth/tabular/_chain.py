"""The stacked chained-equation engine behind ``Imputer(method="auto" | "select" | "chained")``.

Matrix in, matrix out: ``A`` is float (n, d) with NaN for missing cells; categorical columns hold category codes
0..K-1 (``n_levels[j] = K``; 0 for numeric columns).

Fit, in three phases:

1. **Validation mask that mimics the missingness.** For every column with missing cells, a logistic model of
   "is this cell missing" on the row's other values and its share of missing cells gives each observed row a
   propensity; observed cells are hidden with probability proportional to the odds ``e / (1 - e)`` (mixed half
   and half with a uniform draw, odds clipped at 10x the median: defensive importance sampling), so the hidden
   cells are distributed like the really missing ones (under MAR the rows that lose their values are the ones
   with high odds). Under MCAR the odds are flat and the mask is uniform.
2. **Chained equations with a per-column stack.** Columns are visited in ascending order of missingness; for
   each, every learner is fitted on the rows where it is observed (validation cells excluded) from the other
   columns (standardised numbers + one-hot categories, soft probabilities while imputed — never the column's own
   dummies) and predicts the missing + validation cells. The blend weights of the column are the point of a
   simplex grid with the lowest validation error (MSE on the standardised scale; Brier score for categories)
   and the blend is what later columns see. Passes stop when the mean validation error stops improving.
3. **Final passes on all observed cells** (validation cells restored) with the learned weights; the models of
   the last pass are kept for ``transform`` on new rows, and the validation error of each column's blend gives
   the noise of the multiple-imputation draws.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .learners import make_learner

__all__ = ["ChainEngine", "propensity_mask", "STATIC_LEARNERS"]

#: learners that do not take part in the chain: fitted once per phase on the observed cells only
STATIC_LEARNERS = ("gaussian",)


def _simplex(k: int) -> np.ndarray:
    step = 10 if k <= 5 else 5
    pts = [c for c in itertools.product(range(step + 1), repeat=k) if sum(c) == step]
    return np.asarray(pts, dtype=float) / step


def propensity_mask(A: np.ndarray, share: float, rng: np.random.Generator, columns: list[int], min_observed: int = 10,
                    use_propensity: bool = True) -> np.ndarray:
    """Hide ``share`` of the observed cells of ``columns``, more where cells of that column tend to be missing.

    The propensity of a missing cell in column j is a logistic regression of the missingness of j on the row's
    other columns (mean-filled, standardised; categories as codes are fine for this coarse model) and the row's
    share of missing cells. Returns a boolean mask of validation cells (all observed).
    """
    from sklearn.linear_model import LogisticRegression

    n, d = A.shape
    miss = np.isnan(A)
    val = np.zeros_like(miss)
    mu = np.nanmean(np.where(miss, np.nan, A), axis=0) if n else np.zeros(d)
    mu = np.where(np.isfinite(mu), mu, 0.0)
    sd = np.nanstd(np.where(miss, np.nan, A), axis=0)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    Z = np.where(miss, 0.0, (A - mu) / sd)
    for j in columns:
        obs = ~miss[:, j]
        n_obs, n_miss = int(obs.sum()), int((~obs).sum())
        if n_obs < min_observed:
            continue
        w = np.ones(n)
        if use_propensity and n_miss >= 5 and d > 1:
            others = np.delete(np.arange(d), j)
            row_miss = miss[:, others].mean(1, keepdims=True)
            X = np.hstack([np.delete(Z, j, axis=1), row_miss * 4.0])
            try:
                lr = LogisticRegression(C=0.5, max_iter=300).fit(X, ~obs)
                e = np.clip(lr.predict_proba(X)[:, 1], 1e-3, 1 - 1e-3)
                w = e / (1 - e)
            except ValueError:
                w = np.ones(n)
            # defensive importance sampling: half uniform, half by the (clipped) odds, so that a few rows with
            # extreme odds cannot make up the whole validation set of a column
            w = np.clip(w, 0, 10 * np.median(w[obs]))
            w = 0.5 + 0.5 * w / w[obs].mean()
        p = share * w / w[obs].mean()
        val[:, j] = obs & (rng.random(n) < np.clip(p, 0.0, 0.5))
        if val[:, j].sum() > 0.5 * n_obs:  # never hide more than half of a column
            keep = np.flatnonzero(val[:, j])
            drop = rng.choice(keep, len(keep) - int(0.5 * n_obs), replace=False)
            val[drop, j] = False
    return val


class ChainEngine:
    """See the module docstring. ``blend``: ``learn`` (per-column stack weights), ``select`` (the single best learner
    per column, HyperImpute-style) or ``equal`` (fixed equal weights, no validation mask)."""

    def __init__(self, learners: tuple[str, ...], *, blend: str = "learn", max_iter: int = 5, final_passes: int = 1,
                 validation_share: float = 0.2, n_estimators: int = 50, tol: float = 1e-3, random_state: int | None = None,
                 propensity: bool = True, spare_learner: str = "linear", weight_prior: float = 50.0, weight_rule: str = "1se",
                 warm_start: bool = True):
        self.learners = tuple(learners)
        self.blend = blend
        self.max_iter = max_iter
        self.final_passes = final_passes
        self.validation_share = validation_share
        self.n_estimators = n_estimators
        self.tol = tol
        self.random_state = random_state
        self.propensity = propensity
        self.spare_learner = spare_learner
        self.weight_prior = weight_prior
        self.weight_rule = weight_rule
        self.warm_start = warm_start

    # -- layout --------------------------------------------------------------------------------------------
    def _setup(self, A: np.ndarray, n_levels: np.ndarray) -> None:
        n, d = A.shape
        obs = ~np.isnan(A)
        self.n_levels_ = np.asarray(n_levels, dtype=int)
        self.is_cat_ = self.n_levels_ > 0
        self.mu_ = np.zeros(d)
        self.sd_ = np.ones(d)
        self.lo_ = np.zeros(d)
        self.hi_ = np.zeros(d)
        self.freq_: dict[int, np.ndarray] = {}
        self.constant_ = np.zeros(d, dtype=bool)
        for j in range(d):
            col = A[obs[:, j], j]
            if self.is_cat_[j]:
                f = np.bincount(col.astype(int), minlength=self.n_levels_[j]).astype(float)
                self.freq_[j] = f / f.sum() if f.sum() else np.full(self.n_levels_[j], 1.0 / max(self.n_levels_[j], 1))
                self.constant_[j] = (f > 0).sum() <= 1
            elif len(col):
                self.mu_[j], s = float(col.mean()), float(col.std())
                self.sd_[j] = s if s > 0 else 1.0
                self.lo_[j], self.hi_[j] = float(col.min()), float(col.max())
                self.constant_[j] = s == 0
        widths = [int(self.n_levels_[j]) if self.is_cat_[j] else 1 for j in range(d)]
        starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)
        self.slices_ = [slice(int(s), int(s + w)) for s, w in zip(starts, widths, strict=True)]
        self.width_ = int(sum(widths))
        allcols = np.arange(self.width_)
        self.fidx_ = [np.setdiff1d(allcols, np.arange(self.width_)[self.slices_[j]]) for j in range(d)]

    def _fill(self, A: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Feature matrix: standardised numbers, one-hot categories; unknown cells at the mean / class frequencies."""
        n, d = A.shape
        F = np.zeros((n, self.width_))
        for j in range(d):
            k = known[:, j]
            if self.is_cat_[j]:
                block = np.tile(self.freq_[j], (n, 1)) if self.n_levels_[j] else np.zeros((n, 0))
                rows = np.flatnonzero(k)
                codes = A[rows, j].astype(int)
                ok = (codes >= 0) & (codes < self.n_levels_[j])
                block[rows[ok]] = 0.0
                block[rows[ok], codes[ok]] = 1.0
                F[:, self.slices_[j]] = block
            else:
                F[:, self.slices_[j].start] = np.where(k, (np.nan_to_num(A[:, j]) - self.mu_[j]) / self.sd_[j], 0.0)
        return F

    def _fill_column(self, j: int, col: np.ndarray) -> np.ndarray:
        """Feature block of observed values of column j."""
        if self.is_cat_[j]:
            return np.eye(int(self.n_levels_[j]))[col.astype(int)]
        return ((col - self.mu_[j]) / self.sd_[j])[:, None]

    # -- one column ----------------------------------------------------------------------------------------
    def _static_fit(self, A: np.ndarray, known: np.ndarray) -> dict[str, tuple[Any, np.ndarray]]:
        """Fit the static learners on the known cells; their predictions for every cell (feature space)."""
        out: dict[str, tuple[Any, np.ndarray]] = {}
        names = [n for n in self.learners if n in STATIC_LEARNERS]
        if not names:
            return out
        G = self._fill(A, known)
        for j in range(A.shape[1]):
            G[~known[:, j], self.slices_[j]] = np.nan
        for name in names:
            from ._gaussian import GaussianEM

            model = GaussianEM().fit(G)
            out[name] = (model, model.predict(G))
        return out

    def _static_predict(self, A: np.ndarray, known: np.ndarray) -> dict[str, np.ndarray]:
        if not self.static_models_:
            return {}
        G = self._fill(A, known)
        for j in range(A.shape[1]):
            G[~known[:, j], self.slices_[j]] = np.nan
        return {name: m.predict(G) for name, m in self.static_models_.items()}

    def _static_block(self, j: int, P: np.ndarray, rows: np.ndarray) -> np.ndarray:
        block = P[rows][:, self.slices_[j]]
        if self.is_cat_[j]:
            block = np.clip(block, 0.0, None) + 1e-9
            return block / block.sum(1, keepdims=True)
        return block[:, 0]

    def _fit_predict(self, j: int, F: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, pred_rows: np.ndarray,
                     names: tuple[str, ...], static: dict[str, tuple[Any, np.ndarray]] | None = None) -> tuple[list[Any], list[np.ndarray]]:
        """Fit every learner for column j on ``fit_rows``; predictions on ``pred_rows`` (z-scores or class probs)."""
        Xf = F[fit_rows][:, self.fidx_[j]]
        Xp = F[pred_rows][:, self.fidx_[j]]
        models, preds = [], []
        for name in names:
            if name in STATIC_LEARNERS:
                models.append(("static", name))
                preds.append(self._static_block(j, (static or {})[name][1], pred_rows))
                continue
            m, p = self._one(j, name, Xf, y, Xp)
            models.append(m)
            preds.append(p)
        return models, preds

    def _one(self, j: int, name: str, Xf: np.ndarray, y: np.ndarray, Xp: np.ndarray) -> tuple[Any, np.ndarray]:
        cat = bool(self.is_cat_[j])
        K = int(self.n_levels_[j])
        if cat:
            codes = y.astype(int)
            f = np.bincount(codes, minlength=K).astype(float)
            prior = f / f.sum()
            if name == "mean" or Xf.shape[1] == 0 or (f > 0).sum() < 2:
                return ("prior", prior), np.tile(prior, (len(Xp), 1))
            est = make_learner(name, True, self.random_state, self.n_estimators)
            try:
                est.fit(Xf, codes)
            except ValueError:
                return ("prior", prior), np.tile(prior, (len(Xp), 1))
            return est, self._proba(est, Xp, K)
        z = (y - self.mu_[j]) / self.sd_[j]
        if name == "mean" or Xf.shape[1] == 0 or len(z) < 2:
            c = float(z.mean()) if len(z) else 0.0
            return ("const", c), np.full(len(Xp), c)
        est = make_learner(name, False, self.random_state, self.n_estimators)
        try:
            est.fit(Xf, z)
        except ValueError:
            c = float(z.mean())
            return ("const", c), np.full(len(Xp), c)
        return est, np.asarray(est.predict(Xp), dtype=float) if len(Xp) else np.zeros(0)

    @staticmethod
    def _proba(est: Any, X: np.ndarray, K: int) -> np.ndarray:
        out = np.zeros((len(X), K))
        if len(X):
            out[:, np.asarray(est.classes_, dtype=int)] = est.predict_proba(X)
        return out

    def _apply(self, j: int, model: Any, X: np.ndarray) -> np.ndarray:
        K = int(self.n_levels_[j])
        if isinstance(model, tuple):
            kind, v = model
            return np.tile(v, (len(X), 1)) if kind == "prior" else np.full(len(X), v)
        if self.is_cat_[j]:
            return self._proba(model, X, K)
        return np.asarray(model.predict(X), dtype=float) if len(X) else np.zeros(0)

    def _blend(self, j: int, preds: list[np.ndarray], w: np.ndarray) -> np.ndarray:
        out = sum(wi * p for wi, p in zip(w, preds, strict=True))
        if not self.is_cat_[j]:
            out = np.clip(out, (self.lo_[j] - self.mu_[j]) / self.sd_[j], (self.hi_[j] - self.mu_[j]) / self.sd_[j])
        return np.asarray(out, dtype=float)

    def _target(self, j: int, y: np.ndarray) -> np.ndarray:
        if self.is_cat_[j]:
            return np.eye(int(self.n_levels_[j]))[y.astype(int)]
        return (y - self.mu_[j]) / self.sd_[j]

    def _grid_losses(self, j: int, preds: list[np.ndarray], truth: np.ndarray) -> np.ndarray:
        """Per validation cell, the loss of every blend of the simplex grid: (cells, blends); squared error on the z
        scale, Brier score for categories."""
        grid = self._grid
        if self.is_cat_[j]:
            P = np.stack(preds, 0)  # (k, n, K)
            return np.stack([np.sum((np.tensordot(g, P, 1) - truth) ** 2, 1) for g in grid], 1)
        P = np.stack(preds, 1)  # (n, k)
        return ((P @ grid.T) - truth[:, None]) ** 2

    def _choose(self, j: int) -> np.ndarray:
        """The column's blend. Blends whose validation loss is within one standard error of the column's best
        (paired over its validation cells) are statistically tied; among them the one preferred by the pooled
        relative loss of all columns of the same kind wins (``weight_prior`` > 0), so noisy per-column choices are
        shrunk towards what works on the whole table without overriding clear local evidence."""
        cell_losses = self._losses[j]
        losses = cell_losses.mean(0)
        b = int(np.argmin(losses))
        if self.weight_prior > 0 and self.weight_rule != "local":
            same = [ls.mean(0) / max(float(ls.mean(0).min()), 1e-12) for jj, ls in self._losses.items() if bool(self.is_cat_[jj]) == bool(self.is_cat_[j])]
            if len(same) > 1:
                pooled = np.mean(same, 0)
                if self.weight_rule == "pooled":
                    nv = len(cell_losses)
                    b = int(np.argmin(nv * losses / max(float(losses.min()), 1e-12) + self.weight_prior * pooled))
                else:  # one-standard-error rule
                    diff = cell_losses - cell_losses[:, [b]]
                    se = diff.std(0) / np.sqrt(max(len(diff) - 1, 1))
                    tied = np.flatnonzero(diff.mean(0) <= se)
                    b = int(tied[np.argmin(pooled[tied])])
        self.val_loss_[j] = float(losses[b])
        return self._grid[b]

    def _warm(self, F: np.ndarray, static: dict[str, tuple[Any, np.ndarray]], unknown: np.ndarray) -> None:
        """Start the chain from the Gaussian model's conditional means instead of the column means."""
        if "gaussian" not in static:
            return
        P = static["gaussian"][1]
        for j in range(unknown.shape[1]):
            rows = unknown[:, j]
            if rows.any() and j in self.weights_:
                out = self._static_block(j, P, rows)
                if not self.is_cat_[j]:
                    out = np.clip(out, (self.lo_[j] - self.mu_[j]) / self.sd_[j], (self.hi_[j] - self.mu_[j]) / self.sd_[j])
                F[rows, self.slices_[j]] = out.reshape(int(rows.sum()), -1)

    # -- fit -----------------------------------------------------------------------------------------------
    def fit(self, A: np.ndarray, n_levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fit on ``A``; return it completed (category codes for categorical columns) and the feature matrix
        (class probabilities of the imputed categorical cells). Nothing derived from the rows is kept."""
        n, d = A.shape
        self._setup(A, n_levels)
        miss0 = np.isnan(A)
        obs0 = ~miss0
        self._grid = np.eye(len(self.learners)) if self.blend == "select" else _simplex(len(self.learners))
        self._losses: dict[int, np.ndarray] = {}
        chain = [j for j in np.argsort(miss0.sum(0), kind="stable") if miss0[:, j].any() and obs0[:, j].any() and not self.constant_[j]]
        self.order_ = [int(j) for j in chain]
        self.weights_: dict[int, np.ndarray] = {j: np.full(len(self.learners), 1.0 / len(self.learners)) for j in self.order_}
        self.val_loss_: dict[int, float] = {}
        self.learner_loss_: dict[int, np.ndarray] = {}
        self.val_cells_: dict[int, int] = {}
        self.history_: list[float] = []
        rng = np.random.default_rng([0x5E1EC7, 0 if self.random_state is None else int(self.random_state)])
        learn = self.blend in ("learn", "select") and self.max_iter > 0
        if learn and (len(self.learners) > 1 or self.blend == "select"):
            val = propensity_mask(A, self.validation_share, rng, self.order_, use_propensity=self.propensity)
        else:
            val = np.zeros_like(miss0)
        known = obs0 & ~val
        F = self._fill(A, known)
        static = self._static_fit(A, known) if val.any() else {}
        if self.warm_start:
            self._warm(F, static, ~known)
        self.n_iter_ = 0
        best = np.inf
        for _ in range(self.max_iter if val.any() else 0):
            losses = []
            for j in self.order_:
                fit_rows, pred_rows = known[:, j], ~known[:, j]
                _, preds = self._fit_predict(j, F, A[fit_rows, j], fit_rows, pred_rows, self.learners, static)
                vin = val[pred_rows, j]
                if vin.any():
                    truth = self._target(j, A[pred_rows, j][vin])
                    pv = [p[vin] for p in preds]
                    self._losses[j] = self._grid_losses(j, pv, truth)
                    self.learner_loss_[j] = np.array([float(np.mean(np.sum((p - truth) ** 2, 1))) if self.is_cat_[j] else float(np.mean((p - truth) ** 2))
                                                      for p in pv])
                    self.weights_[j] = self._choose(j)
                    self.val_cells_[j] = int(vin.sum())
                    losses.append(self.val_loss_[j])
                F[pred_rows, self.slices_[j]] = self._blend(j, preds, self.weights_[j]).reshape(int(pred_rows.sum()), -1)
            self.n_iter_ += 1
            cur = float(np.mean(losses)) if losses else 0.0
            self.history_.append(cur)
            if cur > best * (1 - self.tol):
                break
            best = min(best, cur)
        for j in self._losses:  # final choice with the pooled evidence of the last pass
            self.weights_[j] = self._choose(j)
        # final passes on every observed cell
        for j in range(d):
            v = val[:, j]
            if v.any():
                F[v, self.slices_[j]] = self._fill_column(j, A[v, j])
        self.models_: dict[int, list[Any]] = {}
        self.model_names_: dict[int, tuple[str, ...]] = {}
        static = self._static_fit(A, obs0)
        self.static_models_ = {name: m for name, (m, _) in static.items()}
        if not val.any() and self.warm_start:
            self._warm(F, static, miss0)
        # without a validation mask (fixed weights) all the passes are done here
        passes = max(self.final_passes, 1) if val.any() else max(self.final_passes, self.max_iter, 1)
        if not val.any():
            self.n_iter_ = 0
        for p in range(passes):
            last = p == passes - 1
            for j in self.order_:
                fit_rows, pred_rows = obs0[:, j], miss0[:, j]
                models, preds = self._fit_predict(j, F, A[fit_rows, j], fit_rows, pred_rows, self.learners, static)
                F[pred_rows, self.slices_[j]] = self._blend(j, preds, self.weights_[j]).reshape(int(pred_rows.sum()), -1)
                if last:
                    self.models_[j] = models
                    self.model_names_[j] = self.learners
        # columns complete in fit: a cheap model so that ``transform`` can impute them in new rows
        for j in range(d):
            if j in self.models_ or not obs0[:, j].any():
                continue
            if self.constant_[j]:
                self.models_[j] = [("prior", self.freq_[j]) if self.is_cat_[j] else ("const", 0.0)]
            else:
                models, _ = self._fit_predict(j, F, A[obs0[:, j], j], obs0[:, j], np.zeros(n, bool), (self.spare_learner,))
                self.models_[j] = models
            self.model_names_[j] = (self.spare_learner,)
            self.weights_[j] = np.ones(1)
        self.transform_order_ = self.order_ + [j for j in range(d) if j in self.models_ and j not in self.order_]
        # the spread of an imputed cell: the blend's validation RMSE (z units), else the column's own std (z = 1)
        self.noise_ = {j: float(np.sqrt(self.val_loss_[j])) if j in self.val_loss_ and not self.is_cat_[j] else 1.0 for j in range(d)}
        return self._decode(F, A, miss0), F

    # -- transform -----------------------------------------------------------------------------------------
    def _decode(self, F: np.ndarray, A: np.ndarray, miss: np.ndarray) -> np.ndarray:
        out = A.copy()
        for j in range(A.shape[1]):
            m = miss[:, j]
            if not m.any():
                continue
            block = F[m][:, self.slices_[j]]
            if self.is_cat_[j]:
                out[m, j] = block.argmax(1) if block.shape[1] else np.nan
            else:
                out[m, j] = block[:, 0] * self.sd_[j] + self.mu_[j]
        return out

    def _passes(self, A: np.ndarray, F: np.ndarray, miss: np.ndarray, passes: int, rng: np.random.Generator | None = None,
                static: dict[str, np.ndarray] | None = None) -> np.ndarray:
        if static is None:
            static = self._static_predict(A, ~miss)
        for _ in range(passes):
            for j in self.transform_order_:
                rows = miss[:, j]
                if not rows.any():
                    continue
                X = F[rows][:, self.fidx_[j]]
                preds = [self._static_block(j, static[m[1]], rows) if isinstance(m, tuple) and m[0] == "static" else self._apply(j, m, X)
                         for m in self.models_[j]]
                out = self._blend(j, preds, self.weights_[j])
                if rng is not None:
                    if self.is_cat_[j]:
                        cum = np.cumsum(out / out.sum(1, keepdims=True), 1)
                        pick = (rng.random((len(out), 1)) > cum).sum(1).clip(0, out.shape[1] - 1)
                        out = np.eye(out.shape[1])[pick]
                    else:
                        out = out + rng.normal(0.0, self.noise_[j], size=len(out))
                        out = np.clip(out, (self.lo_[j] - self.mu_[j]) / self.sd_[j], (self.hi_[j] - self.mu_[j]) / self.sd_[j])
                F[rows, self.slices_[j]] = out.reshape(int(rows.sum()), -1)
        return F

    def transform(self, A: np.ndarray, passes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Complete new rows with the fitted models; also returns the feature matrix (class probabilities)."""
        miss = np.isnan(A)
        F = self._fill(A, ~miss)
        F = self._passes(A, F, miss, passes if passes is not None else max(self.n_iter_, 2))
        return self._decode(F, A, miss), F

    def draws(self, A: np.ndarray, F: np.ndarray, m: int, rng: np.random.Generator, passes: int = 2) -> list[np.ndarray]:
        """``m`` multiple imputations: chained passes from the point imputation with each column's validation
        noise added (numbers) or categories sampled from the blend's probabilities."""
        miss = np.isnan(A)
        static = self._static_predict(A, ~miss)
        return [self._decode(self._passes(A, F.copy(), miss, passes, rng, static), A, miss) for _ in range(m)]
