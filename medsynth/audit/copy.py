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

from pydantic import Field

from ..data.records import Record
from ..registry import AUDITS
from .base import Audit, AuditResult, CalibratedPolicy, Finding, conformal_threshold

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

    def passage_count(self, passage: str, limit: int = 2) -> int:
        """In how many indexed texts the passage occurs (stops counting at ``limit``)."""
        p = passage.lower()
        toks = _TOK.findall(p)[1:-1]  # the passage may start/end inside a word
        grams = [tuple(toks[i : i + self.n]) for i in range(len(toks) - self.n + 1)]
        cands = set(self.index.get(grams[0], ())) if grams else set(range(len(self.texts)))
        for g in grams[1:4]:
            cands &= set(self.index.get(g, ()))
        n = 0
        for j in cands:
            if p in self.texts[j].lower():
                n += 1
                if n >= limit:
                    break
        return n

    def best_passage(self, text: str, top: int = 3) -> tuple[str, int | None]:
        grams = _ngrams(text, self.n)
        cnt: Counter[int] = Counter()
        for g in set(grams):
            for j in self.index.get(g, ()):
                cnt[j] += 1
        best, bj = "", None
        low = text.lower()
        for j, _ in cnt.most_common(top):
            other = self.texts[j].lower()
            m = SequenceMatcher(None, low, other, autojunk=False).find_longest_match(0, len(low), 0, len(other))
            if m.size > len(best):
                best, bj = text[m.a : m.a + m.size], j
        return best, bj

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


def _novel(texts: list[str], reference: list[str], threshold: float = 0.5) -> list[str]:
    """Texts with no reference text at word-3-gram Jaccard ≥ threshold (MinHash LSH estimate)."""
    from datasketch import MinHash, MinHashLSH

    def mh(t: str) -> MinHash:
        m = MinHash(num_perm=64, seed=3)
        for g in _ngrams(t, 3) or [tuple(_TOK.findall(t.lower()))]:
            m.update(" ".join(g).encode())
        return m

    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    for i, t in enumerate(reference):
        lsh.insert(str(i), mh(t))
    return [t for t in texts if not lsh.query(mh(t))]


def copy_stats(texts: list[str], private: list[str], n: int = 8) -> list[tuple[int, float]]:
    idx = _Index(private, n)
    return [idx.stats(t)[:2] for t in texts]


class VerbatimPolicy(CalibratedPolicy):
    ngram: int = Field(8, ge=3, description="word n-gram size for overlap")
    min_lcs_chars: int = Field(80, ge=10, description="absolute floor: a shared passage shorter than this is never flagged (boilerplate)")
    min_ngram_overlap: float = Field(0.5, gt=0, le=1, description="absolute floor on the share of a record's n-grams found in one private record")
    holdout_calibration: bool = Field(True, description="with a holdout, also require exceeding a split-conformal threshold of the same figures over the holdout records (what real reports of patients outside the private set share with it, templates included); false: policy floors only")
    holdout_quantile: float | None = Field(None, gt=0.5, lt=1, description="legacy: that threshold as a plain quantile (false_flag_rate = 1 − holdout_quantile)")
    min_private_copies: int = Field(2, ge=2, description="a shared passage found in at least this many private records is boilerplate (not specific to one patient)")
    generic_ratio: float = Field(0.8, gt=0, le=1, description="not flagged when some holdout record shares at least this fraction of the same passage (boilerplate common to unrelated patients)")
    max_flagged_share: float = Field(0.01, ge=0, le=1, description="release fails if more records are copies (protects against systematic memorisation)")

    def legacy_rate(self) -> float | None:
        return 1 - self.holdout_quantile if self.holdout_quantile is not None else None


@AUDITS.register("verbatim_copy")
class VerbatimCopyAudit(Audit):
    name = "verbatim_copy"
    Policy = VerbatimPolicy
    calibrated = True

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        p: VerbatimPolicy = self.policy  # type: ignore[assignment]
        idx = _Index([r.text or "" for r in private], p.ngram)
        syn = [idx.stats(r.text or "") for r in synthetic]
        lcs_thr, ov_thr = float(p.min_lcs_chars), p.min_ngram_overlap
        guar = None
        how_thr = "policy floors"
        if holdout and p.holdout_calibration:
            # calibrate on what real reports of patients outside the private set share with it: on templated
            # corpora some of them repeat a private report word for word, and a synthetic record doing the same is
            # no more evidence of memorisation than they are
            htexts = [r.text or "" for r in holdout]
            if len(htexts) >= 20:
                hs = [idx.stats(t) for t in htexts]
                # two figures, each at half the audit's rate: a new patient's record exceeds either with probability ≤ rate
                ql, how_l, g1 = conformal_threshold([h[0] for h in hs], p.rate() / 2, "upper")
                qo, _, g2 = conformal_threshold([h[1] for h in hs], p.rate() / 2, "upper")
                guar = g1 + g2
                lcs_thr, ov_thr = max(lcs_thr, ql), max(ov_thr, qo)
                how_thr = f"max(policy floor, split-conformal threshold of the same figure over the holdout records vs the private set at rate {p.rate():.2%}/2 per figure: {how_l})"
        hidx = _Index([r.text or "" for r in holdout], p.ngram) if holdout else None
        res = AuditResult(self.name, "pass")
        generic = 0
        for r, (lcs, ov, j) in zip(synthetic, syn, strict=True):
            if lcs > lcs_thr or ov > ov_thr:  # strictly above: on templated corpora the holdout quantile can be a whole report
                passage, _ = idx.best_passage(r.text or "")
                # a passage that occurs in several private records (several patients) is boilerplate, not a memorised record
                if len(passage) >= lcs_thr * p.generic_ratio and idx.passage_count(passage, p.min_private_copies) >= p.min_private_copies:
                    generic += 1
                    continue
                if hidx is not None:
                    hl, hov, _ = hidx.stats(r.text or "")
                    if hl >= p.generic_ratio * lcs and hov >= p.generic_ratio * ov:
                        generic += 1  # the same passage occurs in other (holdout) patients' reports: boilerplate, not memorisation
                        continue
                res.findings.append(Finding(r.id, "verbatim_copy", {"lcs_chars": lcs, "ngram_overlap": round(ov, 3), "private_id": private[j].id if j is not None else None}))
        res.figure("lcs_threshold_chars", round(lcs_thr, 1), how_thr)
        if guar is not None:
            res.certified_rate_figure(guar, p.rate())
        res.figure("ngram_overlap_threshold", round(ov_thr, 3), how_thr)
        if ov_thr >= 1.0:
            res.not_powered(f"the n-gram overlap threshold is saturated at {ov_thr:.2f} (a holdout record shares all its {p.ngram}-grams with the "
                            "private set), so no record can exceed it: the per-record overlap check is off")
        res.figure("max_lcs_chars", int(max((s[0] for s in syn), default=0)), "longest common substring (chars) between any synthetic record and its 3 most overlapping private records")
        res.figure("flagged", len(res.findings), "synthetic records above either threshold whose shared passage is in no other private record and not matched as closely by a holdout record")
        res.figure("generic_not_flagged", generic, f"records above a threshold whose shared passage occurs in ≥ {p.min_private_copies} private records or as much in a holdout record (boilerplate common to several patients)")
        res.sections["lcs_hist"] = {"synthetic": [s[0] for s in syn]}
        share = len(res.findings) / max(len(synthetic), 1)
        if share > p.max_flagged_share:
            res.verdict = "fail"
            res.release_reasons.append(f"{share:.1%} of records are verbatim copies (policy allows {p.max_flagged_share:.1%})")
        return res


class NearDupPolicy(CalibratedPolicy):
    jaccard_threshold: float = Field(0.7, gt=0, le=1, description="estimated Jaccard of word 3-gram shingles at which a record is a near-duplicate of a private one")
    num_perm: int = Field(128, ge=16, description="MinHash permutations (estimate precision)")
    holdout_calibration: bool = Field(True, description="with a holdout of ≥ 20 records, also require a Jaccard above a split-conformal threshold of the holdout records' Jaccard to their closest non-template private record (on corpora where real new patients' reports repeat private ones, such repeats are not evidence); false: jaccard_threshold only")
    holdout_quantile: float | None = Field(None, gt=0.5, lt=1, description="legacy: that threshold as a plain quantile (false_flag_rate = 1 − holdout_quantile)")
    max_flagged_share: float = Field(0.01, ge=0, le=1, description="release fails above this share (protects against lightly edited copies)")

    def legacy_rate(self) -> float | None:
        return 1 - self.holdout_quantile if self.holdout_quantile is not None else None


@AUDITS.register("near_duplicate")
class NearDuplicateAudit(Audit):
    name = "near_duplicate"
    Policy = NearDupPolicy
    calibrated = True

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
        templated: dict[str, bool] = {}

        def is_template(pid: str) -> bool:
            # a private record with a near-duplicate among the other private records is a template shared by patients
            if pid not in templated:
                templated[pid] = any(o != pid and pm[pid].jaccard(pm[o]) >= p.jaccard_threshold for o in lsh.query(pm[pid]))
            return templated[pid]

        def best_specific(m: MinHash) -> tuple[float, str | None, bool]:
            cands = [c for c in lsh.query(m) if m.jaccard(pm[c]) >= p.jaccard_threshold]
            if cands and all(is_template(c) for c in cands):
                return 0.0, None, True
            cands = [c for c in cands if not is_template(c)]
            if not cands:
                return 0.0, None, False
            best = max(cands, key=lambda c: m.jaccard(pm[c]))
            return m.jaccard(pm[best]), best, False

        thr = p.jaccard_threshold
        guar = None
        how_thr = f"policy jaccard_threshold {p.jaccard_threshold}"
        if hm and p.holdout_calibration and len(hm) >= 20:
            hj_all = [best_specific(m)[0] for m in hm.values()]
            q, how_q, guar = conformal_threshold(hj_all, p.rate(), "upper")
            if q >= thr:
                thr = min(q + 1e-9, 1.0 + 1e-9)
                how_thr = (f"{q:.3f} = {how_q} (Jaccard of each holdout record to its closest non-template private record; "
                           f"above the policy's {p.jaccard_threshold}); a record must exceed it")
        for r in synthetic:
            m = mh(r.text or "")
            jac, best, templ = best_specific(m)
            if templ:
                generic += 1
                continue
            if best is None or jac < p.jaccard_threshold:
                continue
            hc = hl.query(m) if hm else []
            hj = max((m.jaccard(hm[c]) for c in hc), default=0.0)
            if hj >= jac - 0.05 or jac < thr:
                generic += 1  # as close to an unrelated (holdout) report, or no closer than real new patients' reports are: not evidence
                continue
            res.findings.append(Finding(r.id, "near_duplicate", {"jaccard": round(jac, 3), "private_id": best}))
        res.figure("jaccard_threshold", round(min(thr, 1.0), 4), how_thr)
        if thr >= 1.0:
            res.not_powered("the Jaccard threshold is saturated at 1.0 (a holdout record is an exact near-duplicate of a private one), "
                            "so no record can exceed it: the per-record near-duplicate check is off")
        if guar is not None:
            res.certified_rate_figure(guar, p.rate())
        res.figure("flagged", len(res.findings), f"synthetic records with a private record at estimated Jaccard ≥ {p.jaccard_threshold} (MinHash, {p.num_perm} permutations, word 3-gram shingles)")
        res.figure("generic_not_flagged", generic, "near-duplicates only of private records that have near-duplicates among other private records, or as close to a holdout record (templated reports)")
        share = len(res.findings) / max(len(synthetic), 1)
        if share > p.max_flagged_share:
            res.verdict = "fail"
            res.release_reasons.append(f"{share:.1%} of records are near-duplicates of private records (policy allows {p.max_flagged_share:.1%})")
        return res
