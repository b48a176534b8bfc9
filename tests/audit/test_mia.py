"""Membership inference: an overfit non-DP model is detected; a DP model is not; metrics and ROC section."""

import numpy as np
import pytest

from medsynth.audit.mia import MembershipInferenceAudit, MIAPolicy, attack_metrics, lira_scores, logit_confidence
from medsynth.data.records import Record
from medsynth.registry import AUDITS
from medsynth.train import ClassifierConfig, DPConfig, fit_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # restored after the module, not set at import


def _rows(n, seed, prefix):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    flip = rng.random(n) < 0.2  # label noise: a model can only fit these by memorising them
    y = np.where(flip, 1 - y, y)
    return [Record(id=f"{prefix}{i}", kind="row", values={f"x{j}": float(X[i, j]) for j in range(10)}, labels=["a" if y[i] else "b"])
            for i in range(n)]


def test_metrics_on_a_known_separation():
    s = np.r_[np.arange(100) + 1000.0, np.arange(100)]
    m = attack_metrics(s, np.r_[np.ones(100), np.zeros(100)])
    assert m["auc"] == 1.0 and m["tpr_at_fpr_1pct"] == 1.0 and m["roc"]["x"][0] == 0.0
    assert np.allclose(logit_confidence(np.array([np.log(2.0)])), 0.0)  # p = 0.5 → log-odds 0
    # LiRA: records that are IN for shadows with a high φ and whose target φ is high score high
    S = np.array([[5.0, 0.0], [0.0, 0.0], [5.0, 0.1], [0.1, 0.0]])
    IN = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=bool)
    sc = lira_scores(np.array([5.0, 0.0]), S, IN)
    assert sc[0] > sc[1]


@pytest.fixture(scope="module")
def data():
    return _rows(300, 0, "m"), _rows(300, 1, "n")


def test_overfit_model_is_detected_and_dp_model_is_not(data):
    members, nonmembers = data
    cfg = ClassifierConfig(hidden=[256, 256], epochs=60, lr=3e-3, batch_size=32)
    leaky = fit_classifier(members, cfg)
    pol = MIAPolicy(shadows=0)
    r = MembershipInferenceAudit(pol).run([], members, nonmembers, model=leaky)
    figs = {f["name"]: f["value"] for f in r.figures}
    assert figs["membership_inference.loss.auc"] > 0.7 and r.verdict == "fail"
    private = fit_classifier(members, ClassifierConfig(hidden=[256, 256], epochs=20, lr=3e-3, batch_size=32), dp=DPConfig(epsilon=1.0, delta=1e-4))
    r = MembershipInferenceAudit(pol).run([], members, nonmembers, model=private)
    figs = {f["name"]: f["value"] for f in r.figures}
    assert figs["membership_inference.loss.auc"] < 0.58 and "membership_inference.model_epsilon" in figs
    assert r.sections["roc"]["plot"]["kind"] == "lines" and r.sections["roc"]["plot"]["diagonal"]


def test_lira_with_shadow_models(data):
    members, nonmembers = data
    cfg = ClassifierConfig(hidden=[128], epochs=25, lr=5e-3, batch_size=32)
    leaky = fit_classifier(members[:150], cfg)
    r = MembershipInferenceAudit(MIAPolicy(shadows=4)).run([], members[:150], nonmembers[:150], model=leaky, seed=1)
    figs = {f["name"]: f["value"] for f in r.figures}
    assert figs["membership_inference.lira.auc"] > 0.6
    assert 0 <= figs["membership_inference.lira.tpr_at_fpr_1pct"] <= 1


def test_registered_and_skips_without_a_model():
    assert AUDITS.get("membership_inference") is MembershipInferenceAudit
    r = MembershipInferenceAudit().run([], [], [])
    assert r.verdict == "skipped" and "no trained model" in r.reason
    assert r.figures[0]["name"].endswith("skipped")
