import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from medsynth.exceptions import DataFormatError
from medsynth.registry import IMPUTERS
from medsynth.tabular import METHODS, Imputer, rubin_pool


@parametrize_with_checks([Imputer(method="chained", max_iter=1), Imputer(method="mice")])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([Imputer(max_iter=1)])
def test_sklearn_compatible_auto(estimator, check):
    check(estimator)


def _data(seed=0, n=150):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    X = np.c_[x0, 2 * x0 + 0.1 * rng.normal(size=n), np.exp(rng.normal(size=n)), rng.normal(size=n)]
    M = X.copy()
    M[rng.random(M.shape) < 0.25] = np.nan
    return X, M


def test_learns_dependencies_and_keeps_observed_cells():
    X, M = _data()
    out = Imputer().fit_transform(M)
    obs = ~np.isnan(M)
    assert np.array_equal(out[obs], M[obs])
    miss = np.isnan(M[:, 1])
    mean_rmse = np.sqrt(np.mean((np.nanmean(M[:, 1]) - X[miss, 1]) ** 2))
    our_rmse = np.sqrt(np.mean((out[miss, 1] - X[miss, 1]) ** 2))
    # a quarter of these rows also miss column 0 (then nothing beats the mean): the best possible ratio is ~0.5
    assert our_rmse < 0.65 * mean_rmse
    assert out[:, 2].min() >= np.nanmin(M[:, 2]) - 1e-9  # clipped to the observed range


def test_dataframe_mixed_types_roundtrip():
    rng = np.random.default_rng(1)
    n = 120
    age = rng.integers(20, 90, n)
    df = pd.DataFrame({"age": age, "sbp": 100 + age * 0.8 + rng.normal(0, 5, n), "sex": rng.choice(["F", "M"], n),
                       "smoker": rng.choice([True, False], n), "grade": pd.Categorical(rng.choice(["a", "b", "c"], n))},
                      index=pd.RangeIndex(100, 100 + n))
    m = df.copy()
    m.loc[m.sample(frac=0.2, random_state=0).index, "sbp"] = np.nan
    m.loc[m.sample(frac=0.1, random_state=1).index, "sex"] = np.nan
    m["smoker"] = m["smoker"].astype(object)
    m.loc[m.sample(frac=0.1, random_state=2).index, "smoker"] = np.nan
    imp = Imputer()
    out, std = imp.fit_transform(m), None
    assert list(out.columns) == list(m.columns) and out.index.equals(m.index)
    assert out.isna().sum().sum() == 0
    assert set(out["sex"]) <= {"F", "M"}
    obs = m.notna()
    for c in m.columns:
        assert (out.loc[obs[c], c].astype(str) == m.loc[obs[c], c].astype(str)).all()
    mask = imp.imputed_mask(m)
    assert mask.sum() == m.isna().sum().sum()
    res, sd = imp.transform(m, return_std=True)
    assert (sd.to_numpy()[~mask] == 0).all() and (sd["sbp"][m["sbp"].isna()] > 0).all()


def test_multiple_imputation_spread_and_rubin():
    X, M = _data(2)
    imp = Imputer(method="chained", n_imputations=5, random_state=0).fit(M)
    out, sd = imp.transform(M, return_std=True)
    assert (sd[np.isnan(M)] > 0).mean() > 0.9 and (sd[~np.isnan(M)] == 0).all()
    pooled = rubin_pool([1.0, 1.2, 0.9, 1.1], [0.04, 0.05, 0.04, 0.05])
    assert abs(pooled["estimate"] - 1.05) < 1e-9 and pooled["total"] > pooled["within"]
    with pytest.raises(ValueError):
        rubin_pool([1.0], [0.1])


def test_bad_input():
    X, M = _data()
    M[0, 0] = np.inf
    with pytest.raises(DataFormatError, match="infinite"):
        Imputer().fit(M)
    with pytest.raises(ValueError, match="unknown method"):
        Imputer(method="magic").fit(_data()[1])
    df = pd.DataFrame({"a": [1, "x", 3.0, None], "b": [1.0, 2.0, None, 4.0]})
    with pytest.raises(DataFormatError, match="mixes value types"):
        Imputer().fit(df)
    # all-missing column: kept, filled with 0 (documented), others still imputed
    X, M = _data()
    M[:, 3] = np.nan
    out = Imputer(method="chained").fit_transform(M)
    assert not np.isnan(out).any()
    # no missing cells: unchanged
    assert np.array_equal(Imputer(method="chained").fit_transform(X), X)


def test_unseen_category_is_reimputed():
    df = pd.DataFrame({"x": np.arange(40.0), "c": ["a", "b"] * 20})
    imp = Imputer(method="chained").fit(df)
    new = pd.DataFrame({"x": [1.0, 2.0], "c": ["zzz", "a"]})
    with pytest.warns(UserWarning, match="column 'c': 1 categor"):
        out = imp.transform(new)
    assert out["c"].iloc[0] in ("a", "b")


def test_registered_methods():
    assert set(METHODS) <= set(IMPUTERS.names())


def test_impute_cli_writes_table_and_mask(tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "c": rng.choice(["x", "y"], 60)})
    df.loc[::7, "a"] = np.nan
    df.loc[::5, "c"] = np.nan
    src = tmp_path / "t.csv"
    df.to_csv(src, index=False)
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "impute", "--in", str(src), "--out", str(tmp_path / "o.csv"), "--method", "chained"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(tmp_path / "o.csv")
    mask = pd.read_csv(tmp_path / "o.mask.csv")
    assert out.isna().sum().sum() == 0 and mask.to_numpy().sum() == df.isna().sum().sum()
    assert np.allclose(out.loc[df["a"].notna(), "a"], df.loc[df["a"].notna(), "a"])
