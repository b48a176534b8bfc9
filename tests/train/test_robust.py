"""Noise-robust training: learned weights find flipped labels, temporal ensembling drops them, annealing schedule."""

import pytest

from medsynth.exceptions import RecipeError
from medsynth.train import ClassifierConfig, DPConfig, RobustConfig, fit_classifier
from medsynth.train.robust import AnnealConfig, anneal_weight

from .conftest import row_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # restored after the module, not set at import


def _noisy(n=300, noise=0.3, seed=0):
    clean = row_records(n, seed=seed)
    noisy = row_records(n, seed=seed, noise=noise)
    flipped = [a.labels != b.labels for a, b in zip(clean, noisy, strict=True)]
    return noisy, flipped


def test_reweighting_downweights_flipped_labels():
    noisy, flipped = _noisy()
    clean = row_records(60, seed=7, prefix="c")
    m = fit_classifier(noisy, ClassifierConfig(epochs=2, lr=1e-2), robust=RobustConfig.model_validate({"reweight": {"epochs": 8}}), clean=clean)
    import numpy as np

    w = np.asarray(m.info["_weights"])
    f = np.asarray(flipped)
    assert w[f].mean() < 0.7 * w[~f].mean()


def test_temporal_ensembling_and_label_smoothing_train():
    noisy, _ = _noisy()
    test = row_records(200, seed=3, prefix="t")
    plain = fit_classifier(noisy, ClassifierConfig(epochs=15, lr=1e-2)).evaluate(test)["accuracy"]
    rob = fit_classifier(noisy, ClassifierConfig(epochs=15, lr=1e-2),
                         robust=RobustConfig.model_validate({"temporal": {"drop_below": 0.4}, "label_smoothing": 0.1})).evaluate(test)["accuracy"]
    assert rob >= plain - 0.02 and rob > 0.8


def test_anneal_schedule_and_dp_rules():
    c = AnnealConfig(start=1.0, end=0.2)
    assert anneal_weight(c, 0, 5) == 1.0 and anneal_weight(c, 4, 5) == pytest.approx(0.2)
    assert anneal_weight(AnnealConfig(start=1.0, end=0.0, schedule="cosine"), 2, 5) == pytest.approx(0.5)
    noisy, _ = _noisy(200)
    m = fit_classifier(noisy, ClassifierConfig(epochs=2), robust=RobustConfig.model_validate({"anneal": {}, "label_smoothing": 0.1}),
                       clean=row_records(40, seed=9, prefix="c"), dp=DPConfig(epsilon=3, delta=1e-4))
    assert m.info["n_train"] == 240 and m.privacy["epsilon_rdp"] <= 3
    with pytest.raises(RecipeError, match="cannot be combined with dp"):
        fit_classifier(noisy, robust=RobustConfig.model_validate({"reweight": {}}), clean=noisy[:10], dp=DPConfig(epsilon=3, delta=1e-4))
    with pytest.raises(RecipeError, match="clean records"):
        fit_classifier(noisy, robust=RobustConfig.model_validate({"reweight": {}}))
