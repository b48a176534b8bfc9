"""Per-column learners of the chained-equation imputers, registered by name.

A learner is a pair of factories ``(regressor(random_state, n_estimators), classifier(random_state, n_estimators))``
returning unfitted scikit-learn estimators. Regressors are fitted on standardised targets, classifiers on category
codes; both see the other columns as standardised numbers plus one-hot (soft, while imputed) categories, so a
categorical column is never predicted from its own dummies. ``mean`` is the column mean / class frequencies: in a
stack it is the shrinkage target that keeps noisy columns from being over-fitted. ``gaussian`` is not a per-column
estimator: a multivariate normal fitted by EM on the observed cells gives every missing cell its conditional mean
given the cells observed in the same row (no chaining).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["LEARNERS", "register_learner", "make_learner"]

Factory = Callable[[int | None, int], Any]
LEARNERS: dict[str, tuple[Factory | None, Factory | None]] = {}


def register_learner(name: str, regressor: Factory | None, classifier: Factory | None) -> None:
    """Register a learner: ``factory(random_state, n_estimators) -> unfitted estimator`` for numeric and
    categorical targets (``None`` for ``mean``, which is computed directly)."""
    if name in LEARNERS:
        raise ValueError(f"learner '{name}' is registered twice")
    LEARNERS[name] = (regressor, classifier)


def make_learner(name: str, categorical: bool, random_state: int | None, n_estimators: int) -> Any:
    if name not in LEARNERS:
        raise ValueError(f"unknown learner '{name}'; use one of {', '.join(sorted(LEARNERS))}")
    f = LEARNERS[name][1 if categorical else 0]
    return None if f is None else f(random_state, n_estimators)


def _bayesian_ridge(rs: int | None, n: int) -> Any:
    from sklearn.linear_model import BayesianRidge

    return BayesianRidge()


def _logistic(rs: int | None, n: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=300)


def _et_reg(rs: int | None, n: int) -> Any:
    from sklearn.ensemble import ExtraTreesRegressor

    return ExtraTreesRegressor(n_estimators=n, min_samples_leaf=2, max_features=1.0, n_jobs=1, random_state=rs)


def _et_clf(rs: int | None, n: int) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=n, min_samples_leaf=2, max_features=1.0, n_jobs=1, random_state=rs)


def _rf_reg(rs: int | None, n: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=n, min_samples_leaf=2, max_features=0.5, n_jobs=1, random_state=rs)


def _rf_clf(rs: int | None, n: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=n, min_samples_leaf=2, n_jobs=1, random_state=rs)


def _hgb_reg(rs: int | None, n: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=2 * n, learning_rate=0.05, min_samples_leaf=10, random_state=rs)


def _hgb_clf(rs: int | None, n: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=2 * n, learning_rate=0.05, min_samples_leaf=10, random_state=rs)


def _knn_reg(rs: int | None, n: int) -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    return KNeighborsRegressor(n_neighbors=10, weights="distance")


def _knn_clf(rs: int | None, n: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=10, weights="distance")


register_learner("mean", None, None)
register_learner("gaussian", None, None)  # static: multivariate normal by EM (medsynth.tabular._gaussian)
register_learner("linear", _bayesian_ridge, _logistic)
register_learner("extra_trees", _et_reg, _et_clf)
register_learner("random_forest", _rf_reg, _rf_clf)
register_learner("hgb", _hgb_reg, _hgb_clf)
register_learner("knn", _knn_reg, _knn_clf)
