"""The audit contract: ``Audit.run(synthetic, private, holdout) -> AuditResult``.

Each audit measures something, flags records (findings: record id + reason + value, never text), and gives a
release verdict against its policy section. Figures always say how they were obtained.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..data.records import Record

__all__ = ["Audit", "AuditResult", "Finding", "AuditPolicy"]


class AuditPolicy(BaseModel):
    """Base of every audit's policy section (thresholds). Subclasses document what each threshold protects."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


@dataclass
class Finding:
    record_id: str
    reason: str
    value: Any = None


@dataclass
class AuditResult:
    audit: str
    verdict: str  # "pass" | "fail"
    figures: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    release_reasons: list[str] = field(default_factory=list)

    def figure(self, name: str, value: Any, how: str) -> None:
        self.figures.append({"name": f"{self.audit}.{name}", "value": value, "how": how})

    @property
    def flagged_ids(self) -> set[str]:
        return {f.record_id for f in self.findings}


class Audit(ABC):
    name: ClassVar[str]
    Policy: ClassVar[type[AuditPolicy]] = AuditPolicy
    needs_holdout: ClassVar[bool] = False
    # True: runs only when an audit step lists it (it needs inputs a text release does not have: canaries, a
    # trained model, images); a policy section alone only sets its thresholds.
    explicit_only: ClassVar[bool] = False

    def __init__(self, policy: AuditPolicy | None = None):
        self.policy = policy or self.Policy()

    @abstractmethod
    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        """Audit the synthetic records against the private (and holdout) records."""
