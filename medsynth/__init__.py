"""medsynth — on-prem synthetic clinical data with privacy audits.

Heavy modules (torch, transformers, presidio, diffusers…) are imported lazily by the functions that need them,
so ``import medsynth`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Record",
    "Span",
    "Relation",
    "Provenance",
    "read_records",
    "write_records",
    "load_recipe",
    "run_recipe",
    "exceptions",
]

_LAZY = {
    "Record": ("medsynth.data.records", "Record"),
    "Span": ("medsynth.data.records", "Span"),
    "Relation": ("medsynth.data.records", "Relation"),
    "Provenance": ("medsynth.data.records", "Provenance"),
    "read_records": ("medsynth.data.io", "read_records"),
    "write_records": ("medsynth.data.io", "write_records"),
    "load_recipe": ("medsynth.recipe.schema", "load_recipe"),
    "run_recipe": ("medsynth.recipe.engine", "run_recipe"),
    "exceptions": ("medsynth.exceptions", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        m = importlib.import_module(mod)
        return m if attr is None else getattr(m, attr)
    raise AttributeError(f"module 'medsynth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
