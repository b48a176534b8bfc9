"""Tabular imputation (scikit-learn compatible). ``from medsynth.tabular import Imputer``."""

from .imputers import METHODS, Imputer
from .rubin import rubin_pool

__all__ = ["Imputer", "METHODS", "rubin_pool"]
