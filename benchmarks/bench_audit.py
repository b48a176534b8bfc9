"""Planted-leak test of the audits (issue protocol).

private = IU train split, holdout = IU validation split, clean synthetic stand-ins = 1,000 IU *test* split reports
(real reports of other patients: what a perfect, non-memorising generator would produce). Planted: 5 private
records copied verbatim, 5 paraphrased (sentence order shuffled, synonyms swapped, a sentence dropped), and 20
PHI strings (invented names/MRNs/dates given to the audit as the private set's PHI) inserted into 20 clean records.
Figures: share of planted leaks flagged (goal: all), share of clean records flagged (goal ≤ 1%), seconds per audit.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYN = [("within normal limits", "normal"), ("There is no", "No"), ("is seen", "is identified"), ("lungs", "lung fields"),
       ("heart size", "cardiac size"), ("pleural effusion", "effusion"), ("pneumothorax", "PTX"), ("No acute", "No evidence of acute")]


def paraphrase(text: str, rng: random.Random) -> str:
    head, _, tail = text.partition("IMPRESSION:")
    sents = [s.strip() for s in re.split(r"(?<=\.)\s+", head.replace("FINDINGS:", "").strip()) if s.strip()]
    rng.shuffle(sents)
    if len(sents) > 3:
        sents.pop()
    out = "FINDINGS: " + " ".join(sents) + (" IMPRESSION:" + tail if tail else "")
    for a, b in SYN:
        out = out.replace(a, b)
    return out


def main() -> None:
    from medsynth.audit import run_audits
    from medsynth.audit.policy import load_policy
    from medsynth.data.records import Record
    from medsynth.data.sources.iu_xray import load_iu_reports, report_text

    rng = random.Random(0)
    docs = [d for d in load_iu_reports() if "FINDINGS" in d["sections"]]
    rec = lambda d, p: Record(id=f"{p}-{d['id']}", text=report_text(d["sections"]), labels=d["labels"] or ["normal"])  # noqa: E731
    private = [rec(d, "p") for d in docs if d["split"] == "train"]
    holdout = [rec(d, "h") for d in docs if d["split"] == "validation"]
    test = [rec(d, "s") for d in docs if d["split"] == "test"]
    # clean stand-ins must not themselves be copies of private records: the IU corpus repeats templated reports across
    # patients and splits, so test reports with word-3-gram Jaccard >= 0.5 to any private report are excluded
    # (an independent definition of "not a copy", stated in docs/benchmarks.md)
    from datasketch import MinHash, MinHashLSH

    def mh(t):
        m = MinHash(num_perm=128, seed=7)
        toks = re.findall(r"\w+", t.lower())
        for i in range(max(len(toks) - 2, 1)):
            m.update(" ".join(toks[i:i + 3]).encode())
        return m

    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    for r in private:
        lsh.insert(r.id, mh(r.text))
    novel = [r for r in test if not lsh.query(mh(r.text))]
    clean = rng.sample(novel, min(1000, len(novel)))
    # planted leaks: long, distinctive private records (copying a one-line template is not a leak)
    long_priv = [r for r in private if len(r.text) > 250]
    verb = [Record(id=f"leak-verbatim-{i}", text=r.text, labels=r.labels) for i, r in enumerate(rng.sample(long_priv, 5))]
    para = [Record(id=f"leak-paraphrase-{i}", text=paraphrase(r.text, rng), labels=r.labels) for i, r in enumerate(rng.sample(long_priv, 5))]
    phi = [f"{rng.choice(['Okafor', 'Lindqvist', 'Marchetti', 'Haddad', 'Nowak'])} MRN {rng.randint(10**7, 10**8)}" for _ in range(20)]
    phi_recs = []
    for i, (r, s) in enumerate(zip(rng.sample(clean, 20), phi, strict=True)):
        phi_recs.append(Record(id=f"leak-phi-{i}", text=r.text.replace("FINDINGS:", f"FINDINGS: Patient {s}.", 1), labels=r.labels))
    planted_ids = {r.id for r in verb + para + phi_recs}
    used = {r.id for r in phi_recs}
    synthetic = [r for r in clean if r.id not in used] + verb + para + phi_recs
    pol = load_policy()
    t0 = time.time()
    results = run_audits(synthetic, private, holdout, policy=pol, phi_strings=phi)
    total_s = time.time() - t0
    flagged = set().union(*[r.flagged_ids for r in results])
    per_kind = {k: sum(1 for x in planted_ids if x.startswith(f"leak-{k}") and x in flagged) for k in ("verbatim", "paraphrase", "phi")}
    clean_ids = {r.id for r in synthetic} - planted_ids
    res = {
        "test_reports": len(test), "test_reports_not_copies": len(novel),
        "private": len(private), "holdout": len(holdout), "synthetic": len(synthetic), "planted": {"verbatim": 5, "paraphrase": 5, "phi": 20},
        "planted_flagged": per_kind, "planted_flagged_share": len(planted_ids & flagged) / len(planted_ids),
        "clean_flagged_share": len(flagged & clean_ids) / len(clean_ids), "clean_flagged": len(flagged & clean_ids),
        "per_audit": {r.audit: {"flagged": len(r.flagged_ids), "planted_caught": len(r.flagged_ids & planted_ids), "clean_flagged": len(r.flagged_ids & clean_ids),
                                "verdict": r.verdict} for r in results},
        "seconds_all_audits": round(total_s, 1),
    }
    out = ROOT / "benchmarks/results/audit.json"
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
