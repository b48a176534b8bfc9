"""Verbatim and near copies of private records.

- ``verbatim_copy``: longest common substring (characters) and word 8-gram overlap between each synthetic record
  and its most similar private record. Thresholds are calibrated on the holdout: a record is flagged when its
  figure exceeds both the policy's absolute floor and the holdout's (1 − q) quantile (what unrelated real reports
  share with the private set through boilerplate).
- ``near_duplicate``: MinHash LSH (datasketch) over word 3-gram shingles; flagged at estimated Jaccard ≥ threshold.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from difflib import SequenceMatcher
from typing import Any

import numpy as np
from pydantic import Field

from ..data.records import Record
from ..registry import AUDITS
from .base import Audit, AuditPolicy, AuditResult, Finding

__all__ = ["VerbatimCopyAudit", "NearDuplicateAudit", "copy_stats"]

_TOK = re.compile(r"\w+")


def _ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    toks = _TOK.findall(text.lower())
    return [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]


class _Index:
    def __init__(self, texts: list[str], n: int):
        self.n = n
        self.texts = texts
        self.index: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, t in enumerate(texts):
            for g in set(_ngrams(t, n)):
                self.index[g].append(i)

    def stats(self, text: str, top: int = 3) -> tuple[int, float, int | None]:
        """(longest common substring in chars with the best candidates, share of the text's n-grams found in the
        single most overlapping private record, index of that record)."""
        grams = _ngrams(text, self.n)
        if not grams:
            return 0, 0.0, None
        cnt: Counter[int] = Counter()
        for g in set(grams):
            for j in self.index.get(g, ()):
                cnt[j] += 1
        if not cnt:
            return 0, 0.0, None
        best = cnt.most_common(top)
        share = best[0][1] / len(set(grams))
        lcs = 0
        low = text.lower()
        for j, _ in best:
            other = self.texts[j].lower()
            m = SequenceMatcher(None, low, other, autojunk=False).find_longest_match(0, len(low), 0, len(other))
            lcs = max(lcs, m.size)
        return lcs, share, best[0][0]


def copy_stats(texts: list[str], private: list[str], n: int = 8) -> list[tuple[int, float]]:
    idx = _Index(private, n)
    return [idx.stats(t)[:2] for t in texts]


class VerbatimPolicy(AuditPolicy):
    ngram: int = Field(8, ge=3, description="word n-gram size for overlap")
    min_lcs_chars: int = Field(80, ge=10, description="absolute floor: a shared passage shorter than this is never flagged (boilerplate)")
    min_ngram_overlap: float = Field(0.5, gt=0, le=1, description="absolute floor on the share of a record's n-grams found in one private record")
    holdout_quantile: float | None = Field(None, gt=0.5, lt=1, description="optionally also require exceeding this quantile of the same figure for holdout records (useless on corpora with many identical reports)")
    generic_ratio: float = Field(0.8, gt=0, le=1, description="not flagged when some holdout record shares at least this fraction of the same passage (boilerplate common to unrelated patients)")
    max_flagged_share: float = Field(0.01, ge=0, le=1, description="release fails if more records are copies (protects against systematic memorisation)")


@AUDITS.register("verbatim_copy")
class VerbatimCopyAudit(Audit):
    name = "verbatim_copy"
    Policy = VerbatimPolicy

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        p: VerbatimPolicy = self.policy  # type: ignore[assignment]
        idx = _Index([r.text or "" for r in private], p.ngram)
        syn = [idx.stats(r.text or "") for r in synthetic]
        lcs_thr, ov_thr = float(p.min_lcs_chars), p.min_ngram_overlap
        how_thr = "policy floors"
        if holdout and p.holdout_quantile:
            hs = [idx.stats(r.text or "") for r in holdout]
            lcs_thr = max(lcs_thr, float(np.quantile([h[0] for h in hs], p.holdout_quantile)))
            ov_thr = max(ov_thr, float(np.quantile([h[1] for h in hs], p.holdout_quantile)))
            how_thr = f"max(policy floor, holdout {p.holdout_quantile:.0%} quantile over {len(hs)} holdout records)"
        hidx = _Index([r.text or "" for r in holdout], p.ngram) if holdout else None
        res = AuditResult(self.name, "pass")
        generic = 0
        for r, (lcs, ov, j) in zip(synthetic, syn, strict=True):
            if lcs >= lcs_thr or ov >= ov_thr:
                if hidx is not None:
                    hl, hov, _ = hidx.stats(r.text or "")
                    if hl >= p.generic_ratio * lcs and hov >= p.generic_ratio * ov:
                        generic += 1  # the same passage occurs in other (holdout) patients' reports: boilerplate, not memorisation
                        continue
                res.findings.append(Finding(r.id, "verbatim_copy", {"lcs_chars": lcs, "ngram_overlap": round(ov, 3), "private_id": private[j].id if j is not None else None}))
        res.figure("lcs_threshold_chars", round(lcs_thr, 1), how_thr)
        res.figure("ngram_overlap_threshold", round(ov_thr, 3), how_thr)
        res.figure("max_lcs_chars", int(max((s[0] for s in syn), default=0)), "longest common substring (chars) between any synthetic record and its 3 most overlapping private records")
        res.figure("flagged", len(res.findings), "synthetic records at or above either threshold and not matched as closely by a holdout record")
        res.figure("generic_not_flagged", generic, "records above a threshold whose passage a holdout record shares as much (boilerplate common to unrelated patients)")
        res.sections["lcs_hist"] = {"synthetic": [s[0] for s in syn]}
        share = len(res.findings) / max(len(synthetic), 1)
        if share > p.max_flagged_share:
            res.verdict = "fail"
            res.release_reasons.append(f"{share:.1%} of records are verbatim copies (policy allows {p.max_flagged_share:.1%})")
        return res


class NearDupPolicy(AuditPolicy):
    jaccard_threshold: float = Field(0.7, gt=0, le=1, description="estimated Jaccard of word 3-gram shingles at which a record is a near-duplicate of a private one")
    num_perm: int = Field(128, ge=16)
    max_flagged_share: float = Field(0.01, ge=0, le=1, description="release fails above this share (protects against lightly edited copies)")


@AUDITS.register("near_duplicate")
class NearDuplicateAudit(Audit):
    name = "near_duplicate"
    Policy = NearDupPolicy

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        from datasketch import MinHash, MinHashLSH

        p: NearDupPolicy = self.policy  # type: ignore[assignment]

        def mh(text: str) -> MinHash:
            m = MinHash(num_perm=p.num_perm, seed=1)
            for g in _ngrams(text, 3) or [tuple(_TOK.findall(text.lower()))]:
                m.update(" ".join(g).encode())
            return m

        lsh = MinHashLSH(threshold=p.jaccard_threshold, num_perm=p.num_perm)
        pm = {}
        for r in private:
            if r.text:
                pm[r.id] = mh(r.text)
                lsh.insert(r.id, pm[r.id])
        hl = MinHashLSH(threshold=p.jaccard_threshold, num_perm=p.num_perm)
        hm = {}
        for r in holdout or []:
            if r.text:
                hm[r.id] = mh(r.text)
                hl.insert(r.id, hm[r.id])
        res = AuditResult(self.name, "pass")
        generic = 0
        for r in synthetic:
            m = mh(r.text or "")
            cands = lsh.query(m)
            if cands:
                best = max(cands, key=lambda c: m.jaccard(pm[c]))
                jac = m.jaccard(pm[best])
                hc = hl.query(m) if hm else []
                hj = max((m.jaccard(hm[c]) for c in hc), default=0.0)
                if jac >= p.jaccard_threshold and hj >= jac - 0.05:
                    generic += 1  # as close to an unrelated (holdout) report: templated text, not memorisation
                    continue
                if jac >= p.jaccard_threshold:
                    res.findings.append(Finding(r.id, "near_duplicate", {"jaccard": round(jac, 3), "private_id": best}))
        res.figure("flagged", len(res.findings), f"synthetic records with a private record at estimated Jaccard ≥ {p.jaccard_threshold} (MinHash, {p.num_perm} permutations, word 3-gram shingles)")
        res.figure("generic_not_flagged", generic, "near-duplicates of a private record that are as close to a holdout record (templated reports)")
        share = len(res.findings) / max(len(synthetic), 1)
        if share > p.max_flagged_share:
            res.verdict = "fail"
            res.release_reasons.append(f"{share:.1%} of records are near-duplicates of private records (policy allows {p.max_flagged_share:.1%})")
        return res
