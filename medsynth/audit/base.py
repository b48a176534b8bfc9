"""The audit contract: ``Audit.run(synthetic, private, holdout) -> AuditResult``.

Each audit measures something, flags records (findings: record id + reason + value, never text), and gives a
release verdict against its policy section. Figures always say how they were obtained.

A verdict means what it says (:data:`VERDICTS`): ``pass`` (the check ran, had the power to find what it looks for,
and found nothing over the policy's limits), ``fail`` (it found something over them), ``skipped`` (it did not run:
``reason`` says why) or ``not_powered`` (it ran but the data cannot support the claim: nothing to look for, a
threshold saturated at the end of its scale so the per-record check is off, too few records). ``caveats`` are facts
a reader must know that do not change the class (e.g. a false-flag rate the holdout is too small to certify).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..data.records import Record

__all__ = ["Audit", "AuditResult", "Finding", "AuditPolicy", "CalibratedPolicy", "conformal_threshold", "DEFAULT_FALSE_FLAG_RATE", "VERDICTS", "release_verdict"]

#: the verdict classes, worst first
VERDICTS = ("fail", "not_powered", "skipped", "pass")

# used when an audit runs without a policy file (its share of the default clean-flag budget of 1% over 4 audits)
DEFAULT_FALSE_FLAG_RATE = 0.0025


def release_verdict(summary: dict[str, dict[str, Any]], required: list[str]) -> tuple[str, list[str]]:
    """The release verdict from the audits' verdicts: ``fail`` if any audit failed; ``not_powered`` if a required
    audit did not run, was skipped or was not powered; else ``pass``. Returns (verdict, the exceptions in words)."""
    exceptions = [f"{n}: {a['verdict']} ({a.get('reason') or '; '.join(a.get('reasons', []))})" for n, a in summary.items() if a["verdict"] == "fail"]
    if exceptions:
        return "fail", exceptions
    for n in required:
        a = summary.get(n)
        if a is None:
            exceptions.append(f"{n}: required by the policy but not run (name it in the audit step's `audits:` or remove it from required_audits)")
        elif a["verdict"] != "pass":
            exceptions.append(f"{n}: {a['verdict']} ({a.get('reason', '')})")
    return ("not_powered" if exceptions else "pass"), exceptions


def conformal_threshold(scores: Any, rate: float, tail: str = "upper") -> tuple[float, str, float]:
    """Split-conformal threshold on holdout scores: a record from the same population as the holdout (a real new
    patient's record) lands beyond it with probability at most ``rate`` (exchangeability; ties only lower that rate).

    ``upper``: flag strictly above the returned value, the ceil((n+1)(1-rate))-th smallest score;
    ``lower``: flag strictly below it, the floor((n+1)·rate)-th smallest. When (n+1)·rate < 1 the holdout is too
    small to certify ``rate``: the extreme holdout score is used and the guaranteed rate is 1/(n+1), which the
    returned text and rate say. Returns (threshold, how, guaranteed_rate)."""
    import math

    import numpy as np

    x = np.sort(np.asarray(scores, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("conformal_threshold needs at least one holdout score")
    if tail == "upper":
        k = math.ceil((n + 1) * (1 - rate))
        if k > n:
            return float(x[-1]), (f"maximum of {n} holdout scores (a holdout of {n} is too small to certify a false-flag rate of {rate:.2%}; "
                                  f"guaranteed ≤ 1/(n+1) = {1 / (n + 1):.2%})"), 1 / (n + 1)
        return float(x[k - 1]), f"split-conformal: {k}-th smallest of {n} holdout scores = ceil((n+1)(1−{rate:.4g})); false-flag rate ≤ {rate:.2%}", rate
    k = math.floor((n + 1) * rate)
    if k < 1:
        return float(x[0]), (f"minimum of {n} holdout scores (a holdout of {n} is too small to certify a false-flag rate of {rate:.2%}; "
                             f"guaranteed ≤ 1/(n+1) = {1 / (n + 1):.2%})"), 1 / (n + 1)
    return float(x[k - 1]), f"split-conformal: {k}-th smallest of {n} holdout scores = floor((n+1)·{rate:.4g}); false-flag rate ≤ {rate:.2%}", rate


class AuditPolicy(BaseModel):
    """Base of every audit's policy section (thresholds). Subclasses document what each threshold protects."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class CalibratedPolicy(AuditPolicy):
    """Policy of an audit whose per-record threshold is calibrated on a holdout of real records of patients outside
    the private set. Its false-flag rate is its share of the policy file's ``clean_flag_budget`` unless set here."""

    false_flag_rate: float | None = Field(None, gt=0, lt=0.5, description="share of real new patients' records this audit may flag (split-conformal threshold on the holdout); default: its budget_weight's share of the policy's clean_flag_budget among the holdout-calibrated audits that run")
    budget_weight: float = Field(1.0, gt=0, description="this audit's weight in the split of clean_flag_budget (shares are proportional to the weights of the calibrated audits that run)")

    def legacy_rate(self) -> float | None:
        """A rate given by an older quantile field of this section (1 − quantile), if any."""
        return None

    def rate(self) -> float:
        return self.false_flag_rate or self.legacy_rate() or DEFAULT_FALSE_FLAG_RATE


@dataclass
class Finding:
    record_id: str
    reason: str
    value: Any = None


@dataclass
class AuditResult:
    audit: str
    verdict: str  # one of VERDICTS; settle() derives it from what the audit recorded
    figures: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    release_reasons: list[str] = field(default_factory=list)
    unpowered: list[str] = field(default_factory=list)  # why the data cannot support this audit's claim
    skipped: str | None = None  # why the audit did not run
    caveats: list[str] = field(default_factory=list)
    reason: str = ""

    def skip(self, why: str) -> AuditResult:
        self.skipped = why
        self.figure("skipped", True, why)
        return self.settle()

    def not_powered(self, why: str) -> None:
        self.unpowered.append(why)
        self.settle()

    def settle(self, min_records: int | None = None, n_synthetic: int | None = None) -> AuditResult:
        """Fix ``verdict`` and ``reason``: fail > skipped > not_powered > pass. ``min_records``: fewer synthetic records
        than this cannot support a release claim (the policy's ``min_records``)."""
        if min_records and n_synthetic is not None and n_synthetic < min_records and not self.skipped:
            self.not_powered(f"{n_synthetic} synthetic records audited; the policy needs at least {min_records} to support a release claim "
                             "(min_records: with fewer, a copy rate of 5% goes unseen more than 5% of the time)")
        if self.verdict == "fail" or self.release_reasons:
            self.verdict, self.reason = "fail", "; ".join(self.release_reasons) or "failed"
        elif self.skipped:
            self.verdict, self.reason = "skipped", self.skipped
        elif self.unpowered:
            self.verdict, self.reason = "not_powered", "; ".join(dict.fromkeys(self.unpowered))
        else:
            self.verdict, self.reason = "pass", "ran with the power to detect what it looks for; nothing over the policy's limits"
        return self

    def figure(self, name: str, value: Any, how: str) -> None:
        self.figures.append({"name": f"{self.audit}.{name}", "value": value, "how": how})

    def certified_rate_figure(self, guaranteed: float, rate: float) -> None:
        """The false-flag rate a holdout-calibrated audit can guarantee (see ``conformal_threshold``)."""
        if guaranteed > rate * (1 + 1e-9):
            self.caveats.append(f"the holdout is too small to certify a false-flag rate of {rate:.2%}: the threshold is the holdout's extreme "
                                f"value (certified ≤ {guaranteed:.2%}), so this check is more permissive than the policy asks")
        self.figure("false_flag_rate_certified", round(guaranteed, 5),
                    "share of real new patients' records this audit can flag at most (split-conformal on the holdout; 1/(n+1) per threshold "
                    f"when the holdout is too small for the policy's share of clean_flag_budget = {rate:.3%})")

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
    # True: the per-record threshold is calibrated on the holdout (its policy is a CalibratedPolicy): it takes a share
    # of the policy's clean_flag_budget, so the whole gate flags at most that share of real new patients' records.
    calibrated: ClassVar[bool] = False
    # True: probes a model (given with ``model:`` on the audit step); required for a release verdict only when one is given
    needs_model: ClassVar[bool] = False

    def __init__(self, policy: AuditPolicy | None = None):
        self.policy = policy or self.Policy()

    @abstractmethod
    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        """Audit the synthetic records against the private (and holdout) records."""
