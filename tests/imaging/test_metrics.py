import numpy as np
import pytest

from medsynth.imaging.metrics import (
    calibrate_thresholds,
    condition_accuracy,
    fit_feature_net,
    frechet_distance,
    mae,
    nearest_neighbours,
    pairwise_diversity,
    psnr,
    ssim,
)
from medsynth.imaging.phantom import PhantomGenerator


@pytest.fixture(scope="module")
def phantoms():
    cs = PhantomGenerator(size=24, seed=2, prevalence={"Opacity": 0.5}).cases(60)
    return np.stack([c.images["standard"] for c in cs]), [c.labels for c in cs]


def test_ssim_psnr_mae(phantoms):
    X, _ = phantoms
    assert ssim(X[:4], X[:4]) == pytest.approx(np.ones(4), abs=1e-5)
    noisy = np.clip(X[:4] + np.random.default_rng(0).normal(0, 0.05, X[:4].shape), 0, 1).astype(np.float32)
    s = ssim(X[:4], noisy)
    assert (s < 0.95).all() and (s > 0.2).all()
    assert (ssim(X[:4], X[4:8]) < 1).all()
    assert mae(X[:2], X[:2]) == pytest.approx([0, 0]) and (mae(X[:2], noisy[:2]) > 0.01).all()
    assert (psnr(X[:2], noisy[:2]) < 40).all() and (psnr(X[:2], noisy[:2]) > 15).all()


def test_frechet_distance_separates_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    c = rng.normal(loc=1.0, size=(400, 8))
    assert frechet_distance(a, b) < 0.3 < frechet_distance(a, c)
    assert frechet_distance(a, c) == pytest.approx(8.0, rel=0.25)  # ||Δμ||² = 8 for a unit shift in 8 dims


def test_feature_net_learns_a_finding_and_accuracy_semantics(phantoms):
    X, L = phantoms
    net = fit_feature_net(X[:40], L[:40], ["Opacity"], steps=60, seed=0, width=8)
    calibrate_thresholds(net, X[40:50], L[40:50])
    acc = condition_accuracy(net, X[50:], L[50:])
    assert acc["n"] == 10 and set(acc["per_label"]) == {"Opacity"}
    assert acc["per_label"]["Opacity"]["accuracy"] >= 0.7
    assert net.features(X[:3]).shape == (3, net.net.dim)
    # semantics: a classifier that always says "Opacity" recognises every request and never keeps an absent one absent
    net.thresholds = np.array([0.0], np.float32)
    a = condition_accuracy(net, X[:10], [["Opacity"]] * 5 + [[]] * 5)
    assert a["recognised"] == 1.0 and a["absent_ok"] == 0.0 and a["exact"] == 0.5
    # rotation-only features need no labels
    net2 = fit_feature_net(X[:20], None, None, steps=5, seed=0, width=8)
    assert net2.labels == [] and net2.features(X[:2]).shape[0] == 2


def test_nearest_neighbours_and_diversity(phantoms):
    X, _ = phantoms
    q = np.stack([X[7], np.clip(X[9] + 0.01, 0, 1), X[55]])
    nn = nearest_neighbours(q, X[:50], candidates=4)
    assert nn.ssim_index[0] == 7 and nn.ssim[0] == pytest.approx(1.0, abs=1e-5)
    assert nn.ssim_index[1] == 9 and nn.ssim[1] > 0.95
    assert nn.ssim[2] < nn.ssim[0]
    loo = nearest_neighbours(X[:10], X[:10], candidates=3, exclude_self=True)
    assert (loo.ssim_index != np.arange(10)).all() and (loo.ssim < 1).all()
    assert pairwise_diversity(np.repeat(X[:1], 5, 0)) == pytest.approx(0.0, abs=1e-5)
    assert pairwise_diversity(X) > 0.01
