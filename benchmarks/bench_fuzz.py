"""Fuzz benchmark: how many hostile inputs per command end in a traceback (goal 0).

Runs every case of tests/hardening/fuzz_cases.py (random bytes, malformed JSONL/CSV/YAML, mutated recipes, hostile
--set overrides, corrupt manifests, signatures, reports, keys, budget values) through the `medsynth` command line
in-process, as `medsynth.cli.main` would, and counts per command: inputs tried, clean endings (exit 0/1/2 with a
message), and tracebacks (an exception other than MedsynthError escaped; with the type). Inputs come from
hypothesis with a fixed seed, so two checkouts are compared on the same inputs:

    python benchmarks/bench_fuzz.py --n 100 --out benchmarks/results/fuzz.json           # this checkout
    (cd OLD_CHECKOUT && python /path/to/bench_fuzz.py --n 100 --label before ...)        # another one

Usage: python benchmarks/bench_fuzz.py [--n 100] [--label after] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))  # the checkout being measured (its medsynth and its tests/ helpers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="inputs per command")
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    os.environ["MEDSYNTH_HOME"] = tempfile.mkdtemp(prefix="bench-fuzz-home-")
    os.environ.setdefault("MEDSYNTH_PLUGINS", "tests.recipe.plugin_steps")
    from hypothesis import HealthCheck, given, settings

    from tests.hardening.fuzz_cases import CASES
    from tests.hardening.harness import run_cli

    rows = {}
    t0 = time.time()
    for name, strategy, build in CASES:
        tally: Counter[str] = Counter()
        types: Counter[str] = Counter()

        @settings(max_examples=args.n, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def probe(x):
            tally["inputs"] += 1
            with tempfile.TemporaryDirectory() as d:
                try:
                    r = run_cli(*build(x, Path(d)))
                except Exception as e:  # the harness itself failed: count as a traceback
                    tally["traceback"] += 1
                    types[type(e).__name__] += 1
                    return
                if r.crash:
                    tally["traceback"] += 1
                    types[r.crash] += 1
                elif "unexpected internal error" in r.text:
                    tally["traceback"] += 1  # caught by main's last resort: still a defect
                    types["unexpected internal error"] += 1
                else:
                    tally[f"exit {r.code}"] += 1

        probe()
        rows[name] = {**dict(tally), "traceback_types": dict(types)}
        print(f"{name:22s} inputs {tally['inputs']:4d}  tracebacks {tally['traceback']:3d}  {dict(types) or ''}", flush=True)
    total = sum(r["inputs"] for r in rows.values())
    crashes = sum(r.get("traceback", 0) for r in rows.values())
    print(f"total: {total} inputs, {crashes} tracebacks ({time.time() - t0:.0f}s)")
    if args.out:
        res = json.loads(args.out.read_text()) if args.out.exists() else {}
        res[args.label] = {"how": f"{args.n} hypothesis inputs per command (derandomized), in-process CLI as medsynth.cli.main; "
                                  "traceback = an exception other than MedsynthError/SystemExit escaped, or main's last-resort message",
                           "commands": rows, "total_inputs": total, "total_tracebacks": crashes}
        from harness import save

        save(args.out, res)


if __name__ == "__main__":
    main()
