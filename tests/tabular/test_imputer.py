"""The Imputer: scikit-learn contract, accuracy on known structure, mixed DataFrames, uncertainty, bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from medsynth.exceptions import DataFormatError
from medsynth.registry import IMPUTERS
from medsynth.tabular import LEARNERS, METHODS, Imputer, rubin_pool
from medsynth.tabular._chain import propensity_mask
from medsynth.tabular._gaussian import GaussianEM


@parametrize_with_checks([Imputer(), Imputer(method="select", max_iter=1), Imputer(method="mice"), Imputer(method="hgb")])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    X = np.c_[x0, 2 * x0 + 0.1 * rng.normal(size=n), np.exp(rng.normal(size=n)), rng.normal(size=n)]
    M = X.copy()
    M[rng.random(M.shape) < 0.25] = np.nan
    return X, M


def test_learns_dependencies_keeps_observed_cells_and_clips():
    X, M = _data()
    imp = Imputer()
    out = imp.fit_transform(M)
    obs = ~np.isnan(M)
    assert np.array_equal(out[obs], M[obs])
    miss = np.isnan(M[:, 1])
    mean_rmse = np.sqrt(np.mean((np.nanmean(M[:, 1]) - X[miss, 1]) ** 2))
    our_rmse = np.sqrt(np.mean((out[miss, 1] - X[miss, 1]) ** 2))
    # a quarter of these rows also miss column 0 (then nothing beats the mean): the best possible ratio is ~0.5
    assert our_rmse < 0.65 * mean_rmse
    assert out[:, 2].min() >= np.nanmin(M[:, 2]) - 1e-9  # clipped to the observed range
    # the stack's validation: column 1 (a near-copy of column 0) is predictable, column 3 (noise) is not
    summ = {s["column"]: s for s in imp.summary()}
    assert summ["1"]["learner_nrmse"]["linear"] < 0.8 * summ["1"]["learner_nrmse"]["mean"] and summ["1"]["weights"]["mean"] <= 0.1
    assert min(summ["3"]["learner_nrmse"].values()) > 0.9 * summ["3"]["learner_nrmse"]["mean"]
    assert summ["1"]["validation_nrmse"] < summ["3"]["validation_nrmse"]
    assert abs(sum(summ["1"]["weights"].values()) - 1) < 1e-9
    # transform of new rows uses the fitted models (close to the in-fit imputations)
    again = imp.transform(M)
    assert np.sqrt(np.mean((again[~obs] - out[~obs]) ** 2)) < 0.25 * np.nanstd(M)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "auto"])
def test_every_method_completes_and_keeps_observed(method):
    X, M = _data(1, n=80)
    out = Imputer(method=method, max_iter=2, n_estimators=10).fit_transform(M)
    assert not np.isnan(out).any() and np.array_equal(out[~np.isnan(M)], M[~np.isnan(M)])


def test_dataframe_mixed_types_roundtrip():
    rng = np.random.default_rng(1)
    n = 150
    age = rng.integers(20, 90, n)
    sex = rng.choice(["F", "M"], n)
    df = pd.DataFrame({"age": age, "sbp": 100 + age * 0.8 + (sex == "M") * 8 + rng.normal(0, 5, n), "sex": sex,
                       "smoker": rng.choice([True, False], n), "grade": pd.Categorical(rng.choice(["a", "b", "c"], n)),
                       "visits": pd.array(rng.integers(0, 5, n), dtype="Int64")}, index=pd.RangeIndex(100, 100 + n))
    m = df.copy()
    m.loc[m.sample(frac=0.2, random_state=0).index, "sbp"] = np.nan
    m.loc[m.sample(frac=0.1, random_state=1).index, "sex"] = np.nan
    m["smoker"] = m["smoker"].astype(object)
    m.loc[m.sample(frac=0.1, random_state=2).index, "smoker"] = np.nan
    m.loc[m.sample(frac=0.1, random_state=3).index, "grade"] = np.nan
    m.loc[m.sample(frac=0.1, random_state=4).index, "visits"] = pd.NA
    imp = Imputer(max_iter=2)
    out, sd = imp.fit_transform(m, return_std=True)
    assert list(out.columns) == list(m.columns) and out.index.equals(m.index)
    assert (out.dtypes == m.dtypes).all(), (out.dtypes, m.dtypes)
    assert out.isna().sum().sum() == 0
    assert set(out["sex"]) <= {"F", "M"} and set(out["smoker"]) <= {True, False} and set(out["grade"]) <= {"a", "b", "c"}
    assert set(out["visits"]) <= set(range(5))  # Int64: rounded to valid integers
    obs = m.notna()
    for c in m.columns:
        assert (out.loc[obs[c], c].astype(str) == m.loc[obs[c], c].astype(str)).all()
    mask = imp.imputed_mask(m)
    assert mask.sum() == m.isna().sum().sum()
    assert (sd.to_numpy()[~mask] == 0).all() and (sd["sbp"][m["sbp"].isna()] > 0).all()
    assert ((sd["sex"][m["sex"].isna()] >= 0) & (sd["sex"][m["sex"].isna()] <= 1)).all()
    # sbp depends on age: imputations beat the mean
    h = m["sbp"].isna()
    assert np.sqrt(((out.loc[h, "sbp"] - df.loc[h, "sbp"]) ** 2).mean()) < 0.6 * np.sqrt(((m["sbp"].mean() - df.loc[h, "sbp"]) ** 2).mean())


def test_multiple_imputation_spread_and_rubin():
    X, M = _data(2)
    imp = Imputer(n_imputations=5, max_iter=2, random_state=0).fit(M)
    out, sd = imp.transform(M, return_std=True)
    assert (sd[np.isnan(M)] > 0).mean() > 0.9 and (sd[~np.isnan(M)] == 0).all()
    draws = imp.multiple_imputations(M)
    assert len(draws) == 5 and all(np.array_equal(d[~np.isnan(M)], M[~np.isnan(M)]) for d in draws)
    assert not np.allclose(draws[0], draws[1])
    # pooled mean of column 3 over the draws, with its within (sampling) and between (imputation) variance
    q = [d[:, 3].mean() for d in draws]
    u = [d[:, 3].var(ddof=1) / len(d) for d in draws]
    pooled = rubin_pool(q, u)
    assert pooled["between"] > 0 and pooled["total"] > pooled["within"] and abs(pooled["estimate"] - X[:, 3].mean()) < 4 * pooled["se"]
    fixed = rubin_pool([1.0, 1.2, 0.9, 1.1], [0.04, 0.05, 0.04, 0.05])
    assert abs(fixed["estimate"] - 1.05) < 1e-9 and abs(fixed["total"] - (0.045 + 1.25 * np.var([1.0, 1.2, 0.9, 1.1], ddof=1))) < 1e-12
    with pytest.raises(ValueError):
        rubin_pool([1.0], [0.1])
    with pytest.raises(ValueError, match="n_imputations >= 2"):
        Imputer().fit(M).multiple_imputations(M)


def test_propensity_mask_follows_the_missingness():
    rng = np.random.default_rng(0)
    n = 2000
    x0 = rng.normal(size=n)
    A = np.c_[x0, x0 + rng.normal(size=n)]
    p = 1 / (1 + np.exp(-2 * x0))  # column 1 goes missing when x0 is high (MAR)
    A[rng.random(n) < 0.6 * p, 1] = np.nan
    val = propensity_mask(A, 0.2, np.random.default_rng(1), [1])
    obs = ~np.isnan(A[:, 1])
    assert val[:, 0].sum() == 0 and not (val[:, 1] & ~obs).any()
    assert 0.1 < val[:, 1].sum() / obs.sum() < 0.3
    # hidden cells sit where cells go missing: their x0 is above the observed rows' mean
    assert x0[val[:, 1]].mean() > x0[obs].mean() + 0.2
    uniform = propensity_mask(A, 0.2, np.random.default_rng(1), [1], use_propensity=False)
    assert abs(x0[uniform[:, 1]].mean() - x0[obs].mean()) < 0.15


def test_gaussian_em_recovers_covariance_and_conditional_means():
    rng = np.random.default_rng(0)
    C = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), C, size=3000)
    M = X.copy()
    M[rng.random(M.shape) < 0.3] = np.nan
    em = GaussianEM(ridge=1e-3).fit(M)
    assert np.abs(em.cov_ - C).max() < 0.08
    out = em.predict(np.array([[1.0, np.nan, np.nan]]))
    assert abs(out[0, 1] - 0.8) < 0.08 and abs(out[0, 0] - 1.0) < 1e-12


def test_bad_input():
    X, M = _data()
    Mi = M.copy()
    Mi[0, 0] = np.inf
    with pytest.raises(DataFormatError, match="infinite"):
        Imputer().fit(Mi)
    with pytest.raises(ValueError, match="unknown method"):
        Imputer(method="magic").fit(M)
    with pytest.raises(ValueError, match="unknown learner"):
        Imputer(learners=("linear", "oracle")).fit(M)
    with pytest.raises(DataFormatError, match="mixes value types"):
        Imputer().fit(pd.DataFrame({"a": [1, "x", 3.0, None], "b": [1.0, 2.0, None, 4.0]}))
    with pytest.raises(DataFormatError, match="dates"):
        Imputer().fit(pd.DataFrame({"d": pd.date_range("2020-01-01", periods=4), "b": [1.0, 2.0, None, 4.0]}))
    with pytest.raises(DataFormatError, match="identifier or free text"):
        Imputer(max_categories=10).fit(pd.DataFrame({"mrn": [f"p{i}" for i in range(30)], "b": np.r_[np.nan, np.arange(29.0)]}))
    # an object column of numbers only is numeric
    obj = pd.DataFrame({"a": pd.Series([1, 2.5, None, 4, 5, 6], dtype=object), "b": [1.0, 2.0, 3.0, None, 5.0, 6.0]})
    assert Imputer(method="chained").fit_transform(obj)["a"].notna().all()
    # all-missing column: an error naming it, or kept missing / zero on request
    E = M.copy()
    E[:, 3] = np.nan
    with pytest.raises(DataFormatError, match="column.*3.*no observed value"):
        Imputer().fit(E)
    with pytest.warns(UserWarning, match="left missing"):
        kept = Imputer(method="chained", empty_columns="keep").fit_transform(E)
    assert np.isnan(kept[:, 3]).all() and not np.isnan(kept[:, :3]).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        zero = Imputer(method="chained", empty_columns="zero").fit_transform(E)
    assert (zero[:, 3] == 0).all()
    # constant column: filled with its constant
    Cst = M.copy()
    Cst[:, 2] = np.where(np.isnan(Cst[:, 2]), np.nan, 7.0)
    assert (Imputer().fit_transform(Cst)[:, 2] == 7.0).all()
    # no missing cells: unchanged, and the fitted models still impute new rows
    imp = Imputer(method="chained")
    assert np.array_equal(imp.fit_transform(X), X)
    new = X[:5].copy()
    new[:, 1] = np.nan
    filled = imp.transform(new)
    assert not np.isnan(filled).any() and np.abs(filled[:, 1] - X[:5, 1]).max() < 1.0


def test_unseen_category_is_reimputed():
    df = pd.DataFrame({"x": np.arange(40.0), "c": ["a", "b"] * 20})
    imp = Imputer(method="chained").fit(df)
    new = pd.DataFrame({"x": [1.0, 2.0], "c": ["zzz", "a"]})
    with pytest.warns(UserWarning, match="column 'c': 1 value"):
        out = imp.transform(new)
    assert out["c"].iloc[0] in ("a", "b") and out["c"].iloc[1] == "a"
    assert imp.imputed_mask(new).tolist() == [[False, True], [False, False]]
    with pytest.raises(DataFormatError, match="columns differ"):
        imp.transform(new[["c", "x"]])


def test_registered_methods_and_learners():
    assert set(METHODS) <= set(IMPUTERS.names())
    assert {"linear", "extra_trees", "gaussian", "mean", "hgb"} <= set(LEARNERS)


def test_bad_input_in_dataframes_names_the_column():
    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame({"age": rng.normal(60, 10, n), "ward": rng.choice(["a", "b"], n), "site": ["x"] * n, "lab": rng.normal(size=n)})
    df.loc[::7, "age"] = np.nan
    df.loc[::5, "ward"] = np.nan
    df.loc[::6, "site"] = np.nan  # constant categorical column: filled with its only level
    inf = df.copy()
    inf.loc[3, "lab"] = -np.inf
    with pytest.raises(DataFormatError, match="infinite"):
        Imputer(method="chained").fit(inf)
    empty = df.copy()
    empty["lab"] = np.nan
    with pytest.raises(DataFormatError, match="lab.*no observed value"):
        Imputer(method="chained").fit(empty)
    out = Imputer(method="chained").fit_transform(df)
    assert (out["site"] == "x").all() and set(out["ward"]) == {"a", "b"} and not out.isna().any().any()
    # no missing cell: returned unchanged (values, dtypes, index)
    full = out.copy()
    again = Imputer(method="chained").fit_transform(full)
    pd.testing.assert_frame_equal(again, full)
