"""scikit-learn compatible imputers for clinical tables.

``Imputer(method="auto")`` (default): HyperImpute-style model selection. 10% of the observed cells of the training
table are hidden, every candidate method imputes them, and the best (range-normalised RMSE + categorical error) is
refit on the whole table. Candidates: ``mice`` (IterativeImputer + BayesianRidge, clipped to the observed range),
``missforest`` (IterativeImputer + ExtraTrees) and ``chained`` (chained equations where each column's learner —
Bayesian ridge or histogram gradient boosting — is chosen by cross-validation on its observed cells, predictions
clipped, categorical columns imputed by classifiers; categories stay one coded column, so no column is ever
predicted from its own one-hot siblings). Other methods by name: ``mean``, ``knn``, ``hgb``.

Works on numeric arrays (returns an array) and on pandas DataFrames with numeric, categorical, string and boolean
columns (returns a DataFrame with the same columns, dtypes and index; observed cells unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from ..exceptions import DataFormatError
from ..registry import IMPUTERS

__all__ = ["Imputer", "METHODS"]

METHODS = ["auto", "chained", "hgb", "mice", "missforest", "knn", "mean"]


def _learners(kind: str, random_state: int | None) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import BayesianRidge, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "num":
        return {"bayesian_ridge": make_pipeline(StandardScaler(), BayesianRidge()),
                "hgb": HistGradientBoostingRegressor(max_iter=150, learning_rate=0.08, min_samples_leaf=10, random_state=random_state)}
    return {"logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
            "hgb": HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, min_samples_leaf=10, random_state=random_state)}


class _Chained:
    """The numeric core: X float (n, d) with NaN, ``is_cat`` marks coded categorical columns."""

    def __init__(self, method: str, max_iter: int, random_state: int | None, cv_rows: int = 1500):
        self.method, self.max_iter, self.rs, self.cv_rows = method, max_iter, random_state, cv_rows

    def fit_transform(self, X: np.ndarray, is_cat: np.ndarray) -> np.ndarray:
        from sklearn.model_selection import cross_val_score

        n, d = X.shape
        mask = np.isnan(X)
        self.lo_ = np.nanmin(np.where(mask, np.nan, X), axis=0) if n else np.zeros(d)
        self.hi_ = np.nanmax(np.where(mask, np.nan, X), axis=0) if n else np.zeros(d)
        self.init_ = np.zeros(d)
        for j in range(d):
            col = X[~mask[:, j], j]
            if is_cat[j]:
                vals, cnt = np.unique(col, return_counts=True)
                self.init_[j] = vals[cnt.argmax()] if len(vals) else 0.0
            else:
                self.init_[j] = col.mean() if len(col) else 0.0
        Xc = np.where(mask, self.init_, X)
        self.order_ = [j for j in np.argsort(mask.sum(0), kind="stable") if mask[:, j].any() and (~mask[:, j]).sum() >= 2]
        self.models_: dict[int, Any] = {}
        self.choice_: dict[int, str] = {}
        self.resid_std_: dict[int, float] = {}
        rng = np.random.default_rng(self.rs)
        for j in self.order_:
            obs = ~mask[:, j]
            cands = _learners("cat" if is_cat[j] else "num", self.rs)
            if self.method == "hgb" or (is_cat[j] and len(np.unique(X[obs, j])) < 2):
                name = "hgb" if len(np.unique(X[obs, j])) >= 2 or not is_cat[j] else "constant"
            else:
                idx = np.flatnonzero(obs)
                if len(idx) > self.cv_rows:
                    idx = rng.choice(idx, self.cv_rows, replace=False)
                Xf = np.delete(Xc[idx], j, axis=1)
                y = X[idx, j]
                scoring = "accuracy" if is_cat[j] else "neg_root_mean_squared_error"
                folds = 3 if len(idx) >= 30 else 2
                scores = {}
                for nm, est in cands.items():
                    try:
                        scores[nm] = cross_val_score(clone(est), Xf, y, cv=folds, scoring=scoring).mean()
                    except ValueError:
                        scores[nm] = -np.inf
                name = max(scores, key=lambda k: scores[k])
                if not is_cat[j]:
                    self.resid_std_[j] = float(-scores[name]) if np.isfinite(scores[name]) else float(np.nanstd(X[obs, j]))
            self.choice_[j] = name
        for _ in range(self.max_iter):
            for j in self.order_:
                obs = ~mask[:, j]
                if self.choice_[j] == "constant":
                    self.models_[j] = None
                    continue
                est = clone(_learners("cat" if is_cat[j] else "num", self.rs)[self.choice_[j]])
                est.fit(np.delete(Xc[obs], j, axis=1), X[obs, j])
                self.models_[j] = est
                miss = mask[:, j]
                if miss.any():
                    Xc[miss, j] = self._predict(j, est, np.delete(Xc[miss], j, axis=1), is_cat)
        for j in range(d):
            self.resid_std_.setdefault(j, 0.0 if is_cat[j] else float(np.nanstd(X[~mask[:, j], j])) if (~mask[:, j]).any() else 0.0)
        return Xc

    def _predict(self, j: int, est: Any, F: np.ndarray, is_cat: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if est is None:
            return np.full(len(F), self.init_[j])
        if is_cat[j]:
            if rng is not None:
                P = est.predict_proba(F)
                return np.array([est.classes_[rng.choice(len(p), p=p / p.sum())] for p in P], dtype=float)
            return est.predict(F).astype(float)
        p = est.predict(F)
        if rng is not None:
            p = p + rng.normal(0.0, self.resid_std_.get(j, 0.0), size=len(p))
        return np.clip(p, self.lo_[j], self.hi_[j])

    def transform(self, X: np.ndarray, is_cat: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        mask = np.isnan(X)
        Xc = np.where(mask, self.init_, X)
        for _ in range(self.max_iter):
            for j in self.order_:
                miss = mask[:, j]
                if miss.any():
                    Xc[miss, j] = self._predict(j, self.models_.get(j), np.delete(Xc[miss], j, axis=1), is_cat, rng)
        return Xc


class Imputer(TransformerMixin, BaseEstimator):
    """Impute missing cells of a numeric array or a mixed-type DataFrame (see the module docstring).

    Parameters: ``method`` (one of METHODS), ``max_iter`` chained passes, ``n_imputations`` (m > 1: multiple
    imputation by posterior-style draws; ``transform`` returns their mean), ``random_state``.
    ``transform(X, return_std=True)`` also returns the per-cell spread (std over the m draws when m > 1, else the
    chosen learner's cross-validated residual std for imputed numeric cells; 0 for observed cells).
    ``imputed_mask(X)`` marks the cells that are imputed (provenance). Unseen categories at transform time are
    treated as missing (a warning gives the column and count). An all-missing column is filled with 0 (numeric) /
    its first category, a column without missing cells is never changed, infinite values raise DataFormatError.
    """

    def __init__(self, method: str = "auto", max_iter: int = 4, n_imputations: int = 1, random_state: int | None = 0,
                 candidates: tuple[str, ...] = ("mice", "missforest", "chained"), validation_share: float = 0.1):
        self.method = method
        self.max_iter = max_iter
        self.n_imputations = n_imputations
        self.random_state = random_state
        self.candidates = candidates
        self.validation_share = validation_share

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- DataFrame <-> float matrix ------------------------------------------------------------------------
    def _encode(self, X: Any, fitting: bool) -> tuple[np.ndarray, Any]:
        import pandas as pd

        if not isinstance(X, pd.DataFrame):
            return X, None
        if fitting:
            self.columns_ = list(X.columns)
            self.dtypes_ = X.dtypes.to_dict()
            self.categories_: dict[Any, list[Any]] = {}
            for c in X.columns:
                s = X[c]
                if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
                    vals = s.dropna().unique().tolist()
                    types = {type(v) for v in vals}
                    if len(types) > 1 and not types <= {bool, np.bool_}:
                        raise DataFormatError(f"column '{c}' mixes value types ({', '.join(sorted(t.__name__ for t in types))}); convert it to one type (e.g. astype(str)) first.")
                    self.categories_[c] = sorted(vals, key=lambda v: (str(type(v)), v))
        elif list(X.columns) != self.columns_:
            raise DataFormatError("the DataFrame's columns differ from the ones seen in fit; pass the same columns in the same order.")
        out = np.empty((len(X), len(self.columns_)), dtype=float)
        for k, c in enumerate(self.columns_):
            s = X[c]
            if c in self.categories_:
                cats = self.categories_[c]
                lookup = {v: i for i, v in enumerate(cats)}
                vals = s.tolist()
                unseen = {v for v in vals if v is not None and not (isinstance(v, float) and np.isnan(v)) and v is not pd.NA and v not in lookup}
                if unseen:
                    # documented behaviour: unseen categories at transform time are treated as missing and re-imputed
                    import warnings

                    warnings.warn(f"column '{c}': {len(unseen)} categor(y/ies) not seen in fit, treated as missing and imputed", UserWarning, stacklevel=3)
                out[:, k] = [lookup.get(v, np.nan) if v is not None and v is not pd.NA and not (isinstance(v, float) and np.isnan(v)) else np.nan for v in vals]
            else:
                out[:, k] = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
        return out, X

    def _decode(self, A: np.ndarray, X: Any, encoded: np.ndarray) -> Any:
        import pandas as pd

        df = X.copy()
        for k, c in enumerate(self.columns_):
            miss = np.isnan(encoded[:, k])
            if not miss.any():
                continue
            if c in self.categories_:
                cats = self.categories_[c]
                vals = [cats[int(round(v))] if 0 <= int(round(v)) < len(cats) else None for v in A[miss, k]]
                col = df[c].astype(object)
                col[miss] = vals
                df[c] = col.astype(self.dtypes_[c]) if str(self.dtypes_[c]) != "object" else col
            else:
                dt = self.dtypes_[c]
                vals = A[miss, k]
                if pd.api.types.is_integer_dtype(dt):
                    vals = np.round(vals)
                col = df[c].astype(float) if not pd.api.types.is_float_dtype(df[c]) else df[c].copy()
                col[miss] = vals
                try:
                    df[c] = col.astype(dt)
                except (TypeError, ValueError):
                    df[c] = col
        return df

    # -- sklearn API -----------------------------------------------------------------------------------
    def imputed_mask(self, X: Any) -> np.ndarray:
        """Boolean array of the cells ``transform(X)`` imputes (missing cells and unseen categories): provenance."""
        check_is_fitted(self, "core_")
        A, _ = self._encode(X, fitting=False)
        return np.isnan(np.asarray(A, dtype=float))

    def fit(self, X: Any, y: Any = None) -> Imputer:
        self._fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self.fit(X).transform(X)

    def _check_matrix(self, A: np.ndarray, fitting: bool) -> np.ndarray:
        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}'; use one of {', '.join(METHODS)}")
        try:
            raw = np.asarray(A, dtype=float)
        except (TypeError, ValueError):
            raw = None
        if raw is not None and raw.size and np.isinf(raw).any():
            raise DataFormatError("the table contains infinite values; replace them with NaN (to impute) or finite numbers.")
        return validate_data(self, A, reset=fitting, ensure_all_finite="allow-nan", dtype=np.float64)

    def _fit_transform(self, X: Any) -> np.ndarray:
        A, frame = self._encode(X, fitting=True)
        A = self._check_matrix(A, True)
        self.is_cat_ = np.array([c in getattr(self, "categories_", {}) for c in self.columns_]) if frame is not None else np.zeros(A.shape[1], bool)
        allmiss = np.isnan(A).all(0)
        self.all_missing_ = np.flatnonzero(allmiss).tolist()
        self.n_iter_ = self.max_iter
        method = self.method
        if method == "auto":
            method = self._select_method(A)
        self.chosen_method_ = method
        if method in ("chained", "hgb"):
            self.core_ = _Chained("auto" if method == "chained" else "hgb", self.max_iter, self.random_state)
            return self.core_.fit_transform(A, self.is_cat_)
        self._fit_method(A, method)
        return A

    def _fit_method(self, A: np.ndarray, method: str) -> None:
        allmiss = np.isnan(A).all(0)
        if method in ("chained", "hgb"):
            self.core_ = _Chained("auto" if method == "chained" else "hgb", self.max_iter, self.random_state)
            self.core_.fit_transform(A, self.is_cat_)
            return
        from sklearn.ensemble import ExtraTreesRegressor
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
        from sklearn.linear_model import BayesianRidge

        if method == "mean":
            est = SimpleImputer(strategy="mean", keep_empty_features=True)
        elif method == "knn":
            est = KNNImputer(n_neighbors=5, keep_empty_features=True)
        elif method == "mice":
            with np.errstate(all="ignore"):
                lo = np.nanmin(np.where(np.isnan(A), np.inf, A), 0) if A.size else np.array([])
                hi = np.nanmax(np.where(np.isnan(A), -np.inf, A), 0) if A.size else np.array([])
            ok = np.isfinite(lo) & np.isfinite(hi) & (lo < hi)
            est = IterativeImputer(BayesianRidge(), max_iter=10, random_state=self.random_state, skip_complete=True, keep_empty_features=True,
                                   min_value=np.where(ok, lo, -np.inf), max_value=np.where(ok, hi, np.inf))
        else:
            est = IterativeImputer(ExtraTreesRegressor(n_estimators=50, min_samples_leaf=2, n_jobs=1, random_state=self.random_state), max_iter=5,
                                   random_state=self.random_state, skip_complete=True, keep_empty_features=True)
        self.core_ = est.fit(A)
        self.n_iter_ = max(int(getattr(self.core_, "n_iter_", 1)), 1)

    def _select_method(self, A: np.ndarray) -> str:
        """HyperImpute-style model selection: hide a validation share of the OBSERVED cells, impute them with each
        candidate method, keep the one with the lowest error (range-normalised RMSE on numeric cells + error rate on
        categorical cells), then refit it on everything. Never looks at cells the caller will score."""
        # an independent stream (not default_rng(random_state) itself), so the validation mask never coincides with a
        # mask the caller drew with the same seed
        rng = np.random.default_rng([0x5E1EC7, 0 if self.random_state is None else int(self.random_state)])
        obs = ~np.isnan(A)
        val = obs & (rng.random(A.shape) < self.validation_share)
        val[:, obs.sum(0) < 10] = False
        if val.sum() < 20:
            return "chained"
        Av = np.where(val, np.nan, A)
        rngs = np.nanmax(A, 0) - np.nanmin(A, 0)
        rngs[~np.isfinite(rngs) | (rngs == 0)] = 1.0
        scores: dict[str, float] = {}
        per_col: dict[str, dict[int, float]] = {}
        for cand in self.candidates:
            sub = Imputer(method=cand, max_iter=self.max_iter, random_state=self.random_state)
            sub.is_cat_ = self.is_cat_
            with np.errstate(all="ignore"):
                sub.n_features_in_ = A.shape[1]
                sub._fit_core(Av)
                out = sub._transform_core(Av)
            num = val & ~self.is_cat_[None, :]
            cat = val & self.is_cat_[None, :]
            err = np.sqrt(np.mean(((out - A) / rngs)[num] ** 2)) if num.any() else 0.0
            if cat.any():
                err += np.mean(np.round(out[cat]) != A[cat])
            scores[cand] = float(err)
            col_err = {}
            for j in range(A.shape[1]):
                v = val[:, j]
                if v.any() and not self.is_cat_[j]:
                    col_err[j] = float(np.sqrt(np.mean((out[v, j] - A[v, j]) ** 2)))
            per_col[cand] = col_err
        self.selection_scores_ = scores
        best = min(scores, key=lambda k: scores[k])
        self.column_error_ = per_col[best]
        return best

    def _fit_core(self, A: np.ndarray) -> None:
        """Fit ``self.method`` (not auto) on an encoded matrix (used by model selection)."""
        self.all_missing_ = np.flatnonzero(np.isnan(A).all(0)).tolist()
        self.n_iter_ = self.max_iter
        self.chosen_method_ = self.method
        self._fit_method(A, self.method)

    def _transform_core(self, A: np.ndarray) -> np.ndarray:
        mask = np.isnan(A)
        out = self.core_.transform(A, self.is_cat_) if isinstance(self.core_, _Chained) else self.core_.transform(A)
        return np.where(mask, out, A)

    def transform(self, X: Any, return_std: bool = False) -> Any:
        check_is_fitted(self, "core_")
        from threadpoolctl import threadpool_limits

        A, frame = self._encode(X, fitting=False)
        A = self._check_matrix(A, False)
        mask = np.isnan(A)
        with threadpool_limits(1):
            if isinstance(self.core_, _Chained):
                out = self.core_.transform(A, self.is_cat_)
                draws = None
                if self.n_imputations > 1:
                    rng = np.random.default_rng(self.random_state)
                    draws = np.stack([self.core_.transform(A, self.is_cat_, rng) for _ in range(self.n_imputations)])
                    num = ~self.is_cat_
                    out[:, num] = np.where(mask[:, num], draws[:, :, num].mean(0), out[:, num])
                std = np.zeros_like(out)
                if draws is not None:
                    std = np.where(mask, draws.std(0), 0.0)
                else:
                    for j in range(out.shape[1]):
                        std[mask[:, j], j] = self.core_.resid_std_.get(j, 0.0)
            else:
                out = self.core_.transform(A)
                if out.shape[1] != A.shape[1]:  # safety: keep_empty_features keeps shape
                    raise DataFormatError("internal: imputer changed the number of columns")
                std = np.zeros_like(out)
                # spread: the selected method's RMSE on the validation cells of each column (0 if not measured)
                for j, e in getattr(self, "column_error_", {}).items():
                    std[mask[:, j], j] = e
            if frame is not None and self.is_cat_.any():
                out[:, self.is_cat_] = np.round(out[:, self.is_cat_])
        out = np.where(mask, out, A)  # observed cells are never changed
        result = self._decode(out, frame, A) if frame is not None else out
        if return_std:
            if frame is not None:
                import pandas as pd

                return result, pd.DataFrame(std, index=frame.index, columns=self.columns_)
            return result, std
        return result


for _m in METHODS:
    IMPUTERS.register(_m, Imputer)
