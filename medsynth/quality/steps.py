"""``score`` and ``filter`` steps."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from pydantic import Field

from ..recipe.step import Step, StepConfig, StepPlan
from ..registry import STEPS

__all__ = ["ScoreStep", "FilterStep"]


class ScoreConfig(StepConfig):
    type: Literal["score"] = "score"
    reference: str = Field("private", description="real dataset for the oracle, the discriminator and the reference diversity")
    self_bleu_samples: int = Field(1000, ge=10, description="ZeroGen convention: 1,000 samples")
    reference_sample: int = Field(1000, ge=10, description="real records used for reference diversity figures")


@STEPS.register("score")
class ScoreStep(Step):
    """Per-record oracle agreement; per-set diversity (Self-BLEU-4, distinct-n) and naturalness, next to the real data's."""

    type = "score"
    Config = ScoreConfig

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = next(iter(input_sizes.values()), None)
        return StepPlan(records_in=n, records_out=n, est_seconds=30)

    def run(self, ctx: Any) -> None:
        import random

        from .correctness import train_oracle
        from .diversity import distinct_n, self_bleu
        from .naturalness import discriminator_auc

        c: ScoreConfig = self.config  # type: ignore[assignment]
        syn = ctx.input()
        ref = [r for r in ctx.dataset(c.reference) if r.text and r.labels]
        rng = random.Random(ctx.seed)
        ref_s = rng.sample(ref, min(c.reference_sample, len(ref)))
        st = [r.text or "" for r in syn]
        rt = [r.text or "" for r in ref_s]
        oracle = train_oracle([r.text for r in ref], [r.labels for r in ref], seed=ctx.seed)
        agree = oracle.agreement(st, [r.labels for r in syn]) if syn else []
        out = []
        for r, a in zip(syn, agree, strict=True):
            rr = r.model_copy(deep=True)
            rr.scores["oracle_agreement"] = round(a, 4)
            out.append(rr)
        how_sb = (f"NLTK sentence_bleu, 4-gram, smoothing method1, up to {c.self_bleu_samples} sampled texts (ZeroGen convention), each scored "
                  "against 300 randomly sampled other texts of the sample (cost cap)")
        ctx.add_figure("oracle_cv_micro_f1", round(oracle.cv_micro_f1, 4), f"3-fold CV micro-F1 of the oracle (TF-IDF + one-vs-rest logistic regression) on {len(ref)} real '{c.reference}' records")
        if agree:
            ctx.add_figure("oracle_agreement_mean", round(sum(agree) / len(agree), 4), "mean Jaccard(oracle-predicted labels, record labels) over synthetic records")
        for name, texts in (("synthetic", st), ("real", rt)):
            if len(texts) >= 2:
                ctx.add_figure(f"self_bleu4_{name}", round(self_bleu(texts, c.self_bleu_samples, seed=ctx.seed, max_refs=300), 4), how_sb + (f"; real = {len(rt)} sampled '{c.reference}' records" if name == "real" else ""))
                for n in (1, 2, 3):
                    ctx.add_figure(f"distinct_{n}_{name}", round(distinct_n(texts, n), 4), f"unique {n}-grams / all {n}-grams (lower-cased word tokens) over {len(texts)} texts; depends on set size, compare at equal size")
        by_label: dict[str, list[str]] = defaultdict(list)
        for r in syn:
            for lab in r.labels:
                by_label[lab].append(r.text or "")
        ctx.add_section("distinct2_per_label", {lab: round(distinct_n(t, 2), 4) for lab, t in by_label.items() if len(t) >= 3})
        if len(st) >= 10:
            ctx.add_figure("discriminator_auc", round(discriminator_auc(rt, st, seed=ctx.seed), 4), "5-fold CV ROC AUC of a TF-IDF + logistic regression real-vs-synthetic classifier on balanced samples (0.5 = indistinguishable)")
        ctx.write_output(out)


class FilterConfig(StepConfig):
    type: Literal["filter"] = "filter"
    min_scores: dict[str, float] = Field(default_factory=dict, description="keep records with scores[key] ≥ value, e.g. {oracle_agreement: 0.5}")
    top_k_per_label: int | None = Field(None, ge=1, description="then keep the k best records per (first) label by `rank_by`, keeping label balance")
    rank_by: str = "oracle_agreement"


@STEPS.register("filter")
class FilterStep(Step):
    type = "filter"
    Config = FilterConfig

    def run(self, ctx: Any) -> None:
        c: FilterConfig = self.config  # type: ignore[assignment]
        recs = ctx.input()
        keep = []
        for r in recs:
            fails = [k for k, v in c.min_scores.items() if not isinstance(r.scores.get(k), (int, float)) or r.scores[k] < v]
            if fails:
                ctx.quarantine(r, "below_threshold:" + ",".join(fails), "filter")
            else:
                keep.append(r)
        if c.top_k_per_label:
            groups: dict[str, list] = defaultdict(list)
            for r in keep:
                groups[r.labels[0] if r.labels else ""].append(r)
            chosen = []
            for g in groups.values():
                g.sort(key=lambda r: -(r.scores.get(c.rank_by) or 0))
                chosen += g[: c.top_k_per_label]
                for r in g[c.top_k_per_label :]:
                    ctx.quarantine(r, "not_top_k", "filter")
            keep = sorted(chosen, key=lambda r: r.id)
        ctx.add_figure("kept", len(keep), f"records passing {c.min_scores or 'no thresholds'}{f', top {c.top_k_per_label} per label by ' + c.rank_by if c.top_k_per_label else ''}")
        ctx.write_output(keep)
