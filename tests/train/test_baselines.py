"""The prior predictor and the usefulness verdict: a model is `useful` only when it beats the label frequencies
with confidence; a model that ranks like the prior, or at random, is `not_useful`."""

from __future__ import annotations

import numpy as np

from medsynth.data.records import Record
from medsynth.train.baselines import prior_proba, usefulness


def _recs(labels):
    return [Record(id=f"r{i}", text="x", labels=labs) for i, labs in enumerate(labels)]


def test_prior_is_the_training_label_frequencies():
    train = _recs([["a"], ["a"], ["b"], ["a"]])
    P = prior_proba(train, ["a", "b"], "multiclass", 3)
    assert P.shape == (3, 2) and np.allclose(P, [[0.75, 0.25]] * 3)
    multi = _recs([["a", "b"], ["b"], ["b"], ["c"]])
    Q = prior_proba(multi, ["a", "b", "c"], "multilabel", 2)
    assert np.allclose(Q, [[0.25, 0.75, 0.25]] * 2)


def test_verdicts_for_a_skilled_a_prior_like_and_a_random_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(300, 3))
    prior = np.tile(y.mean(0), (300, 1))
    skilled = np.clip(y * 0.6 + rng.random((300, 3)) * 0.4, 0, 1)
    u = usefulness(y, skilled, prior, "multilabel", 3, n_boot=200)
    assert u["verdict"] == "useful" and u["auroc"] > 0.9 and u["auroc_prior"] == 0.5 and u["auroc_gain_ci95"][0] > 0
    same = usefulness(y, prior + 1e-9, prior, "multilabel", 3, n_boot=200)
    assert same["verdict"] == "not_useful" and abs(same["auroc_gain"]) < 1e-9
    noise = usefulness(y, rng.random((300, 3)), prior, "multilabel", 3, n_boot=200)
    assert noise["verdict"] == "not_useful" and noise["auroc_gain_ci95"][0] < 0 < noise["auroc_gain_ci95"][1]
    # single-label task: probabilities over the classes
    yc = rng.integers(0, 3, size=200)
    good = np.eye(3)[yc] * 0.7 + 0.1
    assert usefulness(yc, good, np.tile([1 / 3] * 3, (200, 1)), "multiclass", 3, n_boot=100)["verdict"] == "useful"


def test_an_evaluation_set_of_one_class_is_not_assessed():
    y = np.zeros(50, dtype=int)
    u = usefulness(y, np.tile([0.9, 0.1], (50, 1)), np.tile([0.5, 0.5], (50, 1)), "multiclass", 2)
    assert u["verdict"] == "not_assessed" and "one class" in u["reason"]
