"""Usefulness, yield, label correctness and diversity of generated IU chest X-ray reports, per strategy and model.

Protocol (reported in docs/text.md):
- real data: IU chest X-ray reports (``iu_xray`` step), hashed splits train 70% / validation 10% / test 20%; labels =
  MeSH major terms cut at the first "/", restricted to the 12 most frequent in train + "normal" (the step's default).
- seeds: 40 reports of the TRAIN split (``select`` sample 40, stratified, min 1 per label, recipe seed 13).
- synthetic: the ``generate`` step's output for each configuration (``CONFIGS``); outputs are cached by the step
  cache, so re-running the script re-uses every generation (``--only`` to run some configurations).
- classifiers (``CLASSIFIERS``), each identical for real and synthetic training, one-vs-rest logistic regression
  (C=4, balanced classes) on: ``tfidf`` = word 1-2-gram TF-IDF (the original protocol); ``tfidf_char_minilm`` =
  word 1-2-gram + char_wb 3-5-gram TF-IDF + all-MiniLM-L6-v2 sentence embedding. The reported classifier is the one
  with the best REAL-trained validation micro-F1 among the candidates tried (a property of the task, independent of
  any synthetic data, so a weaker classifier cannot inflate the ratio); both are reported.
- usefulness = micro-F1 of the classifier trained on synthetic only / micro-F1 of the same classifier trained on the
  full real train split. Tuning decisions use the VALIDATION split (``usefulness_val``); the reported figure is on
  the TEST split (``usefulness_test``). The same texts labelled with their conditioning labels (no verification)
  are scored too (``*_conditioning_labels``).
- yield = valid records / documents attempted (the generate step's figure); span validation pass rate = records
  whose spans all verify / records written (always 1.0 by construction: invalid spans never leave the step).
- diversity: Self-BLEU-4 (NLTK, method1 smoothing, ≤ 1,000 samples, each against ≤ 300 others) and distinct-1/2/3,
  for the synthetic set and an equal-size sample of real train reports, overall and per label.
Machine: 2 shared CPU cores; generation runs with one torch thread (OpenMP spinning under contention costs ~7x).
Absolute times are not comparable across runs; ratios within a run are.

Usage: python benchmarks/bench_textgen.py [--n 300] [--only default,zerogen] [--out benchmarks/results/textgen.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)

CONFIGS: dict[str, dict[str, Any]] = {
    # naive ZeroGen: label-conditioned few-shot prompts, conditioning labels trusted (the issue's starting point)
    "zerogen": {"strategies": ["label", "fewshot"]},
    "zerogen+verify": {"strategies": ["label", "fewshot", "verify"]},
    "prior+label+verify": {"strategies": ["prior", "label", "fewshot", "verify"]},
    "prior+label+feedback+verify": {"strategies": ["prior", "label", "fewshot", "feedback", "verify"]},
    "entity_first_document": {"strategies": ["prior", {"type": "entity_first", "unit": "document"}, "fewshot", "verify"]},
    "entity_first_sentence": {"strategies": ["prior", "entity_first", "fewshot", "verify"]},
    "default": {"strategies": ["prior", "entity_first", "fewshot", "feedback", "verify"]},
    # rare findings: abnormal label weights = seed counts ** 0.5 (flatter than the seeds' prior; normal share unchanged)
    "default_flat": {"strategies": [{"type": "prior", "power": 0.5}, "entity_first", "fewshot", "feedback", "verify"]},
    # the same configuration under another step name, hence other sampling seeds (same 40 seeds): more records of
    # the default, evaluated together with `default` through --union (a scaling point without regenerating)
    **{f"default_more{i}": {"strategies": ["prior", "entity_first", "fewshot", "feedback", "verify"], "_step": f"generate_more{i}"}
       for i in ("", "2", "3", "4", "5", "6")},
    # likewise for default_flat (the flatter prior scored higher on validation than the default at 300 records)
    **{f"default_flat_more{i}": {"strategies": [{"type": "prior", "power": 0.5}, "entity_first", "fewshot", "feedback", "verify"],
                                 "_step": f"generate_flat_more{i}"} for i in ("", "2", "3")},
    "default+verbalizer": {"strategies": ["prior", "verbalizer", "entity_first", "fewshot", "feedback", "verify"]},
    "default+attributes_llm": {"strategies": ["prior", "entity_first", {"type": "attributes", "source": "llm"}, "fewshot", "feedback", "verify"]},
    "default_smollm2": {"strategies": ["prior", "entity_first", "fewshot", "feedback", "verify"], "model": "smollm2-135m-instruct"},
    # more SmolLM2 records under other step names (other sampling seeds): the default-model comparison at >= 1,500
    **{f"default_smollm2_more{i}": {"strategies": ["prior", "entity_first", "fewshot", "feedback", "verify"],
                                    "model": "smollm2-135m-instruct", "_step": f"generate_more{i}"} for i in ("", "2", "3", "4")},
    "zerogen_smollm2": {"strategies": ["label", "fewshot"], "model": "smollm2-135m-instruct"},
}


def recipe(name: str, n: int, gen: dict[str, Any]) -> dict[str, Any]:
    gen = dict(gen)
    step = gen.pop("_step", "generate")
    return {"name": f"bench-textgen-{name.replace('+', '-')}", "seed": 13, "steps": [
        {"type": "iu_xray", "name": "corpus", "label_top_k": 12},
        {"type": "select", "name": "private", "input": "corpus", "where": {"split": "train"}},
        {"type": "select", "name": "seeds", "input": "private", "n": 40, "min_per_label": 1},
        # configurations without a model were measured on Gemma (the default until 2026-12-03): pinned so they reproduce
        {"type": "generate", "name": step, "input": "seeds", "n": n, "batch_size": 8, "max_new_tokens": 110,
         "model": "gemma3-270m", **gen},
    ]}


# Candidates tried on the validation split (real-trained micro-F1 / synthetic-trained, default@300 v4 records):
# word 1-2 TF-IDF 0.893 / 0.651; char_wb 3-5 0.895 / 0.719; MiniLM C=1 0.762 / 0.664, C=10 0.825 / 0.694;
# word + MiniLM 0.902 / 0.733; char + MiniLM 0.904 / 0.748 (C=10: 0.916 / 0.751); word + char 0.913 / 0.709;
# word + char + MiniLM 0.918 / 0.743 -> the best real-trained classifier, kept as tfidf_char_minilm.
CLASSIFIERS: dict[str, dict[str, Any]] = {
    "tfidf": {"word": True, "char": False, "minilm": False},
    "tfidf_char_minilm": {"word": True, "char": True, "minilm": True},
}
REPORTED_CLASSIFIER = "tfidf_char_minilm"
_EMB: dict[str, Any] = {}


def _embed(texts: list[str]) -> Any:
    import hashlib

    import numpy as np

    from medsynth.data.embed import embed_texts

    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    if key not in _EMB:
        _EMB[key] = np.asarray(embed_texts(texts))
    return _EMB[key]


def clf_f1(train_texts, train_labels, test_texts, test_labels, label_set, classifier: str = "tfidf") -> dict[str, Any]:
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    cfg = CLASSIFIERS[classifier]
    mlb = MultiLabelBinarizer(classes=label_set)
    Ytr = mlb.fit_transform(train_labels)
    Yte = mlb.transform(test_labels)
    present = Ytr.sum(0) > 0
    vecs = ([TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)] if cfg["word"] else []) + \
           ([TfidfVectorizer(ngram_range=(3, 5), analyzer="char_wb", sublinear_tf=True)] if cfg["char"] else [])
    Xtr = [v.fit_transform(train_texts) for v in vecs]
    Xte = [v.transform(test_texts) for v in vecs]
    if cfg["minilm"]:
        Xtr.append(csr_matrix(_embed(list(train_texts))))
        Xte.append(csr_matrix(_embed(list(test_texts))))
    X, Xt = hstack(Xtr).tocsr(), hstack(Xte).tocsr()
    pred = np.zeros_like(Yte)
    cols = np.flatnonzero(present & (Ytr.sum(0) < len(Ytr)))
    if len(cols):
        m = OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced")).fit(X, Ytr[:, cols])
        pred[:, cols] = m.predict(Xt)
    per = f1_score(Yte, pred, average=None, zero_division=0)
    return {"micro_f1": float(f1_score(Yte, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(Yte, pred, average="macro", zero_division=0)),
            "per_label_f1": {lab: round(float(v), 4) for lab, v in zip(label_set, per, strict=True)}}


def diversity(texts: list[str], seed: int = 0) -> dict[str, float]:
    from medsynth.quality.diversity import distinct_n, self_bleu

    return {"self_bleu4": round(self_bleu(texts, 1000, seed=seed, max_refs=300), 4) if len(texts) >= 2 else float("nan"),
            **{f"distinct_{k}": round(distinct_n(texts, k), 4) for k in (1, 2, 3)}}


def real_data() -> dict[str, Any]:
    from medsynth.data.sources.iu_xray import load_iu_reports, report_text

    docs = [d for d in load_iu_reports() if "FINDINGS" in d["sections"] and d["labels"] and "No Indexing" not in d["labels"]]
    cnt = Counter(lab for d in docs if d["split"] == "train" for lab in d["labels"] if lab != "normal")
    label_set = sorted({lab for lab, _ in cnt.most_common(12)} | {"normal"})
    out: dict[str, Any] = {"label_set": label_set}
    for split in ("train", "validation", "test"):
        rows = [(report_text(d["sections"]), [lab for lab in d["labels"] if lab in label_set]) for d in docs if d["split"] == split]
        out[split] = [r for r in rows if r[1]]
    return out


def partial_run(run_dir: Path) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Records and figures of a generate step that is still running: its committed batches, read-only."""
    import sqlite3

    from medsynth.data.records import Record

    con = sqlite3.connect(f"file:{run_dir / 'ledger.sqlite'}?mode=ro", uri=True)
    recs, stats = [], Counter()
    for payload, meta in con.execute("SELECT records, meta FROM batches WHERE step LIKE 'generate%' ORDER BY idx"):
        recs += [Record.from_json(ln) for ln in payload.splitlines() if ln]
        stats.update(json.loads(meta).get("stats", {}))
    con.close()
    figs = {"yield": round(stats.get("valid", 0) / max(stats.get("documents", 1), 1), 4),
            "rejections": {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:")},
            "generated_tokens": stats.get("tokens", 0) + stats.get("sentence_tokens", 0), "partial": True}
    return recs, figs, {}


def load_run(run_dir: Path) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """The generate step's records, figures and report entry of a finished run (or the committed part of a running one)."""
    import yaml

    from medsynth.data.io import read_records

    if (run_dir / "report.json").exists():
        rep = json.loads((run_dir / "report.json").read_text())
        gen = next(s for s in rep["steps"] if s["type"] == "generate")
        return read_records(run_dir / gen["outputs"][gen["output"]]), {f["name"]: f["value"] for f in gen["figures"]}, gen
    syn, figs, _ = partial_run(run_dir)
    raw = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    g = next(s for s in raw["steps"] if s["type"] == "generate")
    return syn, figs, {"config": {"model": g.get("model", "gemma3-270m"), "strategies": g.get("strategies")}, "seconds": None}


def union_runs(run_dirs: list[Path]) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Records of several runs of the same configuration (different sampling seeds) as one set; exact duplicate texts
    across runs are dropped (counted); yield is pooled over the runs' attempted documents."""
    syn, seen, dup, figs_all, gens = [], set(), 0, [], []
    for d in run_dirs:
        recs, figs, gen = load_run(d)
        for r in recs:
            if (r.text or "") in seen:
                dup += 1
                continue
            seen.add(r.text or "")
            syn.append(r)
        figs_all.append(figs)
        gens.append(gen)
    figs = {"union_of": [str(d.relative_to(ROOT)) for d in run_dirs], "cross_run_exact_duplicates_dropped": dup}
    if all("yield" in f for f in figs_all):
        figs["yield_per_run"] = [f["yield"] for f in figs_all]
    secs = [g.get("seconds") for g in gens]
    return syn, figs, {"config": gens[0]["config"], "seconds": sum(secs) if all(x is not None for x in secs) else None}


def evaluate(run_dir: Path | list[Path], real: dict[str, Any], real_f1: dict[str, Any], n_limit: int | None = None, with_diversity: bool = True) -> dict[str, Any]:
    import random

    from medsynth.data.records import invalid_spans

    if isinstance(run_dir, list):
        syn, figs, gen = union_runs(run_dir)
    else:  # a finished run, or the committed batches of one still running
        syn, figs, gen = load_run(run_dir)
    if n_limit:
        syn = syn[:n_limit]
    label_set = real["label_set"]
    texts = [r.text or "" for r in syn]
    res: dict[str, Any] = {"n_synthetic": len(syn), "model": gen["config"]["model"], "strategies": gen["config"]["strategies"]}
    res["classifier"] = REPORTED_CLASSIFIER
    for clf in CLASSIFIERS:
        sfx = "" if clf == REPORTED_CLASSIFIER else f"_{clf}"
        for split in ("validation", "test"):
            tt, tl = [t for t, _ in real[split]], [lab for _, lab in real[split]]
            v = clf_f1(texts, [r.labels for r in syn], tt, tl, label_set, clf) if syn else {"micro_f1": 0.0, "macro_f1": 0.0, "per_label_f1": {}}
            cond = clf_f1(texts, [r.meta.get("conditioned_on") or r.labels for r in syn], tt, tl, label_set, clf) if syn else {"micro_f1": 0.0}
            res[f"synthetic_{split}{sfx}"] = v
            key = "test" if split == "test" else "val"
            res[f"usefulness_{key}{sfx}"] = round(v["micro_f1"] / real_f1[clf][split]["micro_f1"], 4)
            res[f"usefulness_{key}_conditioning_labels{sfx}"] = round(cond["micro_f1"] / real_f1[clf][split]["micro_f1"], 4)
    for k in ("union_of", "cross_run_exact_duplicates_dropped", "yield_per_run", "yield", "rejections", "repairs", "label_fidelity", "conditioned_label_present", "normal_share", "generated_tokens",
              "sentence_rejections", "planned_units_written", "span_integrity", "shortfall", "partial"):
        if k in figs:
            res[k] = figs[k]
    res["span_validation_pass_rate"] = round(sum(1 for r in syn if not invalid_spans(r)) / max(len(syn), 1), 4)
    res["generate_seconds"] = gen.get("seconds")
    res["label_share"] = {lab: round(sum(lab in r.labels for r in syn) / max(len(syn), 1), 4) for lab in label_set}
    if not with_diversity:
        return res
    rng = random.Random(0)
    real_sample = [t for t, _ in rng.sample(real["train"], min(len(syn), len(real["train"])))] if syn else []
    res["diversity"] = {"synthetic": diversity(texts), "real_same_size": diversity(real_sample)}
    per: dict[str, Any] = {}
    for lab in label_set:
        st = [r.text or "" for r in syn if lab in r.labels]
        rt = [t for t, ls in real["train"] if lab in ls]
        if len(st) >= 5:
            rt = random.Random(1).sample(rt, min(len(st), len(rt)))
            per[lab] = {"n": len(st), "synthetic": diversity(st), "real_same_size": diversity(rt)}
    res["diversity_per_label"] = per
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="records per configuration")
    ap.add_argument("--only", default="", help="comma-separated configuration names (default: all)")
    ap.add_argument("--eval-only", action="store_true", help="only evaluate existing run dirs (also runs still in progress: their committed batches)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N records of each run (equal-size comparisons)")
    ap.add_argument("--no-diversity", action="store_true", help="skip Self-BLEU/distinct-n (the slow part of the evaluation)")
    ap.add_argument("--tag", default="", help="suffix of the run dirs and result keys (e.g. a code change measured against the same configuration)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/textgen.json")
    ap.add_argument("--union", default="", help="also evaluate the union of these configurations' runs (comma-separated name@n, e.g. default@300,default_more@200; same --tag)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from medsynth.recipe.engine import run_recipe
    from medsynth.recipe.schema import load_recipe

    names = [x for x in a.only.split(",") if x] or list(CONFIGS)
    if not a.eval_only:  # generate first (the expensive part), evaluate afterwards
        for name in names:
            t0 = time.time()
            run_recipe(load_recipe(recipe(name, a.n, CONFIGS[name])), run_dir=ROOT / "benchmarks/work" / f"textgen-{name}-{a.n}{a.tag}", show_progress=False)
            print(f"{name}: generated in {time.time() - t0:.0f}s", flush=True)
    real = real_data()
    label_set = real["label_set"]
    real_f1 = {c: {s: clf_f1([t for t, _ in real["train"]], [lab for _, lab in real["train"]], [t for t, _ in real[s]], [lab for _, lab in real[s]],
                             label_set, c) for s in ("validation", "test")} for c in CLASSIFIERS}
    results: dict[str, Any] = json.loads(a.out.read_text()) if a.out.exists() else {}
    results.update({"protocol": __doc__.split("Usage:")[0].strip(), "label_set": label_set, "real_train_size": len(real["train"]),
                    "real_validation_size": len(real["validation"]), "real_test_size": len(real["test"]),
                    "classifier": REPORTED_CLASSIFIER,
                    "real_trained": real_f1[REPORTED_CLASSIFIER],
                    "real_trained_by_classifier": real_f1,
                    **({} if a.no_diversity else {"real_diversity_full_train": diversity([t for t, _ in real["train"]])})})
    results.setdefault("configs", {})
    for name in names:
        run_dir = ROOT / "benchmarks/work" / f"textgen-{name}-{a.n}{a.tag}"
        if not (run_dir / "report.json").exists() and not (a.eval_only and (run_dir / "ledger.sqlite").exists()):
            continue
        res = evaluate(run_dir, real, real_f1, a.limit, not a.no_diversity)
        res["run"] = str(run_dir.relative_to(ROOT))
        results["configs"][f"{name}@{a.n}{a.tag}" + (f"[first {a.limit}]" if a.limit else "")] = res
        print(json.dumps({k: res[k] for k in ("usefulness_val", "usefulness_test", "usefulness_val_tfidf", "usefulness_test_tfidf", "yield",
                                              "label_fidelity", "normal_share") if k in res}), flush=True)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        save(a.out, results)
    if a.union:
        items = [(u.split("@")[0], int(u.split("@")[1]) if "@" in u else a.n) for u in a.union.split(",") if u]
        dirs = [ROOT / "benchmarks/work" / f"textgen-{u}-{n}{a.tag}" for u, n in items]
        res = evaluate(dirs, real, real_f1, a.limit, not a.no_diversity)
        results["configs"]["+".join(f"{u}@{n}{a.tag}" for u, n in items) + (f"[first {a.limit}]" if a.limit else "")] = res
        print(json.dumps({k: res[k] for k in ("n_synthetic", "usefulness_val", "usefulness_test", "usefulness_val_tfidf", "usefulness_test_tfidf",
                                              "cross_run_exact_duplicates_dropped") if k in res}), flush=True)
        save(a.out, results)


if __name__ == "__main__":
    main()
