"""Privacy audits (registered in ``medsynth.registry.AUDITS``), the policy gate, the report and signing."""

from . import copy, dcr, extraction, replay  # noqa: F401  (register audits; heavy imports happen inside run())
from .base import Audit, AuditPolicy, AuditResult, Finding

__all__ = ["Audit", "AuditPolicy", "AuditResult", "Finding", "run_audits"]


def run_audits(synthetic, private, holdout=None, names=None, policy=None, **context):  # type: ignore[no-untyped-def]
    """Run the named audits (default: every audit enabled in the policy) and return their results."""
    from ..registry import AUDITS
    from .policy import load_policy

    pol = policy or load_policy()
    out = []
    for name in names or [n for n in AUDITS.names() if n in pol.audits]:
        ap = pol.audit_policy(name)
        if not ap.enabled:
            continue
        out.append(AUDITS.get(name)(ap).run(synthetic, private, holdout, **context))
    return out
