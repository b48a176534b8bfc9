"""PHI scrubbing benchmark: medsynth vs Presidio's default recognizers on the same labelled notes.

Token-level (whitespace/punctuation tokens): a token is PHI if it overlaps a gold span; detected if it overlaps a
predicted span. Any-PHI recall/precision/F2, per-type recall, share of notes with zero leaked PHI tokens, share of
clinical non-PHI expressions (hard negatives) touched by a prediction, notes/s. Reported on the held-out TEST
templates (medsynth's recognizers were tuned on the validation templates only).
Usage: python benchmarks/bench_scrub.py [--n 300]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def score(notes, preds):
    tp = fp = fn = 0
    per_type_tot, per_type_hit = Counter(), Counter()
    clean_docs = 0
    neg_tot = neg_hit = 0
    for note, ps in zip(notes, preds, strict=True):
        leaked = 0
        for m in re.finditer(r"\w+", note.text):
            a, b = m.span()
            gold = [lab for s, e, lab in note.spans if a < e and s < b]
            pred = any(a < e and s < b for s, e, _ in ps)
            if gold:
                per_type_tot[gold[0]] += 1
                if pred:
                    tp += 1
                    per_type_hit[gold[0]] += 1
                else:
                    fn += 1
                    leaked += 1
            elif pred:
                fp += 1
        clean_docs += leaked == 0
        for s, e, _ in note.negatives:
            neg_tot += 1
            neg_hit += any(s < pe and ps_ < e for ps_, pe, _ in ps)
    r = tp / max(tp + fn, 1)
    p = tp / max(tp + fp, 1)
    f2 = 5 * p * r / max(4 * p + r, 1e-9)
    return {"recall": round(r, 4), "precision": round(p, 4), "f2": round(f2, 4), "docs_zero_leak": round(clean_docs / len(notes), 4),
            "nonphi_flagged": round(neg_hit / max(neg_tot, 1), 4),
            "per_type_recall": {k: round(per_type_hit[k] / per_type_tot[k], 3) for k in sorted(per_type_tot)}}


def _timed(scr, texts, repeats: int = 2):
    """Best of ``repeats`` wall-clock runs (the machine is shared: the best run is the least disturbed one)."""
    best, spans = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        spans = scr.analyze_many(texts)
        best = min(best, time.perf_counter() - t0)
    return spans, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--split", default="test", choices=["test", "validation"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scrub.json")
    a = ap.parse_args()
    import os

    from medsynth.scrub.engine import Scrubber
    from medsynth.scrub.evalset import make_eval_set

    notes = make_eval_set(a.n, a.split)
    texts = [n.text for n in notes]
    res = {"split": a.split, "notes": len(notes), "mean_chars_per_note": round(sum(map(len, texts)) / len(texts)),
           "gold_phi_spans": sum(len(n.spans) for n in notes), "hard_negatives": sum(len(n.negatives) for n in notes),
           "cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
           "note": "shared machine (other engineers' jobs running): compare notes/s as ratios within this run; best of 2 runs each"}
    for name, scr in [("medsynth", Scrubber(mode="spans")), ("presidio_default", Scrubber(mode="spans", presidio_defaults_only=True))]:
        scr.analyze("warm up")
        spans, dt = _timed(scr, texts)
        res[name] = {**score(notes, [[(s.start, s.end, s.label) for s in sp] for sp in spans]), "notes_per_s": round(len(notes) / dt, 1)}
    par = Scrubber(mode="spans", n_process=2)
    spans2, dt2 = _timed(par, texts)
    same = [[(s.start, s.end, s.label) for s in sp] for sp in spans2] == [[(s.start, s.end, s.label) for s in sp] for sp in Scrubber(mode="spans").analyze_many(texts)]
    res["medsynth_n_process_2"] = {"notes_per_s": round(len(notes) / dt2, 1), "identical_spans": same}
    res["throughput_ratio_medsynth_vs_presidio_default"] = round(res["medsynth"]["notes_per_s"] / res["presidio_default"]["notes_per_s"], 2)
    res["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
