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
    tagger_scan: bool = Field(True, description="also tag names, identifiers and contact details in the synthetic text with the learned PHI "
                                                "tagger and flag those found verbatim in a private record (and in no holdout record): this "
                                                "does not depend on what the scrubber found in the private set")
    tagger_labels: list[str] = Field(default_factory=lambda: ["NAME", "ID", "CONTACT"], description="tagger labels checked by tagger_scan")
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


def replay_order(phi: list[str], min_length: int) -> list[str]:
    """The distinct strings :func:`find_phi_replay` searches for, in the order its indices refer to."""
    return sorted({p.strip() for p in phi if len(p.strip()) >= min_length}, key=lambda s: (-len(s), s))


def find_phi_replay(texts: dict[str, str], phi: list[str], min_length: int = 4) -> dict[str, list[int]]:
    """{record_id: [indices of PHI strings found]} — case-insensitive, on word boundaries."""
    strings = replay_order(phi, min_length)
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

            spans = Scrubber(mode="spans", tagger="optional").analyze_many([r.text or "" for r in private])
            raw = [{"label": s.label, "text": s.text} for sp in spans for s in sp]
            source = "PHI detected in the private set by the medsynth scrubber"
        # entries are strings, or {"label", "text"} as written by the scrub step; `labels` filters the labelled ones
        phi = [e if isinstance(e, str) else e["text"] for e in raw
               if isinstance(e, str) or p.labels is None or e.get("label") in p.labels]
        dropped = 0
        if holdout:
            # a string that also occurs in the holdout (other patients) is not evidence of memorising the private set
            common = find_phi_replay({"h": "\n".join(r.text or "" for r in holdout)}, phi, p.min_length).get("h", [])
            strings = replay_order(phi, p.min_length)
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
        tagged = self._tagger_scan(synthetic, private, holdout, res) if p.tagger_scan else set()
        if not p.tagger_scan:
            res.figure("tagger_scan", "off", "the learned tagger's scan of the synthetic text is switched off by the policy (tagger_scan: false)")
        flagged = set(hits) | tagged
        tagger_checked = next((f["value"] for f in res.figures if f["name"] == f"{self.name}.tagger_candidates_checked"), 0)
        if n_phi == 0 and not tagger_checked:
            res.not_powered(f"0 PHI strings of the private set to look for ({source}) and "
                            + ("no name/identifier-like string in the synthetic text for the tagger scan to check" if p.tagger_scan else "the tagger scan is off")
                            + ": replay cannot be tested")
        if len(flagged) > p.max_flagged_records:
            res.verdict = "fail"
            res.release_reasons.append(f"{len(flagged)} records replay private PHI (policy allows {p.max_flagged_records})")
        return res

    def _tagger_scan(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None, res: AuditResult) -> set[str]:
        """Names, identifiers and contact details the learned tagger finds in the synthetic text that occur verbatim
        (whole words, any case) in a private record and in no holdout record. Returns the flagged record ids."""
        from ..exceptions import MedsynthError
        from ..scrub.tagger import load_default_tagger

        p: PhiReplayPolicy = self.policy  # type: ignore[assignment]
        try:
            tagger = load_default_tagger()
        except MedsynthError:
            res.figure("tagger_scan", "not run: the learned PHI tagger is not installed (medsynth models prepare phi-tagger)",
                       "PHI strings of the synthetic text that the scrubber missed in the private set were NOT checked")
            return set()
        texts = {r.id: r.text or "" for r in synthetic}
        cands: dict[str, set[str]] = {}
        for rid, spans in zip(texts, tagger.predict(list(texts.values())), strict=True):
            for sp in spans:
                st = texts[rid][sp.start:sp.end].strip()
                if sp.label in p.tagger_labels and len(st) >= p.min_length:
                    cands.setdefault(st, set()).add(rid)
        strings = list(cands)
        in_private = set(find_phi_replay({"p": "\n".join(r.text or "" for r in private)}, strings, p.min_length).get("p", []))
        in_holdout = set(find_phi_replay({"h": "\n".join(r.text or "" for r in holdout or [])}, strings, p.min_length).get("h", []))
        ordered = replay_order(strings, p.min_length)
        leaked = [ordered[i] for i in in_private - in_holdout]
        flagged: set[str] = set()
        for st in leaked:
            for rid in cands.get(st, ()):
                flagged.add(rid)
        for rid in sorted(flagged):
            res.findings.append(Finding(rid, "phi_replay_tagged", 1))
        res.figure("tagger_candidates_checked", len(ordered), f"distinct name/identifier/contact strings ({', '.join(p.tagger_labels)}) the learned "
                                                             "tagger found in the synthetic text, each searched for in the private records")
        res.figure("tagger_candidates_in_private", len(leaked), "of those, found verbatim (whole words, any case) in a private record and in no holdout record")
        res.figure("records_replaying_tagged_phi", len(flagged), "synthetic records containing such a string (independent of the scrubber's PHI list)")
        return flagged
