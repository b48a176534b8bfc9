"""Membership inference against a model medsynth trained: can an attacker tell the model's training records
(members) from unseen records of the same population (non-members)?

Two attacks, each scored by AUC and by TPR at FPR 1% and 0.1% (the low-FPR regime is what matters: an attack that
is confidently right about a few patients is a leak even at AUC ≈ 0.5):

- ``loss``: loss-threshold attack (Yeom et al. 2018): a record is called a member when the model's loss on it is low.
- ``lira``: a likelihood-ratio attack with shadow models (Carlini et al. 2022, "online" LiRA with a global
  variance): ``shadows`` models are trained with the target's exact recipe (architecture, epochs, DP noise if any)
  on random halves of members ∪ non-members; for each record the logit-scaled confidence φ = log p − log(1−p)
  (p = exp(−loss)) under the target is compared with Gaussians fitted to φ under the shadows that did (IN) and
  did not (OUT) train on it. Records never IN (or never OUT) fall back to the one-sided OUT test.

The shadow models are internal to the audit: they are never saved or released and do not debit the privacy
budget; the audit's figures are themselves computed from the private records (like every audit) and stay in the
run report. Usage: ``MembershipInferenceAudit().run([], members, nonmembers, model=trained_model)``; the ``train``
step runs it when its ``mia:`` block is set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import Field

from ..data.records import Record
from ..registry import AUDITS
from .base import Audit, AuditPolicy, AuditResult

__all__ = ["MembershipInferenceAudit", "MIAPolicy", "attack_metrics", "lira_scores", "logit_confidence"]


class MIAPolicy(AuditPolicy):
    max_auc: float = Field(0.6, gt=0.5, le=1, description="release fails if any attack's AUC exceeds this: protects against a model "
                                                           "that reveals which patients were in its training data")
    max_tpr_at_1pct_fpr: float = Field(0.05, gt=0, le=1, description="release fails if an attack finds more than this share of members "
                                                                     "at 1% false positives (a few patients identified with confidence)")
    shadows: int = Field(8, ge=0, description="shadow models of the LiRA attack (0: loss attack only)")
    max_records: int = Field(1000, ge=10, description="members and non-members are each sampled down to this many (seeded)")


def logit_confidence(loss: np.ndarray) -> np.ndarray:
    """φ = log p − log(1 − p) with p = exp(−loss), computed stably."""
    loss = np.maximum(np.asarray(loss, dtype="float64"), 1e-12)
    return -loss - np.log(-np.expm1(-loss))


def attack_metrics(scores: np.ndarray, is_member: np.ndarray, max_points: int = 200) -> dict[str, Any]:
    """AUC, TPR at FPR 1% and 0.1%, and a down-sampled ROC (higher score = 'member')."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(is_member, scores)
    out = {"auc": float(roc_auc_score(is_member, scores))}
    for name, x in (("tpr_at_fpr_1pct", 0.01), ("tpr_at_fpr_0.1pct", 0.001)):
        ok = fpr <= x
        out[name] = float(tpr[ok].max()) if ok.any() else 0.0
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    out["roc"] = {"x": [round(float(v), 5) for v in fpr[keep]], "y": [round(float(v), 5) for v in tpr[keep]]}
    return out


def lira_scores(target_phi: np.ndarray, shadow_phi: np.ndarray, shadow_in: np.ndarray) -> np.ndarray:
    """Online LiRA with global variances. ``shadow_phi``/``shadow_in``: [shadows, records]."""
    from scipy.stats import norm

    eps = 1e-6
    in_mask, out_mask = shadow_in.astype(bool), ~shadow_in.astype(bool)
    mu_in = np.where(in_mask.any(0), (shadow_phi * in_mask).sum(0) / np.maximum(in_mask.sum(0), 1), np.nan)
    mu_out = np.where(out_mask.any(0), (shadow_phi * out_mask).sum(0) / np.maximum(out_mask.sum(0), 1), np.nan)
    res_in = (shadow_phi - mu_in)[in_mask] if in_mask.any() else np.array([1.0])
    res_out = (shadow_phi - mu_out)[out_mask] if out_mask.any() else np.array([1.0])
    sd_in = float(np.std(res_in)) + eps
    sd_out = float(np.std(res_out)) + eps
    both = ~np.isnan(mu_in) & ~np.isnan(mu_out)
    score = np.empty_like(target_phi, dtype="float64")
    score[both] = norm.logpdf(target_phi[both], mu_in[both], sd_in) - norm.logpdf(target_phi[both], mu_out[both], sd_out)
    only_out = ~both & ~np.isnan(mu_out)
    score[only_out] = norm.logcdf((target_phi[only_out] - mu_out[only_out]) / sd_out)  # offline: how far above OUT
    rest = ~both & ~only_out
    score[rest] = target_phi[rest]
    return score


def _default_refit(model: Any) -> Callable[[list[Record], int], Any] | None:
    """Retrain the target's recipe (same config and DP noise, no ledger) on other records."""
    from ..train.classifiers import TrainedModel, fit_classifier

    if not isinstance(model, TrainedModel):
        return None
    dp = None
    if model.privacy:
        from ..dp import DPConfig

        pv = model.privacy
        dp = DPConfig(epsilon=pv["epsilon_target"], delta=pv["delta"], max_grad_norm=pv["max_grad_norm"], accountant=pv["accountant"],
                      grad_sample_mode=pv["grad_sample_mode"])

    def refit(records: list[Record], seed: int) -> Any:
        return fit_classifier(records, model.config, dp=dp, seed=seed, labels=model.labels)

    return refit


@AUDITS.register("membership_inference")
class MembershipInferenceAudit(Audit):
    explicit_only = True
    name = "membership_inference"
    Policy = MIAPolicy
    needs_holdout = True

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        p: MIAPolicy = self.policy  # type: ignore[assignment]
        res = AuditResult(self.name, "pass")
        model = context.get("model") or context.get("classifier")
        if model is None:
            return res.skip("no trained model given to the audit (the train step runs it with `mia:`; or pass model=)")
        if isinstance(model, str):
            from ..train.classifiers import TrainedModel

            model = TrainedModel.load(model)
        members = list(context.get("members") or private)
        nonmembers = list(holdout or [])
        if len(members) < 5 or len(nonmembers) < 5:
            res.verdict = "fail"
            res.release_reasons.append(f"membership inference needs ≥ 5 members and ≥ 5 non-members (got {len(members)}, {len(nonmembers)}); "
                                       "give the model's training records and a holdout of unseen real records")
            return res
        rng = np.random.default_rng(int(context.get("seed", 0)))
        if len(members) > p.max_records:
            members = [members[i] for i in sorted(rng.choice(len(members), p.max_records, replace=False))]
        if len(nonmembers) > p.max_records:
            nonmembers = [nonmembers[i] for i in sorted(rng.choice(len(nonmembers), p.max_records, replace=False))]
        pool = members + nonmembers
        is_member = np.array([1] * len(members) + [0] * len(nonmembers))
        loss = np.asarray(model.per_sample_loss(pool), dtype="float64")
        attacks = {"loss": attack_metrics(-loss, is_member)}
        n_shadows = int(context.get("shadows", p.shadows))
        refit = context.get("refit") or _default_refit(model)
        if n_shadows > 0 and refit is not None:
            phi_t = logit_confidence(loss)
            S = np.zeros((n_shadows, len(pool)))
            IN = np.zeros((n_shadows, len(pool)), dtype=bool)
            for k in range(n_shadows):
                # balanced IN/OUT across shadows: each record is IN for half of them (paired complementary halves)
                if k % 2 == 0:
                    perm = rng.permutation(len(pool))
                    half = np.zeros(len(pool), dtype=bool)
                    half[perm[: len(pool) // 2]] = True
                else:
                    half = ~IN[k - 1]
                IN[k] = half
                sm = refit([pool[i] for i in np.flatnonzero(half)], int(rng.integers(2**31)))
                S[k] = logit_confidence(np.asarray(sm.per_sample_loss(pool), dtype="float64"))
            attacks["lira"] = attack_metrics(lira_scores(phi_t, S, IN), is_member)
        nm, nn_ = len(members), len(nonmembers)
        reso = f"ROC resolution 1/{nn_} non-members"
        for a, m in attacks.items():
            how = {"loss": f"loss-threshold attack: score = −loss of the model on {nm} members (training records) vs {nn_} non-members",
                   "lira": f"online LiRA, {n_shadows} shadow models retrained with the target's recipe on random halves of the "
                           f"{nm + nn_} records, global-variance Gaussians on logit-scaled confidence"}[a]
            res.figure(f"{a}.auc", round(m["auc"], 4), how)
            res.figure(f"{a}.tpr_at_fpr_1pct", round(m["tpr_at_fpr_1pct"], 4), f"{how}; TPR at the largest FPR ≤ 1% ({reso})")
            res.figure(f"{a}.tpr_at_fpr_0.1pct", round(m["tpr_at_fpr_0.1pct"], 4), f"{how}; TPR at the largest FPR ≤ 0.1% ({reso})")
        priv = getattr(model, "privacy", None)
        if priv:
            res.figure("model_epsilon", round(float(priv.get("epsilon_" + priv.get("accountant", "rdp"), priv.get("epsilon_target"))), 4),
                       f"ε of the audited model ({priv.get('accountant')} accountant, δ={priv.get('delta')})")
        res.sections["roc"] = {"plot": {"kind": "lines", "title": "Membership inference ROC", "xlabel": "false positive rate",
                                        "ylabel": "true positive rate", "diagonal": True,
                                        "series": {f"{a} (AUC {m['auc']:.3f})": m["roc"] for a, m in attacks.items()}},
                               "caption": f"{nm} members vs {nn_} non-members; the diagonal is a random guess."
                                          + (f" Model trained with DP-SGD (ε={priv.get('epsilon_target')})." if priv else " Model trained without DP.")}
        res.sections["summary"] = {a: {k: v for k, v in m.items() if k != "roc"} for a, m in attacks.items()}
        worst = max(m["auc"] for m in attacks.values())
        worst_tpr = max(m["tpr_at_fpr_1pct"] for m in attacks.values())
        if worst > p.max_auc:
            res.verdict = "fail"
            res.release_reasons.append(f"membership inference AUC {worst:.3f} > {p.max_auc} (the model reveals training membership); "
                                       "train with dp: or on synthetic data only")
        if worst_tpr > p.max_tpr_at_1pct_fpr and nn_ >= 100:
            res.verdict = "fail"
            res.release_reasons.append(f"membership inference TPR {worst_tpr:.3f} at 1% FPR > {p.max_tpr_at_1pct_fpr}")
        if not math.isfinite(worst):  # pragma: no cover - defensive
            res.verdict = "fail"
        return res
