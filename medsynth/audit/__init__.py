"""Privacy audits (registered in ``medsynth.registry.AUDITS``), the policy gate, the report and signing."""

import importlib as _importlib

from . import content, copy, dcr, replay  # noqa: F401  (register audits; heavy imports happen inside run())

# audits written in their own modules by other areas: registered when present, never breaking this import
for _mod in ("extraction", "canary", "mia", "image_copy"):
    try:
        _importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _e:
        if _e.name != f"{__name__}.{_mod}":
            raise
from .base import Audit, AuditPolicy, AuditResult, Finding

__all__ = ["Audit", "AuditPolicy", "AuditResult", "Finding", "run_audits"]


def run_audits(synthetic, private, holdout=None, names=None, policy=None, **context):  # type: ignore[no-untyped-def]
    """Run the named audits (default: ``policy.default_audits()``) and return their results."""
    from ..registry import AUDITS
    from .policy import load_policy

    pol = policy or load_policy()
    out = []
    names = list(names or pol.default_audits())
    for name in names:
        ap = pol.audit_policy(name, names)
        if not ap.enabled:
            continue
        out.append(AUDITS.get(name)(ap).run(synthetic, private, holdout, **context).settle(pol.min_records, len(synthetic)))
    return out
