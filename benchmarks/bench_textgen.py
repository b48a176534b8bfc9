"""Usefulness, label correctness, yield and diversity of generated IU reports.

Protocol (docs/benchmarks.md):
- real data: IU chest X-ray reports, hashed splits (train 70% / validation 10% / test 20%), labels = MeSH major terms
  cut at "/" restricted to the 12 most frequent in train + "normal" (the `iu_xray` step's default).
- synthetic: the `generate` step output of a run (seeds ≤ 50 reports of the train split), or a fresh run of
  recipes/quickstart.yaml with --set overrides.
- classifier: TF-IDF (1-2 grams) + one-vs-rest logistic regression, identical for real and synthetic training.
- figure: micro-F1 on the real TEST split of the classifier trained on synthetic only, divided by the same
  classifier trained on the full real train split. Ablation "trust conditioning labels" re-labels the same texts
  with the labels they were conditioned on instead of the detector's (the `verify` strategy off).
Usage: python benchmarks/bench_textgen.py --from-run runs/<id>   |   --generate N
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clf_f1(train_texts, train_labels, test_texts, test_labels, label_set):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    mlb = MultiLabelBinarizer(classes=label_set)
    Ytr = mlb.fit_transform(train_labels)
    Yte = mlb.transform(test_labels)
    present = Ytr.sum(0) > 0
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    X = vec.fit_transform(train_texts)
    import numpy as np

    pred = np.zeros_like(Yte)
    cols = np.flatnonzero(present & (Ytr.sum(0) < len(Ytr)))
    if len(cols):
        m = OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced")).fit(X, Ytr[:, cols])
        pred[:, cols] = m.predict(vec.transform(test_texts))
    return {"micro_f1": float(f1_score(Yte, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(Yte, pred, average="macro", zero_division=0))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from-run", type=Path)
    ap.add_argument("--generate", type=int, default=0, help="run the quickstart recipe with this many records")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/textgen.json")
    a = ap.parse_args()
    from collections import Counter

    from medsynth.data.io import read_records
    from medsynth.data.sources.iu_xray import load_iu_reports, report_text
    from medsynth.quality.diversity import distinct_n, self_bleu

    run = a.from_run
    if a.generate:
        run = ROOT / "benchmarks/work" / f"textgen-{a.generate}"
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "medsynth.cli", "run", "recipes/quickstart.yaml", "--run-dir", str(run), "--set",
                        f"steps.generate.n_records={a.generate}"], cwd=ROOT, check=True)
        print(f"generated in {time.time() - t0:.0f}s")
    rep = json.loads((run / "report.json").read_text())
    gen = next(s for s in rep["steps"] if s["type"] == "generate")
    syn = read_records(run / gen["outputs"][gen["output"]])
    seeds_step = next(s for s in rep["steps"] if s["name"] == gen["inputs"][0])
    n_seeds = seeds_step["records_out"]

    docs = [d for d in load_iu_reports() if "FINDINGS" in d["sections"] and d["labels"] and "No Indexing" not in d["labels"]]
    cnt = Counter(lab for d in docs if d["split"] == "train" for lab in d["labels"] if lab != "normal")
    label_set = sorted({lab for lab, _ in cnt.most_common(12)} | {"normal"})

    def keep(d):
        return [lab for lab in d["labels"] if lab in label_set]

    train = [(report_text(d["sections"]), keep(d)) for d in docs if d["split"] == "train" and keep(d)]
    test = [(report_text(d["sections"]), keep(d)) for d in docs if d["split"] == "test" and keep(d)]
    tt, tl = [t for t, _ in test], [lab for _, lab in test]
    real = clf_f1([t for t, _ in train], [lab for _, lab in train], tt, tl, label_set)
    s_texts = [r.text for r in syn]
    verified = clf_f1(s_texts, [r.labels for r in syn], tt, tl, label_set)
    trusted = clf_f1(s_texts, [r.meta.get("conditioned_on", r.labels) for r in syn], tt, tl, label_set)
    figs = {f["name"]: f["value"] for f in gen["figures"]}
    res = {
        "run": str(run), "n_synthetic": len(syn), "n_seeds": n_seeds, "label_set": label_set,
        "real_train_size": len(train), "real_test_size": len(test),
        "real_trained": real, "synthetic_trained_verified_labels": verified, "synthetic_trained_conditioning_labels": trusted,
        "usefulness_ratio_micro_f1": verified["micro_f1"] / real["micro_f1"],
        "usefulness_ratio_conditioning_labels": trusted["micro_f1"] / real["micro_f1"],
        "yield": figs.get("yield"), "rejections": figs.get("rejections"), "label_fidelity": figs.get("label_fidelity"),
        "normal_share": figs.get("normal_share"),
        "self_bleu4_synthetic": self_bleu(s_texts, 1000, max_refs=300), "self_bleu4_real": self_bleu([t for t, _ in train], 1000, max_refs=300),
        "distinct2_synthetic": distinct_n(s_texts, 2), "distinct2_real_same_size": distinct_n([t for t, _ in train][: len(s_texts)], 2),
        "generate_seconds": gen.get("seconds"),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
