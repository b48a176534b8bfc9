"""The DP-SGD imputer: scikit-learn contract, observed cells untouched, useful imputations, ε stated, ledger debit."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from medsynth.exceptions import PrivacyBudgetExceededError
from medsynth.ledger import BudgetLedger
from medsynth.registry import IMPUTERS
from medsynth.tabular.dp import DPMLPImputer


@parametrize_with_checks([DPMLPImputer(epochs=2, batch_size=16, hidden=(8,))])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(seed=0, n=1500):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    X = np.c_[x0, 2 * x0 + 0.1 * rng.normal(size=n), -x0 + 0.2 * rng.normal(size=n), rng.normal(size=n)]
    M = X.copy()
    M[rng.random(M.shape) < 0.2] = np.nan
    return X, M


def test_imputes_better_than_the_mean_and_states_epsilon():
    X, M = _data(n=1000)
    imp = DPMLPImputer(epsilon=8.0, delta=1e-5, epochs=30, batch_size=64, lr=3e-3, random_state=0).fit(M)
    out = imp.transform(M)
    obs = ~np.isnan(M)
    assert np.array_equal(out[obs], M[obs])
    miss = np.isnan(M[:, 1]) & ~np.isnan(M[:, 0])
    mean_rmse = np.sqrt(np.mean((np.nanmean(M[:, 1]) - X[miss, 1]) ** 2))
    rmse = np.sqrt(np.mean((out[miss, 1] - X[miss, 1]) ** 2))
    assert rmse < 0.65 * mean_rmse  # DP noise at ε=8 on 1,000 rows; non-private reaches ~0.1
    assert imp.epsilon_ == 8.0 and 0 < imp.epsilon_rdp_ <= 8.0 + 1e-6 and 0 < imp.epsilon_prv_ <= imp.epsilon_rdp_ + 0.5
    assert "data" in imp.dp_scope_  # no public bounds: the scaling is not covered, and it says so
    covered = DPMLPImputer(epochs=1, bounds=[(-5, 5)] * 4).fit(M)
    assert "public bounds" in covered.dp_scope_


def test_dataframe_roundtrip_and_registry():
    X, M = _data(n=300)
    df = pd.DataFrame(M, columns=list("abcd"), index=np.arange(300) + 7)
    out = DPMLPImputer(epochs=2).fit_transform(df)
    assert list(out.columns) == list("abcd") and (out.index == df.index).all() and not out.isna().any().any()
    assert IMPUTERS.get("dp_mlp") is DPMLPImputer


def test_bad_privacy_parameters():
    X, M = _data(n=200)
    with pytest.raises(ValueError, match="epsilon"):
        DPMLPImputer(epsilon=0).fit(M)
    with pytest.raises(ValueError, match="1/n"):
        DPMLPImputer(delta=0.01).fit(M)


def test_debits_the_ledger_before_training(medsynth_home):
    X, M = _data(n=300)
    led = BudgetLedger()
    led.create("labs", epsilon=4.0, delta=1e-4)
    imp = DPMLPImputer(epsilon=3.0, delta=1e-5, epochs=2, budget="labs").fit(M)
    hist = led.history("labs")
    assert len(hist) == 1 and hist[0]["epsilon"] == 3.0 and hist[0]["status"] == "trained" and imp.debit_id_ == hist[0]["id"]
    with pytest.raises(PrivacyBudgetExceededError):
        DPMLPImputer(epsilon=3.0, delta=1e-5, epochs=2, budget="labs").fit(M)
    assert len(led.history("labs")) == 1
