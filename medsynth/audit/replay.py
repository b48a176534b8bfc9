"""PHI replay: any PHI string of the private set appearing in a synthetic output."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from ..data.records import Record
from ..registry import AUDITS
from .base import Audit, AuditPolicy, AuditResult, Finding

__all__ = ["PhiReplayAudit", "find_phi_replay"]


class PhiReplayPolicy(AuditPolicy):
    min_length: int = Field(4, ge=1, description="ignore PHI strings shorter than this (too common to be evidence, e.g. 'Al')")
    max_flagged_records: int = Field(0, ge=0, description="release fails if more records replay PHI (protects against verbatim leakage of identifiers)")
    scan_private: bool = Field(True, description="if no PHI list is given, detect PHI in the private set with the scrubber")
    labels: list[str] | None = Field(None, description="PHI types whose strings are checked (default: every type); e.g. [NAME, MRN, DATE]. "
                                                       "Narrowing it lets identifiers of the other types through: change with your privacy officer")

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, v: list[str] | None) -> list[str] | None:
        from ..scrub.engine import LABELS

        if v is None:
            return v
        bad = [x for x in v if x not in LABELS]
        if bad:
            raise ValueError(f"unknown PHI label(s) {', '.join(map(repr, bad))}; known labels: {', '.join(LABELS)}")
        if not v:
            raise ValueError("an empty label list would check nothing; remove `labels` to check every PHI type")
        return v


def find_phi_replay(texts: dict[str, str], phi: list[str], min_length: int = 4) -> dict[str, list[int]]:
    """{record_id: [indices of PHI strings found]} — case-insensitive, on word boundaries."""
    strings = sorted({p.strip() for p in phi if len(p.strip()) >= min_length}, key=len, reverse=True)
    if not strings:
        return {}
    index = {s.lower(): i for i, s in enumerate(strings)}
    rx = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(s) for s in strings) + r")(?!\w)", re.I)
    out: dict[str, list[int]] = {}
    for rid, t in texts.items():
        hits = sorted({index[m.group(0).lower()] for m in rx.finditer(t or "")})
        if hits:
            out[rid] = hits
    return out


@AUDITS.register("phi_replay")
class PhiReplayAudit(Audit):
    name = "phi_replay"
    Policy = PhiReplayPolicy

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        p: PhiReplayPolicy = self.policy  # type: ignore[assignment]
        raw = list(context.get("phi_strings") or [])
        source = "PHI strings given to the audit (from the scrub step)"
        if "phi_strings" not in context and p.scan_private:
            from ..scrub.engine import Scrubber

            spans = Scrubber(mode="spans").analyze_many([r.text or "" for r in private])
            raw = [{"label": s.label, "text": s.text} for sp in spans for s in sp]
            source = "PHI detected in the private set by the medsynth scrubber"
        # entries are strings, or {"label", "text"} as written by the scrub step; `labels` filters the labelled ones
        phi = [e if isinstance(e, str) else e["text"] for e in raw
               if isinstance(e, str) or p.labels is None or e.get("label") in p.labels]
        dropped = 0
        if holdout:
            # a string that also occurs in the holdout (other patients) is not evidence of memorising the private set
            common = find_phi_replay({"h": "\n".join(r.text or "" for r in holdout)}, phi, p.min_length).get("h", [])
            strings = sorted({s.strip() for s in phi if len(s.strip()) >= p.min_length}, key=len, reverse=True)
            common_set = {strings[i].lower() for i in common}
            dropped = len(common_set)
            phi = [s for s in phi if s.strip().lower() not in common_set]
        hits = find_phi_replay({r.id: r.text or "" for r in synthetic}, phi, p.min_length)
        res = AuditResult(self.name, "pass")
        for rid, idx in hits.items():
            res.findings.append(Finding(rid, "phi_replay", len(idx)))
        n_phi = len({s for s in phi if len(s) >= p.min_length})
        res.figure("phi_strings_checked", n_phi, f"distinct PHI strings of length ≥ {p.min_length} ({source})")
        res.figure("phi_strings_also_in_holdout", dropped, "PHI strings also found in the holdout texts, excluded (not specific to the private set)")
        res.figure("records_replaying_phi", len(hits), "synthetic records containing any of them (case-insensitive, whole words)")
        if len(hits) > p.max_flagged_records:
            res.verdict = "fail"
            res.release_reasons.append(f"{len(hits)} records replay private PHI (policy allows {p.max_flagged_records})")
        return res
