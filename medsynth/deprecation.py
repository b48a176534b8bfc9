"""Renamed configuration keys, accepted for one release with a message naming the new key.

Recipes and the privacy policy say one spelling everywhere (``n`` for a count, ``holdout``, ``eval:`` an object);
an old key still reads for one release. Use :func:`renamed_keys` in a ``mode="before"`` model validator.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["renamed_keys"]


def renamed_keys(data: Any, where: str, renames: dict[str, str]) -> Any:
    """``data`` with each old key of ``renames`` moved to its new key, warning (FutureWarning) that the old one is
    deprecated. Both keys at once is an error naming both (which value was meant cannot be guessed)."""
    if not isinstance(data, dict) or not any(old in data for old in renames):
        return data
    data = dict(data)
    for old, new in renames.items():
        if old not in data:
            continue
        if new in data:
            raise ValueError(f"{where}: give `{new}:` only (`{old}:` is its old name, deprecated)")
        warnings.warn(f"{where}: `{old}:` is deprecated and will be removed in the next release; write `{new}:` instead",
                      FutureWarning, stacklevel=2)
        data[new] = data.pop(old)
    return data
