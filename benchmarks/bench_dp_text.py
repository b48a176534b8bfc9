"""DP text classifier on the combined recipe's synthetic reports: which model and DP settings are worth training.

Input: a finished run of recipes/combined_dp.yaml (its audited synthetic reports). Every candidate (frozen MiniLM
embeddings + a head; head size, batch size, clipping norm, learning rate, epochs) is trained with DP-SGD at the
recipe's per-model ε and scored on the IU **validation** split (the recipe's holdout); the best by validation macro
AUROC is then evaluated once on the **test** split, next to the prior predictor and the same model without DP, and
over ε = 1, 2, 4, 8, ∞ (the privacy–utility curve). The test split is never used to choose anything.

Usage: python benchmarks/bench_dp_text.py --run RUN_DIR [--epsilon 2] [--out benchmarks/results/dp_text.json]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)


def _records(run: Path, step: str):
    from medsynth.data.io import read_records
    from medsynth.paths import find_step_dir

    d = find_step_dir(run, step)
    if d is None:
        sys.exit(f"{run} has no step '{step}': give a finished run of recipes/combined_dp.yaml")
    return read_records(d / f"{step}.jsonl")


def _restrict(recs, labels):
    kept = [r.model_copy(update={"labels": [lab for lab in r.labels if lab in labels]}) for r in recs]
    return [r for r in kept if r.labels]


def _fit_eval(train, ev, cfg, dp, seed=0):
    from medsynth.train.baselines import prior_proba, usefulness
    from medsynth.train.classifiers import ClassifierConfig, fit_classifier

    m = fit_classifier(train, ClassifierConfig(model="text_embed", **cfg), dp=dp, seed=seed)
    out = m.evaluate(ev)
    P = m.predict_proba(ev)
    u = usefulness(m.targets(ev).numpy(), P, prior_proba(train, m.labels, m.task, len(ev)), m.task, len(m.labels), n_boot=300, seed=seed)
    out.update(verdict=u["verdict"], auroc_gain_ci95=u.get("auroc_gain_ci95"))
    if m.privacy:
        out["epsilon_rdp"] = m.privacy["epsilon_rdp"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--epsilon", type=float, default=2.0, help="ε per model (the recipe: 4 split over 2 models)")
    ap.add_argument("--delta", type=float, default=5e-6)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/dp_text.json")
    a = ap.parse_args()
    from medsynth.dp import DPConfig

    syn = [r for r in _records(a.run, "audit") if r.kind == "text"]
    labels = {lab for r in syn for lab in r.labels}
    val = _restrict(_records(a.run, "holdout"), labels)
    test = _restrict(_records(a.run, "test"), labels)
    res = {"synthetic_records": len(syn), "labels": sorted(labels), "validation_records": len(val), "test_records": len(test),
           "epsilon": a.epsilon, "delta": a.delta, "how": "DP-SGD (Opacus, RDP) on frozen MiniLM embeddings; candidates ranked by macro AUROC on the "
           "IU validation split; the chosen one evaluated once on the test split", "candidates": []}
    grid = {"hidden": [[], [128, 128]], "batch_size": [16, 64], "max_grad_norm": [0.1, 1.0], "lr": [0.01, 0.1], "epochs": [10, 30]}
    t0 = time.time()
    for values in itertools.product(*grid.values()):
        cfg = dict(zip(grid, values, strict=True))
        clip = cfg.pop("max_grad_norm")
        try:
            r = _fit_eval(syn, val, cfg, DPConfig(epsilon=a.epsilon, delta=a.delta, max_grad_norm=clip))
        except Exception as e:  # noqa: BLE001 - a candidate the accountant cannot reach is reported, not fatal
            r = {"error": type(e).__name__}
        res["candidates"].append({**cfg, "max_grad_norm": clip, "validation": r})
        print(cfg, clip, {k: r.get(k) for k in ("auroc", "micro_f1", "verdict")}, flush=True)
    ok = [c for c in res["candidates"] if "auroc" in c["validation"]]
    best = max(ok, key=lambda c: c["validation"]["auroc"])
    res["chosen"] = {k: v for k, v in best.items() if k != "validation"}
    cfg = {k: v for k, v in res["chosen"].items() if k != "max_grad_norm"}
    res["test"] = {"dp": _fit_eval(syn, test, cfg, DPConfig(epsilon=a.epsilon, delta=a.delta, max_grad_norm=best["max_grad_norm"])),
                   "nondp": _fit_eval(syn, test, cfg, None)}
    shipped = {"hidden": [128, 128], "batch_size": 32, "lr": 0.003, "epochs": 30}
    res["test"]["shipped_config_dp"] = _fit_eval(syn, test, shipped, DPConfig(epsilon=a.epsilon, delta=a.delta, max_grad_norm=1.0))
    res["curve"] = {}
    for eps in (1.0, 2.0, 4.0, 8.0):
        res["curve"][str(eps)] = _fit_eval(syn, test, cfg, DPConfig(epsilon=eps, delta=a.delta, max_grad_norm=best["max_grad_norm"]))
    res["curve"]["inf"] = res["test"]["nondp"]
    for k, v in res["test"].items():
        print("test", k, {kk: v.get(kk) for kk in ("auroc", "micro_f1", "macro_f1", "verdict")})
    res["seconds"] = round(time.time() - t0, 1)
    save(a.out, res, default=float)


if __name__ == "__main__":
    main()
