"""scikit-learn compatible imputers for clinical tables.

``Imputer()`` (``method="auto"``, the default) is a **stack of chained-equation learners** — Bayesian ridge /
logistic regression (``linear``), extremely randomised trees (``extra_trees``, MissForest-like), a multivariate
normal fitted by EM (``gaussian``: each cell's conditional mean given the cells observed in its row, no chaining;
it also warm-starts the chain) and the column mean (``mean``, the shrinkage target) — whose per-column blend weights are learned on a validation mask drawn from the
training table itself so that it mimics the table's missingness (MAR-aware: rows likely to lose a value are the
ones whose observed cells are hidden). See :mod:`medsynth.tabular._chain` for the algorithm.

Other methods, by name (``Imputer(method=...)``, all registered in ``medsynth.registry.IMPUTERS``):

- ``select``: the same engine, but each column keeps only its single best learner (HyperImpute-style per-column
  model selection);
- ``chained``: chained equations with the ``learners`` given (default ``("linear",)``) and equal weights, no
  validation mask (any registered learner: ``linear``, ``extra_trees``, ``random_forest``, ``hgb``, ``knn``);
- ``hgb``: one histogram gradient boosting model per column on the raw table (missing features handled natively,
  no chaining);
- baselines: ``mice`` (``IterativeImputer(BayesianRidge)``, clipped to the observed range), ``missforest``
  (``IterativeImputer(ExtraTreesRegressor)``), ``knn`` (``KNNImputer`` on standardised columns), ``mean``
  (mean / mode). In the baselines a categorical column is one column of category codes (never one-hot dummies
  that would be predicted from their siblings); predictions are rounded to a valid code.

Numeric arrays in → array out. pandas DataFrames with numeric, categorical, string and boolean columns in →
DataFrame with the same columns, dtypes and index out; observed cells are never changed. Numeric columns get
conditional-mean imputations (a 0/1 column stored as float may receive 0.3); declare such a column ``bool``,
``category`` or nullable ``Int64`` to get valid levels (``Int64`` values are rounded).

Bad input (documented behaviour): infinite values → :class:`DataFormatError`; an object column mixing numbers and
strings → ``DataFormatError`` (an object column of numbers only is treated as numeric); datetime columns and
categorical columns with more than ``max_categories`` levels (identifiers, free text) → ``DataFormatError``
naming the column; all-missing columns → ``DataFormatError`` unless ``empty_columns="keep"`` (left missing, with a
warning) or ``"zero"`` (filled with 0 / left missing for categories, like scikit-learn's ``keep_empty_features``);
constant columns → filled with their constant; unseen categories at transform time → treated as missing and
imputed (a warning names the column and count); a table without missing cells → returned unchanged (models are
still fitted, so ``transform`` can impute new rows).

Why over 500 lines: one estimator family (the stack, its learners and the validation-based choice) whose parts
share the chained-equation loop; splitting it would scatter one sklearn ``fit``/``transform`` contract.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..exceptions import DataFormatError
from ..registry import IMPUTERS
from .learners import LEARNERS

__all__ = ["Imputer", "METHODS", "DEFAULT_LEARNERS", "EmptyColumnsError"]

METHODS = ["auto", "select", "chained", "hgb", "mice", "missforest", "knn", "mean"]
_ENGINE = ("auto", "select", "chained", "mean")
#: the stack of ``method="auto"`` / ``"select"``
DEFAULT_LEARNERS: tuple[str, ...] = ("linear", "extra_trees", "gaussian", "mean")


class EmptyColumnsError(DataFormatError):
    """Columns without any observed value (``columns``: their names); the message names the Python option."""

    def __init__(self, message: str, columns: list[str]):
        super().__init__(message)
        self.columns = columns


def _is_missing(v: Any) -> bool:
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and bool(np.isnan(v))


class Imputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute missing cells of a numeric array or a mixed-type DataFrame (see the module docstring).

    Parameters
    ----------
    method : one of ``METHODS`` (default ``"auto"``).
    learners : learners of the chain (``auto``/``select``: the stack, default ``DEFAULT_LEARNERS``; ``chained``:
        default ``("linear",)``).
    max_iter : chained passes while the stack weights are learned (stops early when the validation error stops
        improving); ``final_passes`` : passes on all observed cells afterwards.
    validation_share : share of the observed cells of each incomplete column hidden to learn the weights.
    n_estimators : trees per tree learner.
    n_imputations : m > 1 enables multiple imputation: ``multiple_imputations(X)`` returns m completed tables and
        ``transform(X, return_std=True)`` the per-cell std over them.
    empty_columns : ``"error"`` | ``"keep"`` | ``"zero"`` — what to do with a column without any observed value.
    max_categories : more levels than this in a categorical column is an error (an identifier or free text).
    weight_prior : pseudo-cells of evidence pooled over all columns mixed into each column's choice of blend
        weights (0: every column on its own validation cells only).
    random_state : seed of the validation mask, the trees and the draws.

    ``transform(X, return_std=True)`` also returns the spread of each imputed cell: the std over the m draws when
    ``n_imputations > 1``, else the validation RMSE of the column's blend (numbers; the column's std where no
    validation cell was available); for categorical cells, 1 − the probability of the imputed category. Observed
    cells have spread 0. ``imputed_mask(X)`` marks the cells ``transform`` imputes (provenance); ``summary()``
    gives the per-column weights and validation errors. ``fit_transform`` returns the imputations computed while
    fitting (like ``IterativeImputer``); ``transform`` applies the fitted models, so on the training table the two
    agree closely but not bit for bit. BLAS is pinned to one thread while fitting and transforming.
    """

    def __init__(self, method: str = "auto", learners: tuple[str, ...] | None = None, max_iter: int = 5, final_passes: int = 1,
                 validation_share: float = 0.2, n_estimators: int = 50, n_imputations: int = 1, empty_columns: str = "error",
                 max_categories: int = 100, weight_prior: float = 50.0, random_state: int | None = 0):
        self.method = method
        self.learners = learners
        self.max_iter = max_iter
        self.final_passes = final_passes
        self.validation_share = validation_share
        self.n_estimators = n_estimators
        self.n_imputations = n_imputations
        self.empty_columns = empty_columns
        self.max_categories = max_categories
        self.weight_prior = weight_prior
        self.random_state = random_state

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- parameters ----------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}'; use one of {', '.join(METHODS)}")
        for ln in self._learners():
            if ln not in LEARNERS:
                raise ValueError(f"unknown learner '{ln}'; use one of {', '.join(sorted(LEARNERS))}")
        if self.empty_columns not in ("error", "keep", "zero"):
            raise ValueError(f"empty_columns must be 'error', 'keep' or 'zero', not {self.empty_columns!r}")
        if int(self.n_imputations) < 1:
            raise ValueError(f"n_imputations must be >= 1, not {self.n_imputations}")
        if self.n_imputations > 1 and self.method not in _ENGINE:
            raise ValueError(f"multiple imputation (n_imputations > 1) needs method auto, select or chained, not '{self.method}'")
        if not 0.0 < float(self.validation_share) < 0.5:
            raise ValueError(f"validation_share must be in (0, 0.5), not {self.validation_share}")
        if int(self.max_iter) < 0 or int(self.final_passes) < 1 or int(self.n_estimators) < 1:
            raise ValueError("max_iter must be >= 0, final_passes and n_estimators >= 1")

    def _learners(self) -> tuple[str, ...]:
        if self.method == "mean":
            return ("mean",)
        if self.learners is not None:
            return tuple(self.learners)
        return ("linear",) if self.method == "chained" else DEFAULT_LEARNERS

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(2**31 - 1))
        return int(self.random_state)

    # -- DataFrame <-> float matrix ------------------------------------------------------------------------
    def _schema(self, X: Any) -> None:
        """Column kinds and category levels of a DataFrame (fit time)."""
        import pandas as pd

        self.columns_ = list(X.columns)
        self.dtypes_ = X.dtypes.to_dict()
        self.categories_: dict[Any, list[Any]] = {}
        self._coerce: set[Any] = set()
        for c in X.columns:
            s = X[c]
            if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
                raise DataFormatError(f"column '{c}' holds dates/times; convert it to a number (e.g. days since an origin) or drop it before imputing.")
            if isinstance(s.dtype, pd.CategoricalDtype):
                cats = list(s.cat.categories)
            elif pd.api.types.is_bool_dtype(s):
                cats = [False, True]
            elif pd.api.types.is_numeric_dtype(s):
                continue
            else:
                vals = [v for v in s.tolist() if not _is_missing(v)]
                types = {type(v) for v in vals}
                if vals and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in vals):
                    self._coerce.add(c)  # an object column of numbers only: numeric
                    continue
                if vals and all(isinstance(v, (bool, np.bool_)) for v in vals):
                    cats = [False, True]
                elif len(types) > 1 and not all(isinstance(v, str) for v in vals):
                    names = ", ".join(sorted(t.__name__ for t in types))
                    raise DataFormatError(f"column '{c}' mixes value types ({names}); convert it to one type first "
                                          "(e.g. df[col].astype(str), or pd.to_numeric(df[col], errors='coerce')).")
                else:
                    cats = sorted(set(vals), key=str)
            if len(cats) > self.max_categories:
                raise DataFormatError(f"column '{c}' has {len(cats)} distinct values (more than max_categories={self.max_categories}): it looks like an "
                                      "identifier or free text. Drop it (or exclude it) before imputing, or raise max_categories.")
            self.categories_[c] = cats

    def _encode(self, X: Any, fitting: bool) -> tuple[Any, Any]:
        import pandas as pd

        if not isinstance(X, pd.DataFrame):
            return X, None
        if fitting:
            self._schema(X)
        elif list(X.columns) != self.columns_:
            raise DataFormatError("the DataFrame's columns differ from the ones seen in fit; pass the same columns in the same order.")
        out = np.empty((len(X), len(self.columns_)), dtype=float)
        for k, c in enumerate(self.columns_):
            s = X[c]
            if c in self.categories_:
                lookup: dict[Any, int] = {}
                for i, v in enumerate(self.categories_[c]):
                    lookup.setdefault(v, i)
                codes, unseen = [], 0
                for v in s.tolist():
                    if _is_missing(v):
                        codes.append(np.nan)
                        continue
                    key = bool(v) if isinstance(v, np.bool_) else v
                    i = lookup.get(key)
                    if i is None:
                        unseen += 1
                        codes.append(np.nan)
                    else:
                        codes.append(float(i))
                if unseen:
                    warnings.warn(f"column '{c}': {unseen} value(s) of categories not seen in fit, treated as missing and imputed", UserWarning, stacklevel=3)
                out[:, k] = codes
            else:
                try:
                    out[:, k] = pd.to_numeric(s, errors="raise").astype(float).to_numpy()
                except (TypeError, ValueError):
                    raise DataFormatError(f"column '{c}' was numeric in fit but holds non-numeric values now; pass the same kind of data as in fit.") from None
        return out, X

    def _decode(self, A: np.ndarray, X: Any, miss: np.ndarray) -> Any:
        import pandas as pd

        df = X.copy()
        for k, c in enumerate(self.columns_):
            m = miss[:, k] & ~np.isnan(A[:, k])
            if not m.any():
                continue
            dt = self.dtypes_[c]
            if c in self.categories_:
                cats = self.categories_[c]
                vals = [cats[int(v)] for v in A[m, k]]
                col = df[c].astype(object)
                col[m] = vals
                if isinstance(dt, pd.CategoricalDtype) or (str(dt) not in ("object",) and not pd.api.types.is_bool_dtype(dt)):
                    try:
                        col = col.astype(dt)
                    except (TypeError, ValueError):
                        pass
                df[c] = col
            else:
                vals = A[m, k]
                if pd.api.types.is_integer_dtype(dt):
                    vals = np.round(vals)
                col = df[c].astype(float) if c in self._coerce or not pd.api.types.is_float_dtype(df[c]) else df[c].copy()
                col[m] = vals
                if c not in self._coerce:
                    try:
                        col = col.astype(dt)
                    except (TypeError, ValueError):
                        pass
                df[c] = col
        return df

    def _check_matrix(self, A: Any, fitting: bool) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = np.asarray(A, dtype=float)
        except (TypeError, ValueError):
            raw = None
        if raw is not None and raw.size and np.isinf(raw).any():
            n_inf = int(np.isinf(raw).sum())
            raise DataFormatError(f"the table contains {n_inf} infinite value(s); replace them with NaN (to impute) or finite numbers.")
        return validate_data(self, A, reset=fitting, ensure_all_finite="allow-nan", dtype=np.float64)

    def _empty(self, A: np.ndarray) -> np.ndarray:
        empty = np.isnan(A).all(0) if A.shape[0] else np.zeros(A.shape[1], bool)
        if empty.any():
            names = [str(self.columns_[j]) if self._frame else str(j) for j in np.flatnonzero(empty)]
            what = f"column(s) {', '.join(names[:10])}" + (" …" if len(names) > 10 else "")
            if self.empty_columns == "error":
                raise EmptyColumnsError(f"{what} have no observed value, so nothing can be learned about them. Drop them, or set "
                                        "Imputer(empty_columns='keep') to leave them missing or 'zero' to fill them with 0.", names)
            warnings.warn(f"{what} have no observed value: " + ("left missing" if self.empty_columns == "keep" else "filled with 0"), UserWarning, stacklevel=3)
        return empty

    # -- fit -----------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> Imputer:
        self._fit(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, return_std: bool = False) -> Any:  # type: ignore[override]
        """Fit and return the imputations computed while fitting (and their spread with ``return_std``)."""
        from threadpoolctl import threadpool_limits

        out, A, frame, F = self._fit(X)
        with threadpool_limits(1), np.errstate(all="ignore"):
            std = self._spread(A, out, F) if return_std else None
        return self._finish(out, A, frame, std, return_std)

    def _fit(self, X: Any) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray | None]:
        from threadpoolctl import threadpool_limits

        self._check_params()
        A, frame = self._encode(X, fitting=True)
        A = self._check_matrix(A, True)
        self._frame = frame is not None
        if self._frame and all(isinstance(c, str) for c in self.columns_):
            self.feature_names_in_ = np.asarray(self.columns_, dtype=object)
        if not self._frame:
            self.columns_ = list(range(A.shape[1]))
            self.categories_ = {}
        d = A.shape[1]
        self.n_levels_ = np.array([len(self.categories_[c]) if c in self.categories_ else 0 for c in self.columns_], dtype=int)
        self.empty_ = self._empty(A)
        keep = ~self.empty_
        self._keep = keep
        self.chosen_method_ = self.method
        seed = self._seed()
        self._seed_ = seed
        Ak = A[:, keep]
        out = A.copy()
        F = None
        with threadpool_limits(1), np.errstate(all="ignore"):
            if self.method in _ENGINE:
                from ._chain import ChainEngine

                learners = self._learners()
                blend = {"auto": "learn", "select": "select"}.get(self.method, "equal")
                self.core_ = ChainEngine(learners, blend=blend, max_iter=int(self.max_iter), final_passes=int(self.final_passes),
                                         validation_share=float(self.validation_share), n_estimators=int(self.n_estimators),
                                         random_state=seed, weight_prior=float(self.weight_prior))
                out[:, keep], F = self.core_.fit(Ak, self.n_levels_[keep])
                self.n_iter_ = int(self.core_.n_iter_) + int(self.final_passes)
            else:
                self.core_ = self._baseline(Ak, seed)
                out[:, keep] = self._baseline_transform(Ak)
                self.n_iter_ = max(int(getattr(self.core_, "n_iter_", 1)), 1)
        if self.empty_columns == "zero":
            out[:, self.empty_ & (self.n_levels_ == 0)] = 0.0
        self.n_features_in_ = d
        return out, A, frame, F

    def _baseline(self, A: np.ndarray, seed: int) -> Any:
        from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer, KNNImputer
        from sklearn.linear_model import BayesianRidge

        miss = np.isnan(A)
        self._mu = np.array([A[~miss[:, j], j].mean() if (~miss[:, j]).any() else 0.0 for j in range(A.shape[1])])
        sd = np.array([A[~miss[:, j], j].std() if (~miss[:, j]).any() else 1.0 for j in range(A.shape[1])])
        self._sd = np.where(sd > 0, sd, 1.0)
        with np.errstate(all="ignore"):
            lo = np.nanmin(np.where(miss, np.inf, A), 0) if A.size else np.zeros(A.shape[1])
            hi = np.nanmax(np.where(miss, -np.inf, A), 0) if A.size else np.zeros(A.shape[1])
        self._lo, self._hi = lo, hi
        if self.method == "knn":
            return KNNImputer(n_neighbors=5, keep_empty_features=True).fit((A - self._mu) / self._sd)
        if self.method == "mice":
            ok = np.isfinite(lo) & np.isfinite(hi) & (lo < hi)
            return IterativeImputer(BayesianRidge(), max_iter=10, random_state=seed, skip_complete=True, keep_empty_features=True,
                                    min_value=np.where(ok, lo, -np.inf), max_value=np.where(ok, hi, np.inf)).fit(A)
        if self.method == "missforest":
            return IterativeImputer(ExtraTreesRegressor(n_estimators=50, min_samples_leaf=2, n_jobs=1, random_state=seed), max_iter=5,
                                    random_state=seed, skip_complete=True, keep_empty_features=True).fit(A)
        # hgb: one model per column on the raw table, NaN features handled natively
        models: dict[int, Any] = {}
        lv = self.n_levels_[self._keep]
        for j in range(A.shape[1]):
            obs = ~miss[:, j]
            if obs.sum() < 2 or A.shape[1] < 2:
                continue
            Xj = np.delete(A, j, axis=1)
            catf = np.delete(lv > 0, j)
            kw = {"max_iter": 200, "learning_rate": 0.05, "min_samples_leaf": 10, "random_state": seed,
                  "categorical_features": catf if catf.any() else None}
            if lv[j] > 0 and len(np.unique(A[obs, j])) > 1:
                models[j] = HistGradientBoostingClassifier(**kw).fit(Xj[obs], A[obs, j].astype(int))
            elif lv[j] == 0:
                models[j] = HistGradientBoostingRegressor(**kw).fit(Xj[obs], A[obs, j])
        return models

    def _baseline_transform(self, A: np.ndarray) -> np.ndarray:
        miss = np.isnan(A)
        if self.method == "knn":
            out = self.core_.transform((A - self._mu) / self._sd) * self._sd + self._mu
        elif self.method in ("mice", "missforest"):
            out = self.core_.transform(A)
        else:
            out = np.where(miss, self._mu, A)
            for j, m in self.core_.items():
                rows = miss[:, j]
                if rows.any():
                    out[rows, j] = m.predict(np.delete(A[rows], j, axis=1))
            lv = self.n_levels_[self._keep]
            for j in np.flatnonzero(lv > 0):  # categorical columns without a model: their mode
                if j not in self.core_ and miss[:, j].any() and (~miss[:, j]).any():
                    vals, cnt = np.unique(A[~miss[:, j], j], return_counts=True)
                    out[miss[:, j], j] = vals[cnt.argmax()]
        lv = self.n_levels_[self._keep]
        for j in np.flatnonzero(lv > 0):  # a valid category code
            out[:, j] = np.clip(np.round(out[:, j]), 0, lv[j] - 1)
        return np.where(miss, out, A)

    # -- transform -----------------------------------------------------------------------------------------
    def transform(self, X: Any, return_std: bool = False) -> Any:
        from threadpoolctl import threadpool_limits

        check_is_fitted(self, "core_")
        A, frame = self._encode(X, fitting=False)
        A = self._check_matrix(A, False)
        out = A.copy()
        keep = self._keep
        F = None
        with threadpool_limits(1), np.errstate(all="ignore"):
            if self.method in _ENGINE:
                out[:, keep], F = self.core_.transform(A[:, keep])
            else:
                out[:, keep] = self._baseline_transform(A[:, keep])
            std = self._spread(A, out, F) if return_std else None
        if self.empty_columns == "zero":
            out[:, self.empty_ & (self.n_levels_ == 0)] = np.where(np.isnan(A[:, self.empty_ & (self.n_levels_ == 0)]), 0.0,
                                                                   A[:, self.empty_ & (self.n_levels_ == 0)])
        return self._finish(out, A, frame, std, return_std)

    def _finish(self, out: np.ndarray, A: np.ndarray, frame: Any, std: np.ndarray | None, return_std: bool) -> Any:
        miss = np.isnan(A)
        out = np.where(miss, out, A)  # observed cells are never changed
        result = self._decode(out, frame, miss) if frame is not None else out
        if not return_std:
            return result
        if frame is not None:
            import pandas as pd

            return result, pd.DataFrame(std, index=frame.index, columns=self.columns_)
        return result, std

    def _spread(self, A: np.ndarray, out: np.ndarray, F: np.ndarray | None) -> np.ndarray:
        miss = np.isnan(A)
        std = np.zeros(A.shape)
        if self.method not in _ENGINE or F is None:
            std[miss] = np.nan  # not estimated by the baselines
            return std
        keep = np.flatnonzero(self._keep)
        eng = self.core_
        Ak = A[:, keep]
        if self.n_imputations > 1:
            draws = np.stack(eng.draws(Ak, F, int(self.n_imputations), np.random.default_rng([self._seed_, 1])))
        for jj, j in enumerate(keep):
            m = miss[:, j]
            if not m.any():
                continue
            if eng.is_cat_[jj]:
                P = F[m][:, eng.slices_[jj]]
                std[m, j] = 1.0 - P.max(1) / np.maximum(P.sum(1), 1e-12)
            elif self.n_imputations > 1:
                std[m, j] = draws[:, m, jj].std(0)
            else:
                std[m, j] = eng.noise_[jj] * eng.sd_[jj]
        std[:, self.empty_] = np.where(miss[:, self.empty_], np.nan, 0.0)
        return std

    # -- provenance and uncertainty --------------------------------------------------------------------------
    def imputed_mask(self, X: Any) -> np.ndarray:
        """Boolean array of the cells ``transform(X)`` imputes (missing cells and unseen categories): provenance."""
        check_is_fitted(self, "core_")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            A, _ = self._encode(X, fitting=False)
        miss = np.isnan(np.asarray(A, dtype=float))
        if self.empty_columns == "keep":
            miss[:, self.empty_] = False
        return miss

    def multiple_imputations(self, X: Any) -> list[Any]:
        """``n_imputations`` completed copies of X (draws from the fitted chain with each column's validation
        noise / class probabilities), for Rubin's rules (:func:`medsynth.tabular.rubin_pool`)."""
        from threadpoolctl import threadpool_limits

        check_is_fitted(self, "core_")
        if self.method not in _ENGINE or self.n_imputations < 2:
            raise ValueError("multiple_imputations needs n_imputations >= 2 and method auto, select or chained.")
        A, frame = self._encode(X, fitting=False)
        A = self._check_matrix(A, False)
        keep = np.flatnonzero(self._keep)
        with threadpool_limits(1), np.errstate(all="ignore"):
            _, F = self.core_.transform(A[:, keep])
            draws = self.core_.draws(A[:, keep], F, int(self.n_imputations), np.random.default_rng([self._seed_, 2]))
        outs = []
        for dr in draws:
            full = A.copy()
            full[:, keep] = dr
            outs.append(self._finish(full, A, frame, None, False))
        return outs

    def summary(self) -> list[dict[str, Any]]:
        """Per column: kind, cells missing in fit, blend weights, validation cells and errors (original units)."""
        check_is_fitted(self, "core_")
        rows = []
        keep = np.flatnonzero(self._keep)
        eng = self.core_ if self.method in _ENGINE else None
        for j, c in enumerate(self.columns_):
            row: dict[str, Any] = {"column": str(c), "kind": "categorical" if self.n_levels_[j] else "numeric", "empty": bool(self.empty_[j])}
            if eng is not None and self._keep[j]:
                jj = int(np.flatnonzero(keep == j)[0])
                names = eng.model_names_.get(jj, ())
                w = eng.weights_.get(jj)
                if w is not None and len(names) == len(w):
                    row["weights"] = {n: round(float(x), 3) for n, x in zip(names, w, strict=True)}
                if jj in eng.val_loss_:
                    row["validation_cells"] = eng.val_cells_[jj]
                    if eng.is_cat_[jj]:
                        row["validation_brier"] = round(eng.val_loss_[jj], 4)
                    else:
                        rng = (eng.hi_[jj] - eng.lo_[jj]) or 1.0
                        row["validation_rmse"] = float(np.sqrt(eng.val_loss_[jj]) * eng.sd_[jj])
                        row["validation_nrmse"] = round(float(np.sqrt(eng.val_loss_[jj]) * eng.sd_[jj] / rng), 4)
                        row["learner_nrmse"] = {n: round(float(np.sqrt(v) * eng.sd_[jj] / rng), 4) for n, v in zip(eng.learners, eng.learner_loss_[jj], strict=True)}
            rows.append(row)
        return rows


for _m in METHODS:
    IMPUTERS.register(_m, Imputer)
