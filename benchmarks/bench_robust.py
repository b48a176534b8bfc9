"""Noise-robust training ablation on synthetic-only IU chest X-ray classification (multi-label MeSH labels).

Protocol (docs/training.md):
- synthetic training data: the `generate` step output of a run of recipes/quickstart.yaml
  (`medsynth run recipes/quickstart.yaml --set steps.generate.n_records=300`), labels as the generate step verified them.
- real data: IU reports, hashed splits; labels = the 12 most frequent MeSH major terms of the train split + "normal"
  (the `iu_xray` step's default). Evaluation: micro-F1 (and macro-F1) on the real TEST split. The validation split is
  the only other real data used: a seeded sample of `--clean` records is the clean set of `reweight`/`anneal`
  (and of the "clean only" / "synthetic + clean" baselines, so that the gain of a method is not just the clean data).
- model: medsynth `text_embed` (frozen MiniLM embeddings + 2×128 head), multi-label, threshold 0.5, 30 epochs,
  Adam lr 1e-3, batch 32 — fixed, not tuned on the test split; mean ± sd over 3 training seeds.
Run:  OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_robust.py --from-run benchmarks/work/robust-synth-300
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

METHODS = {
    "plain (synthetic only)": None,
    "label_smoothing 0.1": {"label_smoothing": 0.1},
    "temporal ensembling": {"temporal": {}},
    "reweight (clean set)": {"reweight": {}},
    "anneal (synthetic → clean)": {"anneal": {}},
    "reweight + label_smoothing": {"reweight": {}, "label_smoothing": 0.1},
    "reweight + temporal": {"reweight": {}, "temporal": {}},
}


def main() -> None:
    import torch

    from medsynth.data.io import read_records
    from medsynth.data.records import Record
    from medsynth.data.sources.iu_xray import load_iu_reports, report_text
    from medsynth.train import ClassifierConfig, RobustConfig, fit_classifier

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--from-run", type=Path, required=True)
    ap.add_argument("--clean", type=int, default=100, help="clean records sampled from the validation split")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/robust.json")
    a = ap.parse_args()

    rep = json.loads((a.from_run / "report.json").read_text())
    gen = next(s for s in rep["steps"] if s["type"] == "generate")
    syn = [r for r in read_records(a.from_run / gen["outputs"][gen["output"]]) if r.labels]
    docs = [d for d in load_iu_reports() if "FINDINGS" in d["sections"] and d["labels"] and "No Indexing" not in d["labels"]]
    cnt = Counter(lab for d in docs if d["split"] == "train" for lab in d["labels"] if lab != "normal")
    label_set = sorted({lab for lab, _ in cnt.most_common(12)} | {"normal"})

    def recs(split: str) -> list[Record]:
        out = []
        for d in docs:
            if d["split"] != split:
                continue
            labs = [x for x in d["labels"] if x in label_set]
            if labs:
                out.append(Record(id=f"iu-{d['id']}", text=report_text(d["sections"]), labels=labs))
        return out

    test, val = recs("test"), recs("validation")
    clean = random.Random(0).sample(val, min(a.clean, len(val)))
    syn = [r.model_copy(update={"labels": [x for x in r.labels if x in label_set]}) for r in syn]
    syn = [r for r in syn if r.labels]
    cfg = ClassifierConfig(model="text_embed", task="multilabel", epochs=30, lr=1e-3, batch_size=32)

    def run(train: list[Record], robust: dict | None, seed: int, clean_set: list[Record] | None = None) -> dict:
        m = fit_classifier(train, cfg, robust=RobustConfig.model_validate(robust) if robust else None, clean=clean_set, seed=seed,
                           labels=label_set)
        ev = m.evaluate(test)
        return {"micro_f1": ev["micro_f1"], "macro_f1": ev["macro_f1"], "auroc": ev.get("auroc")}

    results: dict[str, dict] = {}

    def record(name: str, rows: list[dict]) -> None:
        results[name] = {k: {"mean": statistics.mean(r[k] for r in rows), "sd": statistics.pstdev(r[k] for r in rows)}
                         for k in ("micro_f1", "macro_f1", "auroc")}
        print(f"{name:32s} micro-F1 {results[name]['micro_f1']['mean']:.4f} ± {results[name]['micro_f1']['sd']:.4f}  "
              f"macro-F1 {results[name]['macro_f1']['mean']:.4f}", flush=True)

    for name, robust in METHODS.items():
        uses_clean = robust is not None and ("reweight" in robust or "anneal" in robust)
        record(name, [run(syn, robust, s, clean if uses_clean else None) for s in range(a.seeds)])
    record("baseline: clean only", [run(clean, None, s) for s in range(a.seeds)])
    record("baseline: synthetic + clean", [run(syn + clean, None, s) for s in range(a.seeds)])
    plain = results["plain (synthetic only)"]["micro_f1"]["mean"]
    best = max((k for k in METHODS if k != "plain (synthetic only)"), key=lambda k: results[k]["micro_f1"]["mean"])
    out = {"run": str(a.from_run.relative_to(ROOT)) if a.from_run.is_relative_to(ROOT) else str(a.from_run), "n_synthetic": len(syn),
           "n_clean": len(clean), "n_test": len(test), "label_set": label_set, "seeds": a.seeds,
           "model": "text_embed (frozen MiniLM + 2x128 head), 30 epochs, Adam 1e-3, batch 32, threshold 0.5",
           "results": results, "best_method": best, "best_gain_micro_f1_over_plain": results[best]["micro_f1"]["mean"] - plain,
           "machine": "2 shared CPU cores"}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
