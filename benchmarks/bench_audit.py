"""Planted-leak test of the audits (issue 5 protocol), with a separate validation construction for calibration.

Data: every IU chest X-ray report with a FINDINGS section (3,425), partitioned once by a seeded shuffle into
  private (1,500) | holdout (400) | clean stand-ins for validation (500) | clean stand-ins for test (1,000).
A clean stand-in is a real report of a patient who is NOT in the private set: what a perfect, non-memorising
generator could produce. Nothing is filtered out of the clean sets (the corpus repeats templated reports across
patients; such repeats stay in, a fair audit must not flag them).

Each construction plants into its clean set:
  5 private records copied verbatim, 5 paraphrased, 20 PHI strings (an invented name + MRN given to the audit as
  the private set's PHI) inserted into 20 clean records.
Planted private records are long (> 250 chars: copying a one-line template is not a leak) and disjoint between
the constructions. Paraphrases differ between constructions:
  validation: sentences shuffled, one dropped, synonym table A;
  test:       impression moved first, two sentences dropped, synonym table B, negations re-phrased, findings
              merged into compound sentences, a generic sentence added.
Thresholds were set on the validation construction only (``--construction validation``); the reported figures
are the test construction's. Goal: every planted leak flagged, ≤ 1% of clean records flagged.
Thresholds: since 2026-12-02 the policy's clean_flag_budget (1 %) is split among the four holdout-calibrated audits
(0.25 % each, split-conformal on the holdout); the earlier per-audit 99 % quantiles flagged 1.33 % of the clean
test records (the union of audits each allowed ~1 %). That test construction (partition seed 0) had been seen, so
the fresh test construction is ``--partition-seed 7 --construction test``, run once.
Usage: python benchmarks/bench_audit.py [--construction test|validation|both] [--partition-seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time
from pathlib import Path

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)

SYN_A = [("within normal limits", "normal"), ("There is no", "No"), ("is seen", "is identified"), ("lungs", "lung fields"),
         ("heart size", "cardiac size"), ("pleural effusion", "effusion"), ("pneumothorax", "PTX"), ("No acute", "No evidence of acute")]
SYN_B = [("normal", "unremarkable"), ("The lungs are clear", "Clear lungs"), ("cardiomediastinal silhouette", "mediastinal contour"),
         ("There is", "We see"), ("is noted", "is present"), ("bilateral", "on both sides"), ("opacity", "density"), ("mild", "slight"),
         ("consolidation", "airspace disease"), ("stable", "unchanged"), ("Heart", "Cardiac shadow"), ("demonstrated", "shown")]
GENERIC = ["Osseous structures are grossly intact.", "No free air under the diaphragm.", "Soft tissues are unremarkable."]


def _sents(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]


def paraphrase_a(text: str, rng: random.Random) -> str:
    head, _, tail = text.partition("IMPRESSION:")
    sents = _sents(head.replace("FINDINGS:", "").strip())
    rng.shuffle(sents)
    if len(sents) > 3:
        sents.pop()
    out = "FINDINGS: " + " ".join(sents) + (" IMPRESSION:" + tail if tail else "")
    for a, b in SYN_A:
        out = out.replace(a, b)
    return out


def paraphrase_b(text: str, rng: random.Random) -> str:
    head, _, tail = text.partition("IMPRESSION:")
    sents = _sents(head.replace("FINDINGS:", "").strip())
    rng.shuffle(sents)
    for _ in range(2):
        if len(sents) > 3:
            sents.pop(rng.randrange(len(sents)))
    sents = [re.sub(r"^No ([a-z ]+)\.$", r"There is no evidence of \1.", s) for s in sents]
    merged = []
    i = 0
    while i < len(sents):
        if i + 1 < len(sents) and rng.random() < 0.5:
            merged.append(sents[i].rstrip(".") + ", and " + sents[i + 1][0].lower() + sents[i + 1][1:])
            i += 2
        else:
            merged.append(sents[i])
            i += 1
    merged.insert(rng.randrange(len(merged) + 1), rng.choice(GENERIC))
    out = (("IMPRESSION:" + tail.strip() + " ") if tail else "") + "FINDINGS: " + " ".join(merged)
    for a, b in SYN_B:
        out = out.replace(a, b)
    return out


def partition(seed: int = 0):
    from medsynth.data.records import Record
    from medsynth.data.sources.iu_xray import load_iu_reports, report_text

    docs = sorted((d for d in load_iu_reports() if "FINDINGS" in d["sections"]), key=lambda d: d["id"])
    random.Random(seed).shuffle(docs)

    def rec(d, p):
        return Record(id=f"{p}-{d['id']}", text=report_text(d["sections"]), labels=d["labels"] or ["normal"])

    sizes = [("private", 1500), ("holdout", 400), ("clean_validation", 500), ("clean_test", 1000)]
    out, i = {}, 0
    for name, n in sizes:
        out[name] = [rec(d, name[0] if name in ("private", "holdout") else "s") for d in docs[i : i + n]]
        i += n
    return out


def construct(parts, which: str, seed: int):
    from medsynth.data.records import Record

    rng = random.Random(seed)
    private = parts["private"]
    # distinctive private records: long, and no other private record is a near-copy (a report that several patients
    # share word for word is a template, not one patient's record)
    from collections import Counter

    from medsynth.audit.copy import _novel

    counts = Counter(r.text for r in private)
    cands = [r for r in private if len(r.text) > 250 and counts[r.text] == 1]
    long_priv = []
    for r in cands:
        others = [o.text for o in private if o.id != r.id and abs(len(o.text) - len(r.text)) < 200]
        if _novel([r.text], others, threshold=0.5):
            long_priv.append(r)
        if len(long_priv) >= 60:
            break
    half = len(long_priv) // 2
    pool = long_priv[:half] if which == "validation" else long_priv[half:]  # disjoint planted private records
    clean = list(parts["clean_validation" if which == "validation" else "clean_test"])
    para = paraphrase_a if which == "validation" else paraphrase_b
    chosen = rng.sample(pool, 10)
    verb = [Record(id=f"leak-verbatim-{i}", text=r.text, labels=r.labels) for i, r in enumerate(chosen[:5])]
    paras = [Record(id=f"leak-paraphrase-{i}", text=para(r.text, rng), labels=r.labels) for i, r in enumerate(chosen[5:])]
    names = ["Okafor", "Lindqvist", "Marchetti", "Haddad", "Nowak"] if which == "test" else ["Brightwater", "Kettering", "Quintero", "Stanhope", "Ingram"]
    phi = [f"{rng.choice(names)} MRN {rng.randint(10**7, 10**8)}" for _ in range(20)]
    phi_recs = []
    hosts = rng.sample(clean, 20)
    for i, (r, s) in enumerate(zip(hosts, phi, strict=True)):
        phi_recs.append(Record(id=f"leak-phi-{i}", text=r.text.replace("FINDINGS:", f"FINDINGS: Patient {s}.", 1), labels=r.labels))
    used = {r.id for r in hosts}
    synthetic = [r for r in clean if r.id not in used] + verb + paras + phi_recs
    return synthetic, phi, {r.id for r in verb + paras + phi_recs}


def evaluate(parts, which: str, seed: int, policy=None):
    from medsynth.audit import run_audits
    from medsynth.audit.policy import load_policy

    synthetic, phi, planted = construct(parts, which, seed)
    pol = policy or load_policy()
    t0 = time.time()
    results = run_audits(synthetic, parts["private"], parts["holdout"], policy=pol, phi_strings=phi)
    total_s = time.time() - t0
    flagged = set().union(*[r.flagged_ids for r in results])
    clean_ids = {r.id for r in synthetic} - planted
    per_kind = {k: sum(1 for x in planted if x.startswith(f"leak-{k}") and x in flagged) for k in ("verbatim", "paraphrase", "phi")}
    return {
        "construction": which, "synthetic": len(synthetic), "clean": len(clean_ids), "planted": {"verbatim": 5, "paraphrase": 5, "phi": 20},
        "planted_flagged": per_kind, "planted_flagged_share": round(len(planted & flagged) / len(planted), 4),
        "clean_flagged": len(flagged & clean_ids), "clean_flagged_share": round(len(flagged & clean_ids) / len(clean_ids), 4),
        "per_audit": {r.audit: {"flagged": len(r.flagged_ids), "planted_caught": len(r.flagged_ids & planted), "clean_flagged": len(r.flagged_ids & clean_ids),
                                "verdict": r.verdict, "figures": {f["name"]: f["value"] for f in r.figures if not isinstance(f["value"], (list, dict))}}
                      for r in results},
        "seconds_all_audits": round(total_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--construction", default="both", choices=["test", "validation", "both"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/audit.json")
    ap.add_argument("--partition-seed", type=int, default=0, help="seed of the corpus partition: another seed draws new private / holdout / clean "
                    "sets and new planted records from the same corpus (a fresh test construction)")
    a = ap.parse_args()
    parts = partition(a.partition_seed)
    res = {"partition": {k: len(v) for k, v in parts.items()}, "partition_seed": a.partition_seed,
           "load_avg_at_start": [round(x, 2) for x in os.getloadavg()], "note": "shared machine: seconds are indicative only"}
    for which in (["validation", "test"] if a.construction == "both" else [a.construction]):
        res[which] = evaluate(parts, which, seed=1 if which == "validation" else 2)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    save(a.out, res, default=str)
    print(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
