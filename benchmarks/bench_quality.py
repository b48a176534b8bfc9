"""Quality metrics benchmark: do the figures of ``medsynth.quality`` move the right way under known degradations,
and what do they cost?

Reference ("real") = 1,000 IU chest X-ray reports (train split). Candidate sets of 1,000 records each:
  real_other    — 1,000 other real reports (test+validation splits): the ideal synthetic set;
  templated     — 50 real reports repeated 20× each (a collapsed generator);
  label_noise   — real_other with each record's labels replaced by another record's labels (wrong labels);
  word_shuffle  — real_other with the words of every sentence shuffled (disfluent text).
Figures per set: Self-BLEU-4 (ZeroGen: 1,000 samples, each against all others), distinct-1/2/3, embedding spread,
coverage/density (k=5), oracle agreement, discriminator AUC, and (``--perplexity N``) median perplexity of N records
under the embedded Gemma 3 270M. Also: seconds of the exact fast Self-BLEU vs NLTK's sentence_bleu on the same
1,000 texts (NLTK on 100 hypotheses, extrapolated), and their agreement.
Usage: python benchmarks/bench_quality.py [--perplexity 150]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--perplexity", type=int, default=150, help="records per set scored by the reference LM (0: skip)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/quality.json")
    a = ap.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from medsynth.data.embed import embed_texts
    from medsynth.data.sources.iu_xray import load_iu_reports, report_text
    from medsynth.quality.correctness import train_oracle
    from medsynth.quality.diversity import coverage_density, distinct_n, embedding_spread, self_bleu, self_bleu_scores, tokenize
    from medsynth.lm import text_perplexities
    from medsynth.quality.naturalness import discriminator

    rng = random.Random(0)
    docs = [d for d in load_iu_reports() if "FINDINGS" in d["sections"]]
    rec = [(report_text(d["sections"]), d["labels"] or ["normal"], d["split"]) for d in docs]
    train = [r for r in rec if r[2] == "train"]
    other = [r for r in rec if r[2] != "train"]
    real = rng.sample(train, 1000)
    ro = rng.sample(other, 1000)
    base = rng.sample(ro, 50)
    shuffled_labels = [r[1] for r in ro]
    rng.shuffle(shuffled_labels)

    def wshuffle(t: str) -> str:
        out = []
        for s in t.split(". "):
            w = s.split()
            rng.shuffle(w)
            out.append(" ".join(w))
        return ". ".join(out)

    sets = {
        "real_other": [(t, lab) for t, lab, _ in ro],
        "templated": [(t, lab) for t, lab, _ in base for _ in range(20)],
        "label_noise": [(t, lab) for (t, _, _), lab in zip(ro, shuffled_labels, strict=True)],
        "word_shuffle": [(wshuffle(t), lab) for t, lab, _ in ro],
    }
    res: dict = {"reference": "1,000 IU train-split reports", "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
                 "note": "shared machine: seconds are indicative; ratios within the run are robust"}
    rt = [t for t, _, _ in real]
    oracle = train_oracle([t for t, _, _ in train], [lab for _, lab, _ in train], seed=0)
    res["oracle_cv_micro_f1"] = round(oracle.cv_micro_f1, 4)
    re_emb = embed_texts(rt)
    model = tok = None
    if a.perplexity:
        from medsynth.text.models import load_model

        model, tok, info = load_model("gemma3-270m", dtype="float32")
        res["perplexity_model"] = {"name": info["name"], "sha256": info["model_sha256"]}
        res["real_perplexity_median"] = round(float(np.median(text_perplexities(model, tok, rt[: a.perplexity]))), 3)
    res["real"] = {"self_bleu4": round(self_bleu(rt), 4), **{f"distinct_{n}": round(distinct_n(rt, n), 4) for n in (1, 2, 3)},
                   "embedding_spread": round(embedding_spread(re_emb), 4)}
    for name, items in sets.items():
        texts = [t for t, _ in items]
        e = embed_texts(texts)
        cov, dens = coverage_density(re_emb, e, k=5)
        auc, _ = discriminator(rt, texts, seed=0)
        row = {"self_bleu4": round(self_bleu(texts), 4), **{f"distinct_{n}": round(distinct_n(texts, n), 4) for n in (1, 2, 3)},
               "embedding_spread": round(embedding_spread(e), 4), "coverage": round(cov, 4), "density": round(dens, 4),
               "oracle_agreement": round(float(np.mean(oracle.agreement(texts, [lab for _, lab in items]))), 4),
               "discriminator_auc": round(auc, 4)}
        if model is not None:
            row["perplexity_median"] = round(float(np.median(text_perplexities(model, tok, texts[: a.perplexity]))), 3)
        res[name] = row
        print(name, row, flush=True)
    # cost and exactness of the fast Self-BLEU
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    toks = [tokenize(t) for t in rt]
    t0 = time.perf_counter()
    fast = self_bleu_scores(toks)
    t_fast = time.perf_counter() - t0
    sm = SmoothingFunction().method1
    t0 = time.perf_counter()
    slow = [sentence_bleu(toks[:i] + toks[i + 1 :], toks[i], weights=(0.25,) * 4, smoothing_function=sm) for i in range(100)]
    t_slow = (time.perf_counter() - t0) * len(toks) / 100
    res["self_bleu_cost"] = {"fast_seconds_1000": round(t_fast, 2), "nltk_seconds_1000_extrapolated": round(t_slow, 1),
                             "speedup": round(t_slow / t_fast, 1), "max_abs_difference_first_100": float(max(abs(x - y) for x, y in zip(fast, slow, strict=False)))}
    res["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    save(a.out, res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
