"""Exception hierarchy of medsynth.

Every error raised on purpose by medsynth derives from :class:`MedsynthError`. Messages name the
problem *and* the fix, and never contain record text or PHI (ids, counts and hashes only).
"""

from __future__ import annotations

__all__ = [
    "MedsynthError",
    "RecipeError",
    "MissingDependencyError",
    "PrivacyBudgetExceededError",
    "AuditFailedError",
    "ModelNotAvailableError",
    "DataFormatError",
    "RunLockedError",
    "VerificationError",
]


class MedsynthError(Exception):
    """Base class of every error medsynth raises on purpose."""


class RecipeError(MedsynthError, ValueError):
    """A recipe (or a CLI override) is invalid.

    ``problems`` lists every problem found, each as ``(field_path, message)``.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            lines = "\n".join(f"  - {loc}: {msg}" for loc, msg in self.problems)
            message = f"{message}\n{lines}"
        super().__init__(message)


class MissingDependencyError(MedsynthError, ImportError):
    """An optional dependency is not installed; the message carries the exact pip line."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = ""):
        how = f'pip install "medsynth[{extra}]"' if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"The optional package '{package}' is not installed{what}. Install it with: {how}")
        self.package = package
        self.extra = extra


class PrivacyBudgetExceededError(MedsynthError):
    """A differentially private step would spend more (epsilon, delta) than its budget has left."""


class AuditFailedError(MedsynthError):
    """A privacy audit failed the policy gate and the recipe does not allow ``on_fail: quarantine``."""


class ModelNotAvailableError(MedsynthError):
    """A model is unknown, not installed, or its cached copy is corrupt."""


class DataFormatError(MedsynthError, ValueError):
    """Input data is malformed (the message names the file and line/field, never the content)."""


class RunLockedError(MedsynthError):
    """Another process is running in the same run directory."""


class VerificationError(MedsynthError):
    """A run directory failed verification (changed, missing or unsigned artifacts)."""
