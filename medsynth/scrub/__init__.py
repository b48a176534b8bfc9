"""PHI scrubbing (offline Presidio + clinical recognizers). Heavy imports happen on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["Scrubber", "PhiSpan", "ScrubResult", "load_phi_strings"]


def __getattr__(name: str) -> Any:
    if name in ("Scrubber", "PhiSpan", "ScrubResult"):
        from . import engine

        return getattr(engine, name)
    if name == "load_phi_strings":
        from .fields import load_phi_strings

        return load_phi_strings
    raise AttributeError(name)
