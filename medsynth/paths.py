"""Where medsynth keeps its local state: ``$MEDSYNTH_HOME`` (default: the user cache dir)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home", "models_dir"]


def home() -> Path:
    import platformdirs

    p = Path(os.environ.get("MEDSYNTH_HOME") or platformdirs.user_cache_dir("medsynth")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def models_dir() -> Path:
    p = home() / "models"
    p.mkdir(parents=True, exist_ok=True)
    return p

