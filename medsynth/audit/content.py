"""Rare-content overlap: does a synthetic record reproduce the *record-specific* content of one private record?

What a paraphrase of a private record leaks on a templated clinical corpus is not its wording (that is what
``verbatim_copy`` / ``near_duplicate`` catch) but its specific content: the rare findings, measurements, devices and
their combination ("2.3 cm spiculated mass abutting the minor fissure", "seven sternotomy wires, LVAD"). Boilerplate
("heart size is normal, no pneumothorax") is shared by thousands of patients and identifies nobody.

Method (per synthetic record ``s``):

1. Content units: lower-cased word tokens minus stop words (numbers kept, "2.3" and "cm" are units), plus adjacent
   content-token bigrams ("spiculated mass", "2.3 cm"). Sets, not counts.
2. Rarity weight of a unit: IDF over the reference corpus (private ∪ holdout records),
   ``w(u) = log((N + 1) / (df(u) + 1))``; units in more than ``max_df`` of the corpus weigh nothing.
3. ``S(s, p) = Σ w(u)`` over units shared by ``s`` and private record ``p``. The audit's figure is the
   **specific overlap** ``M(s) = S(s, p₁) − S(s, r₂)``: how much more rare content ``s`` shares with its best private
   match ``p₁`` than with the runner-up ``r₂`` among the other private *and holdout* records. Content that several
   patients share (templates, common findings) cancels out; content that only one patient's record has does not.
4. Calibration: the same figure for every holdout record (real reports of patients who are NOT in the private set)
   against the private set. A synthetic record is flagged when ``M(s)`` exceeds the holdout's ``quantile`` quantile
   times ``margin`` (and an absolute floor): a record sharing more patient-specific content with one private
   record than almost any real new patient's report does.

Release test: share of flagged records ≤ ``max_flagged_share``. Findings carry the matched private record id and
the figures, never text. Limits: content spread over several private records (a "mosaic") is not attributed to
one record; rare content expressed with entirely different words (another language, codes) is not matched.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from pydantic import Field

from ..data.records import Record
from ..registry import AUDITS
from .base import Audit, AuditResult, CalibratedPolicy, Finding, conformal_threshold

__all__ = ["RareContentAudit", "RareContentPolicy", "content_units", "RareContentIndex"]

_TOK = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
# placeholder tokens left by de-identification in public corpora (IU: XXXX) and by medsynth's mask mode
_PLACEHOLDER = re.compile(r"^x{2,}$")


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def content_units(text: str, stop: frozenset[str] | None = None, bigrams: bool = True) -> set[str]:
    """Content units of a text: content tokens and adjacent content-token bigrams (see module doc)."""
    stop = stop if stop is not None else _stop_words()
    toks = [t for t in _TOK.findall((text or "").lower()) if t not in stop and not _PLACEHOLDER.match(t) and (len(t) > 1 or t.isdigit())]
    units = set(toks)
    if bigrams:
        units.update(f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False))
    return units


class RareContentIndex:
    """Private records as sparse binary unit vectors with IDF weights from a reference corpus."""

    def __init__(self, private_texts: list[str], reference_texts: list[str], max_df: float = 0.2, bigrams: bool = True,
                 other_texts: list[str] | None = None):

        self.stop = _stop_words()
        self.bigrams = bigrams
        ref_units = [content_units(t, self.stop, bigrams) for t in reference_texts]
        df: dict[str, int] = {}
        for us in ref_units:
            for u in us:
                df[u] = df.get(u, 0) + 1
        n = max(len(reference_texts), 1)
        self.n_reference = n
        self.vocab: dict[str, int] = {}
        weights: list[float] = []
        for u, d in df.items():
            if d / n <= max_df:
                self.vocab[u] = len(weights)
                weights.append(math.log((n + 1) / (d + 1)))
        # units never seen in the reference corpus get the maximal weight
        self.unseen_weight = math.log(n + 1)
        self.w = np.asarray(weights, dtype="float64")
        self.P = self._binary(private_texts)
        # other real patients' records (the holdout): content they share with a synthetic record is not specific to
        # the matched private record either
        self.O = self._binary(other_texts) if other_texts else None

    def _binary(self, texts: list[str]) -> Any:
        from scipy import sparse

        rows, cols = [], []
        for i, t in enumerate(texts):
            for u in set(content_units(t, self.stop, self.bigrams)):
                j = self.vocab.get(u)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(self.w)))

    def _query(self, texts: list[str]) -> Any:
        from scipy import sparse

        rows, cols, vals = [], [], []
        for i, t in enumerate(texts):
            for u in content_units(t, self.stop, self.bigrams):
                j = self.vocab.get(u)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(self.w[j])
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(self.w)))

    def scores(self, texts: list[str], exclude_other: list[int | None] | None = None, chunk: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(best overlap S₁, specific overlap M = S₁ − S₂, index of the best private record) for each text; S₂ is
        the runner-up among the other private records and the other real records. ``exclude_other[i]``: index of
        an other-record not to compare text ``i`` with (leave-one-out when the texts are those other records)."""
        best = np.zeros(len(texts))
        margin = np.zeros(len(texts))
        arg = np.full(len(texts), -1, dtype="int64")
        for a in range(0, len(texts), chunk):
            Q = self._query(texts[a : a + chunk])
            S = (Q @ self.P.T).toarray()
            other_best = np.zeros(S.shape[0])
            if self.O is not None:
                So = (Q @ self.O.T).toarray()
                if exclude_other is not None:
                    for r, j in enumerate(exclude_other[a : a + chunk]):
                        if j is not None:
                            So[r, j] = -np.inf
                other_best = So.max(axis=1) if So.shape[1] else other_best
            if S.shape[1] == 0:
                continue
            k = min(2, S.shape[1])
            top = np.argpartition(-S, k - 1, axis=1)[:, :k]
            for r in range(S.shape[0]):
                vals = S[r, top[r]]
                order = np.argsort(-vals)
                s1 = float(vals[order[0]])
                s2 = max(float(vals[order[1]]) if k > 1 else 0.0, float(other_best[r]))
                best[a + r] = max(s1, 0.0)
                margin[a + r] = max(s1 - max(s2, 0.0), 0.0)
                arg[a + r] = int(top[r][order[0]]) if s1 > 0 else -1
        return best, margin, arg


class RareContentPolicy(CalibratedPolicy):
    max_df: float = Field(0.2, gt=0, le=1, description="units found in more than this share of the reference corpus (private ∪ holdout) carry no weight: boilerplate")
    bigrams: bool = Field(True, description="also use adjacent content-word bigrams ('spiculated mass', '2.3 cm') as units")
    quantile: float | None = Field(None, gt=0.5, lt=1, description="legacy: flag above this quantile of the holdout records' specific overlap (false_flag_rate = 1 − quantile); default: the policy's clean-flag budget share, split-conformal")
    margin: float = Field(1.0, ge=1, description="a record is flagged when its specific overlap exceeds `margin` × that holdout quantile: protects against paraphrased copies of one patient's record (rare findings, measurements and their combination reproduced in other words)")
    min_specific: float = Field(15.0, ge=0, description="absolute floor on the specific overlap (IDF units) below which nothing is flagged (too little content to single out a record)")
    max_flagged_share: float = Field(0.01, ge=0, le=1, description="release fails if more records reproduce one private record's specific content (systematic memorisation)")

    def legacy_rate(self) -> float | None:
        return 1 - self.quantile if self.quantile is not None else None


@AUDITS.register("rare_content")
class RareContentAudit(Audit):
    name = "rare_content"
    Policy = RareContentPolicy
    needs_holdout = True
    calibrated = True

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        p: RareContentPolicy = self.policy  # type: ignore[assignment]
        res = AuditResult(self.name, "pass")
        if not holdout or len(holdout) < 20:
            res.verdict = "fail"
            res.release_reasons.append("the rare_content audit needs a holdout of at least 20 real records not used for generation "
                                       "(it calibrates what unrelated patients share with the private set); set `holdout:` in the audit step")
            return res
        ptexts = [r.text or "" for r in private]
        htexts = [r.text or "" for r in holdout]
        idx = RareContentIndex(ptexts, ptexts + htexts, max_df=p.max_df, bigrams=p.bigrams, other_texts=htexts)
        _, hm, _ = idx.scores(htexts, exclude_other=list(range(len(htexts))))
        sb, sm, sarg = idx.scores([r.text or "" for r in synthetic])
        q, how_q, guar = conformal_threshold(hm, p.rate(), "upper")
        thr = max(p.min_specific, p.margin * q)
        for r, m, b, j in zip(synthetic, sm, sb, sarg, strict=True):
            if m > thr and j >= 0:
                res.findings.append(Finding(r.id, "rare_content", {"specific_overlap": round(float(m), 2), "overlap": round(float(b), 2),
                                                                  "threshold": round(thr, 2), "private_id": private[int(j)].id}))
        how_m = ("specific overlap M = S(best private record) − S(runner-up), S = Σ IDF of shared content units (content words and "
                 f"content bigrams; IDF over {idx.n_reference} private ∪ holdout records; units in > {p.max_df:.0%} of them weigh 0)")
        res.figure("threshold", round(thr, 2), f"max({p.min_specific}, {p.margin} × q), q = {q:.2f}: {how_q} (M of each holdout record)")
        res.certified_rate_figure(guar, p.rate())
        res.figure("holdout_specific_overlap_median", round(float(np.median(hm)), 2), how_m + ", holdout records")
        res.figure("synthetic_specific_overlap_median", round(float(np.median(sm)), 2) if len(sm) else None, how_m + ", synthetic records")
        res.figure("share_above_holdout_quantile", round(float((sm > q).mean()), 4) if len(sm) else 0.0,
                   f"share of synthetic records with M above q (≤ {p.rate():.2%} expected without memorisation)")
        res.figure("flagged", len(res.findings), "synthetic records with M above the threshold (quarantined; matched private id in the finding)")
        res.sections["specific_overlap_hist"] = {
            "plot": {"kind": "histogram", "title": "Patient-specific content shared with one private record", "xlabel": "specific overlap M (IDF units)",
                     "series": {"synthetic": [round(float(x), 3) for x in sm], "holdout": [round(float(x), 3) for x in hm]}},
            "caption": f"M for synthetic vs holdout (real, unseen) records; flagged above {thr:.1f}. Synthetic mass right of the holdout's would indicate memorised content."}
        share = len(res.findings) / max(len(synthetic), 1)
        if share > p.max_flagged_share:
            res.verdict = "fail"
            res.release_reasons.append(f"{share:.1%} of records reproduce one private record's specific content (policy allows {p.max_flagged_share:.1%})")
        return res
