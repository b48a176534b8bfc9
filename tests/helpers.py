"""Helpers shared by test modules (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["REAL_HOME", "isolated_home"]

#: the MEDSYNTH_HOME the test run started with: where install.sh prepared the models and trained the PHI tagger
REAL_HOME = Path(os.environ.get("MEDSYNTH_HOME") or __import__("platformdirs").user_cache_dir("medsynth")).expanduser()


def isolated_home(path: Path) -> Path:
    """A fresh MEDSYNTH_HOME (own keys, caches, budget ledger) that sees the installed models and PHI tagger of the
    real home through a symlink (they are read, never written, by tests)."""
    path.mkdir(parents=True, exist_ok=True)
    if (REAL_HOME / "models").is_dir() and not (path / "models").exists():
        (path / "models").symlink_to(REAL_HOME / "models", target_is_directory=True)
    rt = REAL_HOME / "cache" / "runtime.json"  # this machine's measured dtype/threads (`models prepare` measures them): a copy
    if rt.is_file() and not (path / "cache" / "runtime.json").exists():
        (path / "cache").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rt, path / "cache" / "runtime.json")
    return path
