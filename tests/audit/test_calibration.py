"""The holdout calibration of the gate: split-conformal thresholds and the clean-flag budget split."""

import numpy as np
import pytest

from medsynth.audit.base import conformal_threshold
from medsynth.audit.policy import Policy, load_policy
from medsynth.exceptions import RecipeError


@pytest.mark.parametrize("tail", ["upper", "lower"])
@pytest.mark.parametrize("n,rate", [(400, 0.01), (199, 0.025), (999, 0.0025)])
def test_conformal_threshold_false_flag_rate_is_bounded(n, rate, tail):
    # many draws of (holdout, new records) from one population: the realised flag rate of new records averages <= rate
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(400):
        h = rng.lognormal(size=n)
        new = rng.lognormal(size=2000)
        thr, how, guaranteed = conformal_threshold(h, rate, tail)
        rates.append(float((new > thr).mean() if tail == "upper" else (new < thr).mean()))
        assert guaranteed == rate and "split-conformal" in how
    m = float(np.mean(rates))
    assert m <= rate * 1.08  # the mean over draws is the guarantee (plus Monte-Carlo error)
    assert m >= rate * 0.6   # and it is not vacuous: the threshold is not simply the extreme value


def test_a_too_small_holdout_is_said_and_uses_the_extreme():
    h = np.arange(50.0)
    thr, how, guaranteed = conformal_threshold(h, 0.0025, "upper")
    assert thr == 49.0 and "too small" in how and guaranteed == pytest.approx(1 / 51)
    thr, how, _ = conformal_threshold(h, 0.0025, "lower")
    assert thr == 0.0 and "too small" in how
    # the old np.quantile(…, 0.99) sits below the 99% conformal threshold on small holdouts (over-flags)
    assert np.quantile(h, 0.99) < conformal_threshold(h, 0.01, "upper")[0]
    with pytest.raises(ValueError):
        conformal_threshold([], 0.01)


def test_budget_is_split_among_the_calibrated_audits_that_run():
    pol = Policy.model_validate({"clean_flag_budget": 0.01, "audits": {"rare_content": {}, "verbatim_copy": {}, "near_duplicate": {},
                                                                       "dcr": {}, "phi_replay": {}}})
    assert pol.audit_policy("rare_content").false_flag_rate == pytest.approx(0.0025)
    assert pol.audit_policy("rare_content", ["rare_content", "phi_replay"]).false_flag_rate == pytest.approx(0.01)
    assert pol.audit_policy("dcr", ["dcr", "verbatim_copy"]).false_flag_rate == pytest.approx(0.005)
    # a disabled audit takes no share; an explicit rate or a legacy quantile is kept
    pol2 = Policy.model_validate({"audits": {"rare_content": {"quantile": 0.995}, "verbatim_copy": {"false_flag_rate": 0.002},
                                             "near_duplicate": {"enabled": False}, "dcr": {}}})
    assert pol2.audit_policy("rare_content").rate() == pytest.approx(0.005)
    assert pol2.audit_policy("verbatim_copy").rate() == pytest.approx(0.002)
    assert pol2.audit_policy("dcr").false_flag_rate == pytest.approx(0.01 - 0.005 - 0.002)  # own rates are spent first
    pol3 = Policy.model_validate({"audits": {"rare_content": {"budget_weight": 3}, "verbatim_copy": {}, "near_duplicate": {}, "dcr": {}}})
    assert pol3.audit_policy("rare_content").false_flag_rate == pytest.approx(0.005)
    assert pol3.audit_policy("dcr").false_flag_rate == pytest.approx(0.01 / 6)
    pol4 = Policy.model_validate({"audits": {"rare_content": {"false_flag_rate": 0.01}, "dcr": {}}})
    with pytest.raises(RecipeError, match="use up clean_flag_budget"):
        pol4.audit_policy("dcr")


def test_the_shipped_policy_spends_exactly_the_budget():
    pol = load_policy()
    rates = {n: pol.audit_policy(n).rate() for n in ("rare_content", "verbatim_copy", "near_duplicate", "dcr")}
    assert sum(rates.values()) == pytest.approx(pol.clean_flag_budget) and pol.clean_flag_budget == 0.01
    assert rates["rare_content"] == pytest.approx(0.005)


def test_bad_budget_is_explained(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text("clean_flag_budget: 2\naudits:\n  rare_content:\n    false_flag_rate: 0.9\n")
    with pytest.raises(RecipeError) as e:
        load_policy(p)
    said = str(e.value) + " ".join(map(str, e.value.problems))  # the message or one of the listed problems names the key
    assert "clean_flag_budget" in said
