"""Where medsynth keeps its local state: ``$MEDSYNTH_HOME`` (default: the user cache dir)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home", "models_dir", "NAME_PATTERN", "check_name", "confined", "same_file", "id_secret"]


def home() -> Path:
    import platformdirs

    p = Path(os.environ.get("MEDSYNTH_HOME") or platformdirs.user_cache_dir("medsynth")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def models_dir() -> Path:
    p = home() / "models"
    p.mkdir(parents=True, exist_ok=True)
    return p



#: what a step name, dataset name or output name may look like: an identifier, never a path
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_NAME_RX = None


def check_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a plain identifier (letters, digits, ``_ . -``; starts with a letter or digit; at
    most 128 characters), else raise ValueError naming the rule. Names become file and folder names inside the run
    directory, so a name is never a path: no ``/``, ``\\``, ``..`` or absolute path can pass."""
    import re

    global _NAME_RX
    if _NAME_RX is None:
        _NAME_RX = re.compile(NAME_PATTERN)
    if not isinstance(value, str) or not _NAME_RX.fullmatch(value):
        raise ValueError(f"{what} must be an identifier (letters, digits, '_', '.', '-'; starting with a letter or digit; "
                         "at most 128 characters), not a path")
    return value


def confined(base: str | os.PathLike[str], *parts: str) -> Path:
    """``base / parts`` resolved, refusing any result outside ``base`` (symlinks included). Raises ValueError."""
    root = Path(base).resolve()
    p = root.joinpath(*parts).resolve()
    if p != root and not p.is_relative_to(root):
        raise ValueError(f"path escapes {base}: refused (names inside a run directory are identifiers, not paths)")
    return p


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True if ``a`` and ``b`` are the same file (symlinks and hard links included); False if either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def id_secret() -> bytes:
    """32 random bytes of this ``MEDSYNTH_HOME`` (``keys/id_hash.key``, mode 0600, made on first use) under which record
    ids are hashed for messages and ``--hash-ids``: without it an id hash cannot be reversed by hashing every MRN."""
    p = home() / "keys" / "id_hash.key"
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".id_hash.key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
        try:
            os.link(tmp, p)  # atomic, and never replaces a secret another process made first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return p.read_bytes()


def step_folder_name(idx: int, name: str) -> str:
    """The folder of step ``name`` at position ``idx`` in a run dir's ``steps/``: ``NN_name``."""
    return f"{idx:02d}_{check_name(name, 'a step name')}"


def find_step_dir(run_dir: str | os.PathLike[str], name: str) -> Path | None:
    """The folder of the step called exactly ``name`` in a run dir (``steps/NN_name``), or None when that step has not
    written one. Matches the whole name: a step ``scrub`` never finds ``03_pre_scrub``."""
    import re

    check_name(name, "a step name")
    base = Path(run_dir) / "steps"
    if not base.is_dir():
        return None
    hits = sorted(d for d in base.iterdir() if d.is_dir() and re.fullmatch(r"\d{2,}_" + re.escape(name), d.name))
    return hits[0] if hits else None
