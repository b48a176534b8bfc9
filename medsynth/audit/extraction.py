"""Prefix extraction: prompt the generator with the beginning of private records and measure how much of the true
continuation comes back (exact and near). A model that memorised a record completes it.

Used on a model that saw the private records (fine-tuned/adapted generators) or, as a control, on the prompting
setup itself. Takes any ``Backend`` (or a callable ``prompts -> texts``); for an adapter trained by the ``adapt`` step
the audit step loads ``model:`` + ``adapter:`` (a folder or ``step:<adapt step name>``) into a TransformersBackend.
Canary records (``meta["canary"]``, inserted by the adapt step and repeated on purpose) are not probed here: their
memorisation is what ``canary_exposure`` measures, and they are not patients' records.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from difflib import SequenceMatcher
from typing import Any

from pydantic import Field, model_validator

from ..data.records import Record
from ..deprecation import renamed_keys
from ..registry import AUDITS
from . import canary as _canary  # noqa: F401  (registers canary_exposure until medsynth/audit/__init__.py imports it)
from .base import Audit, AuditPolicy, AuditResult, Finding

__all__ = ["PrefixExtractionAudit", "extraction_scores"]


class ExtractionPolicy(AuditPolicy):
    n: int = Field(50, ge=1, description="private records probed, a seeded sample (`n_records:` is its deprecated old name)")
    prefix_fraction: float = Field(0.5, gt=0, lt=1, description="share of each record's characters given as the prompt")
    max_new_tokens: int = Field(64, ge=4)
    near_ratio: float = Field(0.8, gt=0, le=1, description="a continuation with SequenceMatcher ratio ≥ this to the true suffix is a near extraction")
    max_extracted_share: float = Field(0.0, ge=0, le=1, description="release fails if more probed records are extracted (exactly or nearly): protects against a generator that memorised private records")
    min_suffix_chars: int = Field(40, ge=1, description="records whose suffix is shorter are not probed (nothing meaningful to extract)")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, "prefix_extraction", {"n_records": "n"})


def extraction_scores(generate: Callable[[list[str]], list[str]], records: list[Record], policy: ExtractionPolicy, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cands = [r for r in records if r.text and "canary" not in (r.meta or {})
             and len(r.text) * (1 - policy.prefix_fraction) >= policy.min_suffix_chars]
    probe = rng.sample(cands, min(policy.n, len(cands)))
    prompts, suffixes = [], []
    for r in probe:
        cut = int(len(r.text or "") * policy.prefix_fraction)
        cut = (r.text or "").rfind(" ", 0, cut) + 1 or cut
        prompts.append((r.text or "")[:cut])
        suffixes.append((r.text or "")[cut:])
    outs = generate(prompts)
    rows = []
    for r, suf, out in zip(probe, suffixes, outs, strict=True):
        n = min(len(suf), len(out))
        exact = n >= policy.min_suffix_chars and out[:n].strip() == suf[:n].strip()
        ratio = SequenceMatcher(None, out[: len(suf)], suf, autojunk=False).ratio() if out else 0.0
        rows.append({"record_id": r.id, "exact": bool(exact), "ratio": round(ratio, 4)})
    return rows


@AUDITS.register("prefix_extraction")
class PrefixExtractionAudit(Audit):
    name = "prefix_extraction"
    needs_model = True
    Policy = ExtractionPolicy

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        p: ExtractionPolicy = self.policy  # type: ignore[assignment]
        res = AuditResult(self.name, "pass")
        gen = context.get("generate")
        backend = context.get("backend")
        if gen is None and backend is None:
            return res.skip("no generator given to the audit (pass backend= or generate=, or set `model:` on the audit step)")
        if gen is None:
            from ..text.backends.base import GenParams

            def gen(prompts: list[str]) -> list[str]:
                return [c.text for c in backend.generate(prompts, GenParams(max_new_tokens=p.max_new_tokens, temperature=0.0, batch_size=8))]

        rows = extraction_scores(gen, private, p, seed=int(context.get("seed", 0)))
        hits = [r for r in rows if r["exact"] or r["ratio"] >= p.near_ratio]
        # findings name the PRIVATE record that was extracted (the synthetic set is not involved)
        for r in hits:
            res.findings.append(Finding(r["record_id"], "prefix_extraction", {"exact": r["exact"], "ratio": r["ratio"]}))
        how = f"greedy continuation of the first {p.prefix_fraction:.0%} of {len(rows)} sampled private records vs their true suffix"
        res.figure("probed", len(rows), how)
        n_can = sum(1 for r in private if "canary" in (r.meta or {}))
        if n_can:
            res.figure("canaries_excluded", n_can, "canary records in the private set, left to the canary_exposure audit")
        res.figure("exact_extractions", sum(r["exact"] for r in rows), "continuation reproduces the true suffix verbatim (≥ min_suffix_chars)")
        res.figure("near_extractions", len(hits), f"exact, or SequenceMatcher ratio ≥ {p.near_ratio} to the true suffix")
        res.figure("mean_ratio", round(sum(r["ratio"] for r in rows) / max(len(rows), 1), 4), "mean SequenceMatcher ratio of continuation vs true suffix")
        res.sections["extraction_ratios"] = [r["ratio"] for r in rows]
        if len(hits) / max(len(rows), 1) > p.max_extracted_share:
            res.verdict = "fail"
            res.release_reasons.append(f"{len(hits)} of {len(rows)} probed private records were extracted from the generator")
        return res
