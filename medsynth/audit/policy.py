"""The privacy policy file (``privacy/policy.yaml``): one section per audit with its thresholds."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..exceptions import RecipeError
from ..registry import AUDITS

__all__ = ["Policy", "ScrubPolicy", "load_policy", "DEFAULT_POLICY_PATH"]

DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[2] / "privacy" / "policy.yaml"


class ScrubPolicy(BaseModel):
    """How PHI is found before anything reaches a model (the ``scrub`` step and ``medsynth scrub``)."""

    model_config = ConfigDict(extra="forbid")
    tagger: Literal["required", "optional", "off"] = Field(
        "required", description="the learned PHI tagger ensembled with the rules: required (missing or corrupt = error), optional "
                                "(rules only when it is not installed, and the report says so), off (rules only)")
    tagger_threshold: float | None = Field(None, gt=0.0, lt=1.0, description="the tagger's operating point: a token is PHI when "
                                                                             "1 - P(not PHI) reaches it; default: the artifact's, chosen on development notes")
    tagger_veto: float | None = Field(None, ge=0.0, lt=1.0, description="a name or place found only by spaCy's NER is dropped when the tagger "
                                                                        "gives each of its tokens a PHI probability below this; 0 = no veto; "
                                                                        "default 0.01, chosen on development notes")
    vocabulary_guard: bool = Field(True, description="drop a name or place made only of clinical vocabulary words (ICD-10-CM descriptions, "
                                                     "MedlinePlus drug names) none of which is a known given or family name; our own "
                                                     "pattern rules are never guarded; chosen on the development generator C")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    description: str = ""
    scrub: ScrubPolicy = Field(default_factory=ScrubPolicy)
    clean_flag_budget: float = Field(0.01, gt=0, lt=0.5, description="share of real new patients' records the whole gate may quarantine; split among the holdout-calibrated audits that run (Bonferroni, by their budget_weight), each with a split-conformal threshold")
    audits: dict[str, Any] = Field(default_factory=dict)
    min_records: int = Field(60, ge=1, description="fewer synthetic records than this cannot support a release claim: every audit is "
                                                   "not_powered (with 60, a 5% rate of copied records is seen at least once with 95% probability)")
    required_audits: list[str] | None = Field(None, description="audits that must run and be powered for a release verdict of pass; "
                                                               "default: the audits run when none are named (default_audits)")

    def required(self, model_given: bool = False) -> list[str]:
        """The audits a release verdict of pass needs: ``required_audits``, else the default audits (those probing a
        model only when a model is given to the audit step)."""
        if self.required_audits is not None:
            return list(self.required_audits)
        return [n for n in self.default_audits() if model_given or not AUDITS.get(n).needs_model]

    def audit_policy(self, name: str, active: list[str] | None = None) -> Any:
        """The validated policy section of one audit. A holdout-calibrated audit without its own
        ``false_flag_rate`` (or legacy quantile) gets its ``budget_weight`` share of what ``clean_flag_budget`` leaves
        after the own rates of the enabled calibrated audits among ``active`` (default: the audits run when none are
        named)."""
        cls = AUDITS.get(name)
        ap = cls.Policy.model_validate(self.audits.get(name) or {})
        if not (cls.calibrated and ap.false_flag_rate is None and ap.legacy_rate() is None):
            return ap
        names = list(active) if active is not None else self.default_audits()
        sections = [AUDITS.get(n).Policy.model_validate(self.audits.get(n) or {}) for n in dict.fromkeys(names + [name])
                    if AUDITS.get(n).calibrated]
        sections = [sp for sp in sections if sp.enabled]
        own = [sp.false_flag_rate or sp.legacy_rate() for sp in sections]
        fixed = sum(r for r in own if r is not None)  # audits with their own rate spend it first
        total = sum(sp.budget_weight for sp, r in zip(sections, own, strict=True) if r is None)
        left = self.clean_flag_budget - fixed
        if left <= 0:
            raise RecipeError(f"privacy policy: the audits' own false_flag_rate values ({fixed:.2%}) use up clean_flag_budget "
                              f"({self.clean_flag_budget:.2%}); raise the budget or lower those rates.")
        return ap.model_copy(update={"false_flag_rate": left * ap.budget_weight / max(total, ap.budget_weight)})

    def default_audits(self) -> list[str]:
        """The audits run when none are named: every registered audit with a section here, except those that run
        only when named (``Audit.explicit_only``: they need canaries, a trained model or images)."""
        return [n for n in AUDITS.names() if n in self.audits and not AUDITS.get(n).explicit_only]


def protects_against(path: str | Path | None = None) -> dict[str, str]:
    """``{audit: text}`` from the ``# Protects against:`` comments of each audit section of a policy file."""
    p = Path(path) if path else DEFAULT_POLICY_PATH
    out: dict[str, str] = {}
    cur: str | None = None
    collecting = False
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    in_audits = False
    for line in lines:
        if line.startswith("audits:"):
            in_audits = True
            continue
        if in_audits and line and not line.startswith(" ") and not line.startswith("#"):
            in_audits = False
        m = re.match(r"^  ([A-Za-z_]+):\s*$", line) if in_audits else None
        if m:
            cur, collecting = m.group(1), False
            continue
        c = re.match(r"^\s+#\s?(.*)$", line)
        if cur and c:
            txt = c.group(1)
            if txt.startswith("Protects against:"):
                collecting = True
                out[cur] = txt[len("Protects against:"):].strip()
            elif collecting:
                out[cur] += " " + txt.strip()
        else:
            collecting = False
    return out


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy; every problem is reported at once (unknown audit names, unknown keys, types)."""
    p = Path(path) if path else DEFAULT_POLICY_PATH
    if not p.exists():
        raise RecipeError(f"Policy file not found: {p}. Use privacy/policy.yaml from the medsynth repository as a template.")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise RecipeError(f"{p}: not valid YAML.") from None
    problems: list[tuple[str, str]] = []
    try:
        pol = Policy.model_validate(raw)
    except ValidationError as e:
        raise RecipeError(f"{p}: invalid policy.", [(".".join(map(str, er["loc"])), er["msg"]) for er in e.errors()]) from None
    known = AUDITS.names()
    for name, section in pol.audits.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            problems.append((f"audits.{name}", f"unknown audit{f' (did you mean {close[0]!r}?)' if close else ''}; known: {', '.join(known)}"))
            continue
        try:
            AUDITS.get(name).Policy.model_validate(section or {})
        except ValidationError as e:
            for er in e.errors():
                problems.append((f"audits.{name}." + ".".join(map(str, er["loc"])), er["msg"]))
    for name in pol.required_audits or []:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            problems.append(("required_audits", f"unknown audit {name!r}{f' (did you mean {close[0]!r}?)' if close else ''}; known: {', '.join(known)}"))
    if problems:
        raise RecipeError(f"{p}: {len(problems)} problem(s) in the privacy policy.", problems)
    for name in pol.default_audits():  # the budget split is checked before any compute, too
        try:
            pol.audit_policy(name)
        except RecipeError as e:
            raise RecipeError(f"{p}: {e}") from None
    return pol
