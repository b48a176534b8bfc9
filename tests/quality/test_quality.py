import math
import random

import numpy as np
import pytest

from medsynth.data.records import Record
from medsynth.quality.correctness import train_oracle
from medsynth.quality.diversity import coverage_density, distinct_n, embedding_spread, self_bleu, self_bleu_scores, tokenize
from medsynth.lm import text_perplexities
from medsynth.quality.naturalness import discriminator, discriminator_auc


def test_self_bleu_orders_diversity():
    same = ["the heart is normal in size and the lungs are clear"] * 20
    varied = [f"patient {i} has finding {i * 7} near zone {i % 5} with {i * 3} nodules and note {i * 11}" for i in range(20)]
    assert self_bleu(same, 20) > 0.9
    assert self_bleu(varied, 20) < self_bleu(same, 20)
    assert math.isnan(self_bleu(["one"], 10))


def test_fast_self_bleu_equals_nltk_sentence_bleu_against_all_others():
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    rng = random.Random(0)
    words = "the heart is normal size lungs are clear no effusion pneumothorax mild cardiomegaly left right".split()
    toks = [[rng.choice(words) for _ in range(rng.randint(0, 18))] for _ in range(40)] + [["the", "heart"]] * 3 + [["a"]]
    sm = SmoothingFunction().method1
    ref = [sentence_bleu(toks[:i] + toks[i + 1 :], h, weights=(0.25,) * 4, smoothing_function=sm) for i, h in enumerate(toks)]
    assert np.allclose(self_bleu_scores(toks), ref, atol=1e-12)
    texts = [" ".join(t) for t in toks if t]
    legacy = self_bleu(texts, 1000, max_refs=10_000)  # NLTK itself, all references
    assert self_bleu(texts, 1000) == pytest.approx(legacy, abs=1e-12)


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b c"], 2) == 1.0
    assert tokenize("Heart, normal.") == ["heart", ",", "normal", "."]


def test_embedding_spread_and_coverage():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    like = rng.normal(size=(200, 8))
    like /= np.linalg.norm(like, axis=1, keepdims=True)
    collapsed = np.repeat(real[:1], 200, axis=0)
    cov_like, dens_like = coverage_density(real, like, k=5)
    cov_col, dens_col = coverage_density(real, collapsed, k=5)
    assert cov_like > 0.8 and cov_col < 0.1 and 0.5 < dens_like < 1.5
    assert embedding_spread(like) > embedding_spread(collapsed) + 0.5
    assert math.isnan(coverage_density(real[:3], like)[0])


def test_oracle_agreement_and_discriminator():
    texts = [f"cardiomegaly enlarged heart case {i}" for i in range(30)] + [f"clear lungs normal study case {i}" for i in range(30)]
    labels = [["Cardiomegaly"]] * 30 + [["normal"]] * 30
    o = train_oracle(texts, labels)
    assert o.cv_micro_f1 > 0.9
    agree = o.agreement(["enlarged heart cardiomegaly", "normal clear lungs"], [["Cardiomegaly"], ["Cardiomegaly"]])
    assert agree[0] == 1.0 and agree[1] == 0.0
    real = [f"lungs clear heart normal {i}" for i in range(40)]
    fake = [f"zzz qqq {i}" for i in range(30)] + [f"lungs clear heart normal {i}" for i in range(40, 60)]
    assert discriminator_auc(real, [f"zzz qqq {i}" for i in range(40)]) > 0.9
    auc, per = discriminator(real, fake)
    assert len(per) == len(fake) and all(0 <= p <= 1 for p in per)
    assert np.mean(per[:30]) > np.mean(per[30:]) + 0.3  # the odd records are the ones the discriminator spots


def test_perplexity_with_a_tiny_lm():
    from tests.helpers import build_tiny_lm

    model, tok = build_tiny_lm()
    ppl = text_perplexities(model, tok, ["the lungs are clear", "", "heart size is normal and the lungs are clear"], batch_size=2)
    assert math.isnan(ppl[1]) and all(p > 1 for p in (ppl[0], ppl[2]))
    # the tiny model is untrained: perplexity ≈ vocabulary size
    assert 50 < ppl[0] < 5 * len(tok)


def _recs(n, label, text, scores=None):
    return [Record(id=f"{label}{i}", text=text.format(i=i), labels=[label], scores=dict(scores or {})) for i in range(n)]


def test_score_step_writes_per_record_and_per_set_figures(tmp_path):
    from medsynth.steps.quality import ScoreConfig, ScoreStep
    from medsynth.recipe.engine import make_test_context

    real = _recs(30, "Cardiomegaly", "the heart is enlarged, cardiomegaly, case {i}") + _recs(30, "normal", "lungs clear and heart normal, study {i}")
    syn = _recs(12, "Cardiomegaly", "enlarged heart with cardiomegaly, record {i}") + _recs(12, "normal", "zzz unrelated words {i}")
    step = ScoreStep(ScoreConfig(name="score", reference="private", embeddings=False))
    ctx = make_test_context(tmp_path, {"input": syn, "private": real}, step=step)
    step.run(ctx)
    from medsynth.data.io import read_records

    recs = read_records(ctx.step_dir / "test.jsonl")
    names = {f["name"] for f in ctx.figures}
    for n in ("oracle_cv_micro_f1", "oracle_agreement_mean", "self_bleu4_synthetic", "self_bleu4_real", "distinct_3_real", "discriminator_auc"):
        assert n in names, n
    assert all(f["how"] for f in ctx.figures)
    assert ctx.sections["oracle_agreement_hist"]["plot"]["kind"] == "histogram"
    assert ctx.sections["diversity"]["plot"]["kind"] == "bars"
    assert len(recs) == len(syn) and all("oracle_agreement" in r.scores and "p_synthetic" in r.scores for r in recs)


@pytest.mark.slow
def test_score_step_embeddings_coverage(tmp_path):
    from medsynth.steps.quality import ScoreConfig, ScoreStep
    from medsynth.recipe.engine import make_test_context

    real = _recs(20, "normal", "lungs clear and heart normal, study {i}") + _recs(20, "Effusion", "left pleural effusion, small, case {i}")
    syn = [Record(id=f"s{i}", text=f"lungs clear and heart normal, study {i + 3}", labels=["normal"]) for i in range(15)]
    step = ScoreStep(ScoreConfig(name="score", reference="private", discriminator=False))
    ctx = make_test_context(tmp_path, {"input": syn, "private": real}, step=step)
    step.run(ctx)
    f = {x["name"]: x["value"] for x in ctx.figures}
    assert 0 < f["coverage"] < 0.8  # only the 'normal' half of the real data is reached
    assert f["embedding_spread_synthetic"] < f["embedding_spread_real"]


def test_filter_thresholds_top_k_and_fraction_keep_balance(tmp_path):
    from medsynth.exceptions import RecipeError
    from medsynth.steps.quality import FilterConfig, FilterStep
    from medsynth.recipe.engine import make_test_context

    recs = [Record(id=f"a{i}", text="x", labels=["A"], scores={"oracle_agreement": i / 10, "p_synthetic": 0.5}) for i in range(10)]
    recs += [Record(id=f"b{i}", text="x", labels=["B"], scores={"oracle_agreement": i / 4, "p_synthetic": 0.5}) for i in range(4)]
    recs += [Record(id="c0", text="x", labels=["B"], scores={})]

    def run(**cfg):
        step = FilterStep(FilterConfig(name="filter", **cfg))
        ctx = make_test_context(tmp_path / str(len(list(tmp_path.iterdir()))), {"input": recs}, step=step)
        step.run(ctx)
        return ctx

    ctx = run(min_scores={"oracle_agreement": 0.25}, max_scores={"p_synthetic": 0.9}, top_k_per_label=2)
    kept = {f["name"]: f["value"] for f in ctx.figures}["kept"]
    assert kept == 4  # 2 per label, balanced
    reasons = [q["reason"] for q in ctx.quarantined]
    assert "missing_score:oracle_agreement,p_synthetic" in reasons and reasons.count("below_threshold:oracle_agreement") == 4
    assert ctx.sections["label_balance"]["plot"]["groups"]["after"] == {"A": 2, "B": 2}
    ctx = run(top_fraction_per_label=0.5)
    assert ctx.sections["label_balance"]["plot"]["groups"]["after"] == {"A": 5, "B": 2}  # label distribution kept
    ctx = run(top_k_per_label=1, rank_by="oracle_agreement", descending=False)
    kept_ids = {q["record"]["id"] for q in ctx.quarantined}
    assert "a0" not in kept_ids and "b0" not in kept_ids  # ascending: the lowest score wins
    with pytest.raises(RecipeError, match="perplexity"):
        run(max_scores={"perplexity": 40})
    with pytest.raises(ValueError):
        FilterConfig(name="f", top_k_per_label=2, top_fraction_per_label=0.5)
