"""Tabular imputation (scikit-learn compatible). ``from medsynth.tabular import Imputer``.

``DPMLPImputer`` (DP-SGD, :mod:`medsynth.tabular.dp`) is imported lazily: it needs torch and Opacus.
"""

from typing import Any

from .imputers import DEFAULT_LEARNERS, METHODS, Imputer
from .learners import LEARNERS, register_learner
from .rubin import rubin_pool

__all__ = ["Imputer", "METHODS", "DEFAULT_LEARNERS", "LEARNERS", "register_learner", "rubin_pool", "DPMLPImputer"]


def __getattr__(name: str) -> Any:
    if name == "DPMLPImputer":
        from .dp import DPMLPImputer

        return DPMLPImputer
    raise AttributeError(f"module 'medsynth.tabular' has no attribute {name!r}")
