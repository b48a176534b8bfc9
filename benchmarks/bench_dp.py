"""DP-SGD accuracy, privacy accounting, cost and membership inference: medsynth vs a plain Opacus MLP in the same run.

Protocol (docs/training.md):
- data: sklearn make_classification(n_samples=50_000, n_features=40, n_informative=20, random_state=0) and
  load_breast_cancer; stratified 70/10/20 train/validation/test split (seed 0); StandardScaler fitted on train.
- baseline "plain Opacus": MLP 2×128 ReLU, Adam lr 1e-3, batch 256 (64 on breast_cancer), 20 epochs, C = 1.0,
  Poisson sampling, per-sample-gradient hooks, noise from Opacus' make_private_with_epsilon (RDP). The textbook setup.
- medsynth: the same MLP through medsynth.train (ghost clipping, Poisson sampling, guards) with its DP recipe:
  expected batch ≈ n/128 (within [32, 1024]), 40 epochs, Adam lr 1e-3, C = 1.0, noise calibrated to ε (RDP).
  Chosen once at ε = 3 on the validation split of make_classification(random_state=1) — a different data set, so
  choosing it spent no privacy of the evaluated data (tuning on the private data itself would cost privacy: every
  extra training run composes, and the choice of the best run leaks too). `--tune` re-runs that choice (batch
  {256, n/32} × lr {1e-3, 3e-3}, 40 epochs) and records every candidate's validation accuracy in dp.json.
- ε: both accountants for every DP model. Accuracy on the test split (make_classification: seed 0; breast_cancer: mean of 3 split seeds).
- cost: seconds per epoch, median of 3 interleaved repetitions, on the 35k-row training split at batch 256:
  non-private torch loop, Opacus hooks, Opacus ghost, medsynth ghost (same model, batch, sampling). Ratios are
  measured in the same run (the machine is shared: absolute times are not comparable between runs).
  Text classifier: MiniLM-embedding head (2×128 on 384-d frozen embeddings) and MiniLM fine-tuning (top 2 layers),
  DP/non-DP epoch ratio on IU report texts.
- MIA: make_classification(n_samples=2_000, n_features=20, flip_y=0.2, random_state=2), 1,000 members / 1,000
  non-members, MLP 2×256 trained 100 epochs non-DP vs DP at ε = 1 and 3 (same hyperparameters), loss and LiRA.
Run:  OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_dp.py   (≈ 30 min on 2 shared cores)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)
warnings.filterwarnings("ignore")


def split(X, y, seed=0):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    Xtr, Xva, ytr, yva = train_test_split(Xtr, ytr, test_size=0.125, stratify=ytr, random_state=seed)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), ytr, sc.transform(Xva), yva, sc.transform(Xte), yte


def mlp(d, hidden=(128, 128)):
    from torch import nn

    layers, k = [], d
    for h in hidden:
        layers += [nn.Linear(k, h), nn.ReLU()]
        k = h
    return nn.Sequential(*layers, nn.Linear(k, 2))


def acc(model, X, y):
    import torch

    model.eval()
    with torch.no_grad():
        return float((model(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy() == y).mean())


def plain_opacus(Xtr, ytr, eps, delta, batch, epochs=20, lr=1e-3, C=1.0, seed=0, mode="hooks", time_only_epochs=None):
    """The baseline: bare Opacus, no medsynth code."""
    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    X = torch.as_tensor(Xtr, dtype=torch.float32)
    y = torch.as_tensor(ytr, dtype=torch.long)
    model = mlp(X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    crit = torch.nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(X, y), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed))
    n_ep = time_only_epochs or epochs
    eng = PrivacyEngine(accountant="rdp")
    if eps is None:
        times = []
        for _ in range(n_ep):
            t0 = time.perf_counter()
            for xb, yb in loader:
                opt.zero_grad()
                crit(model(xb), yb).backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return model, None, times
    kw = dict(module=model, optimizer=opt, data_loader=loader, target_epsilon=eps, target_delta=delta, epochs=epochs,
              max_grad_norm=C, grad_sample_mode=mode, poisson_sampling=True)
    if mode == "ghost":
        model, opt, crit, loader = eng.make_private_with_epsilon(criterion=crit, **kw)
    else:
        model, opt, loader = eng.make_private_with_epsilon(**kw)
    times = []
    for _ in range(n_ep):
        t0 = time.perf_counter()
        for xb, yb in loader:
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    from medsynth.dp import epsilons

    sigma = opt.noise_multiplier
    steps = sum(h[2] for h in eng.accountant.history)
    return model._module, {**epsilons(sigma, 1 / len(loader), steps, delta), "noise_multiplier": sigma, "steps": steps}, times


def medsynth_batch(n):
    """medsynth's DP batch rule: about n/128 records per expected Poisson batch, within [32, 1024]."""
    return int(min(1024, max(32, n // 128)))


def medsynth_fit(Xtr, ytr, eps, delta, batch=None, epochs=40, lr=1e-3, C=1.0, seed=0, mode="ghost", time_only_epochs=None):
    import torch

    from medsynth.dp import DPConfig, plan_dp
    from medsynth.train.loop import TrainSettings, fit_module

    n = len(ytr)
    batch = batch or medsynth_batch(n)
    torch.manual_seed(seed)
    X = torch.as_tensor(Xtr, dtype=torch.float32)
    y = torch.as_tensor(ytr, dtype=torch.long)
    model = mlp(X.shape[1])
    ep = time_only_epochs or epochs
    if eps is None:
        res = fit_module(model, (X,), y, "multiclass", TrainSettings(ep, batch, lr, "adam", 0.0, seed))
        return res.model, None, res.seconds_per_epoch
    cfg = DPConfig(epsilon=eps, delta=delta, max_grad_norm=C, grad_sample_mode=mode)
    plan = plan_dp(cfg, n, batch, epochs)
    res = fit_module(model, (X,), y, "multiclass", TrainSettings(ep, batch, lr, "adam", 0.0, seed), dp_plan=plan if not time_only_epochs else
                     plan_dp(cfg, n, batch, ep), dp=cfg)
    return res.model, res.privacy, res.seconds_per_epoch


def accuracy_block(name, X, y, seeds=(0, 1, 2), eps_list=(None, 1.0, 3.0), base_batch=256):
    out = {"data": name, "n": int(len(y)), "baseline": {}, "medsynth": {}}
    for eps in eps_list:
        key = "non_dp" if eps is None else f"eps_{eps:g}"
        rb, rm = [], []
        for s in seeds:
            Xtr, ytr, Xva, yva, Xte, yte = split(X, y, seed=s)
            mb, pb, _ = plain_opacus(Xtr, ytr, eps, 1e-5, base_batch, seed=s)
            mm, pm, _ = medsynth_fit(Xtr, ytr, eps, 1e-5, seed=s)
            rb.append({"test_acc": acc(mb, Xte, yte), "val_acc": acc(mb, Xva, yva), "privacy": pb})
            rm.append({"test_acc": acc(mm, Xte, yte), "val_acc": acc(mm, Xva, yva),
                       "privacy": {k: pm[k] for k in ("epsilon_rdp", "epsilon_prv", "noise_multiplier", "steps")} if pm else None})
            print(name, key, s, rb[-1]["test_acc"], rm[-1]["test_acc"], flush=True)
        for tgt, rows in ((out["baseline"], rb), (out["medsynth"], rm)):
            tgt[key] = {"test_acc_mean": statistics.mean(r["test_acc"] for r in rows), "test_acc_runs": [r["test_acc"] for r in rows],
                        "privacy_seed0": rows[0]["privacy"]}
    return out


def tune(X, y):
    """The one-off choice of medsynth's DP recipe, on make_classification(random_state=1)'s validation split."""
    Xtr, ytr, Xva, yva, _, _ = split(X, y, seed=0)
    rows = []
    for batch in (256, len(ytr) // 32):  # n/128 ≈ 273 at this n
        for lr in (1e-3, 3e-3):
            for epochs in (40,):
                m, _, _ = medsynth_fit(Xtr, ytr, 3.0, 1e-5, batch=batch, epochs=epochs, lr=lr)
                rows.append({"batch": batch, "lr": lr, "epochs": epochs, "val_acc": acc(m, Xva, yva)})
                print("tune", rows[-1], flush=True)
    return rows


def cost_block(X, y, reps=3, epochs=2):
    Xtr, ytr, *_ = split(X, y)
    t = {"non_private": [], "opacus_hooks": [], "opacus_ghost": [], "medsynth_ghost": [], "medsynth_hooks": []}
    for _ in range(reps):
        t["non_private"] += plain_opacus(Xtr, ytr, None, 1e-5, 256, time_only_epochs=epochs)[2]
        t["opacus_hooks"] += plain_opacus(Xtr, ytr, 3.0, 1e-5, 256, mode="hooks", time_only_epochs=epochs)[2]
        t["opacus_ghost"] += plain_opacus(Xtr, ytr, 3.0, 1e-5, 256, mode="ghost", time_only_epochs=epochs)[2]
        t["medsynth_ghost"] += medsynth_fit(Xtr, ytr, 3.0, 1e-5, batch=256, lr=1e-3, mode="ghost", time_only_epochs=epochs)[2]
        t["medsynth_hooks"] += medsynth_fit(Xtr, ytr, 3.0, 1e-5, batch=256, lr=1e-3, mode="hooks", time_only_epochs=epochs)[2]
    med = {k: statistics.median(v) for k, v in t.items()}
    return {"seconds_per_epoch_median": med,
            "ratio_hooks_vs_non_private": med["opacus_hooks"] / med["non_private"],
            "ratio_ghost_vs_non_private": med["opacus_ghost"] / med["non_private"],
            "ratio_medsynth_ghost_vs_non_private": med["medsynth_ghost"] / med["non_private"],
            "medsynth_overhead_vs_opacus_ghost": med["medsynth_ghost"] / med["opacus_ghost"] - 1,
            "medsynth_overhead_vs_opacus_hooks": med["medsynth_hooks"] / med["opacus_hooks"] - 1,
            "train_rows": int(len(ytr)), "batch": 256}


def text_cost(n=256, reps=2):
    import torch

    from medsynth.data.records import Record
    from medsynth.data.sources.iu_xray import load_iu_reports, report_text
    from medsynth.train.classifiers import ClassifierConfig, fit_classifier
    from medsynth.dp import DPConfig

    docs = [d for d in load_iu_reports() if d["split"] == "train" and "FINDINGS" in d["sections"] and d["labels"]][:n]
    recs = [Record(id=d["id"], text=report_text(d["sections"]), labels=["normal" if d["labels"] == ["normal"] else "abnormal"]) for d in docs]
    out = {}
    for model, cfg in (("text_embed", ClassifierConfig(model="text_embed", epochs=3, batch_size=64)),
                       ("text_finetune", ClassifierConfig(model="text_finetune", epochs=1, batch_size=32, max_length=64, train_layers=2))):
        fit_classifier(recs[:64], cfg.model_copy(update={"epochs": 1}))  # warm caches (embeddings, weights)
        nd, dp = [], []
        for _ in range(reps):
            torch.manual_seed(0)
            nd += fit_classifier(recs, cfg).info["seconds_per_epoch"]
            dp += fit_classifier(recs, cfg, dp=DPConfig(epsilon=3, delta=1e-4)).info["seconds_per_epoch"]
        out[model] = {"non_private_s_per_epoch": statistics.median(nd), "dp_ghost_s_per_epoch": statistics.median(dp),
                      "ratio_dp_vs_non_private": statistics.median(dp) / statistics.median(nd), "records": len(recs)}
        print("text cost", model, out[model], flush=True)
    return out


def mia_block(shadows=4):
    from sklearn.datasets import make_classification

    from medsynth.audit.mia import MembershipInferenceAudit, MIAPolicy
    from medsynth.data.records import Record
    from medsynth.train.classifiers import ClassifierConfig, fit_classifier
    from medsynth.dp import DPConfig

    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, flip_y=0.2, random_state=2)
    recs = [Record(id=f"m{i}", kind="row", values={f"x{j}": float(X[i, j]) for j in range(20)}, labels=[str(int(y[i]))]) for i in range(2000)]
    members, nonmembers = recs[:1000], recs[1000:]
    cfg = ClassifierConfig(hidden=[256, 256], epochs=100, lr=1e-3, batch_size=64)
    out = {}
    for eps in (None, 3.0, 1.0):
        m = fit_classifier(members, cfg, dp=DPConfig(epsilon=eps, delta=1e-5) if eps else None)
        r = MembershipInferenceAudit(MIAPolicy(shadows=shadows)).run([], members, nonmembers, model=m, seed=0)
        f = {x["name"].split(".", 1)[1]: x["value"] for x in r.figures}
        f["test_accuracy"] = m.evaluate(nonmembers)["accuracy"]
        out["non_dp" if eps is None else f"eps_{eps:g}"] = f
        print("mia", eps, f, flush=True)
    return out


def main() -> None:
    import torch
    from sklearn.datasets import load_breast_cancer, make_classification

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/dp.json")
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--only", nargs="*", default=["accuracy", "cost", "text_cost", "mia"])
    a = ap.parse_args()
    res = json.loads(a.out.read_text()) if a.out.exists() else {}
    res["machine"] = "2 shared CPU cores, torch threads = 1; absolute seconds vary with the load, ratios are measured in the same run"
    X, y = make_classification(n_samples=50_000, n_features=40, n_informative=20, random_state=0)
    if a.tune:
        Xt, yt = make_classification(n_samples=50_000, n_features=40, n_informative=20, random_state=1)
        res["tuning_on_random_state_1"] = tune(Xt, yt)
    if "accuracy" in a.only:
        bc = load_breast_cancer()
        res["accuracy"] = [accuracy_block("make_classification", X, y, seeds=(0,)),
                           accuracy_block("breast_cancer", bc.data, bc.target, base_batch=64)]
    if "cost" in a.only:
        res["cost_mlp"] = cost_block(X, y)
        print("cost", res["cost_mlp"], flush=True)
    if "text_cost" in a.only:
        res["cost_text"] = text_cost()
    if "mia" in a.only:
        res["mia"] = mia_block()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    save(a.out, res, default=float)
    print(json.dumps(res, indent=2, default=float)[:4000])


if __name__ == "__main__":
    main()
