"""Hostile inputs for every file-reading command, as hypothesis strategies (used by test_fuzz.py and by
benchmarks/bench_fuzz.py, which counts tracebacks before and after a change).

Each *case* is ``(command name, strategy of an input, build(input, folder) -> CLI arguments)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

__all__ = ["CASES", "json_values", "PATHLIKE"]

ROOT = Path(__file__).resolve().parents[2]

json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)
# values JSON cannot hold (nan, inf) come from Python's json module as NaN/Infinity: hostile too
json_lenient = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)
record_like = st.fixed_dictionaries({}, optional={"id": json_values, "text": st.one_of(st.text(max_size=200), json_values), "labels": json_values,
                                                  "spans": json_values, "meta": json_values, "kind": st.sampled_from(["text", "row", "image", "x"]),
                                                  "values": json_values, "patient_name": st.text(max_size=20)})
jsonl_text = st.lists(st.one_of(record_like.map(json.dumps), json_lenient.map(json.dumps), st.text(max_size=80)), max_size=8).map("\n".join)
csv_text = st.lists(st.lists(st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=15),
                                       st.floats().map(str), st.sampled_from(["", "NA", '"', ",", "\n", "\ufeff"])), min_size=1, max_size=5),
                    max_size=8).map(lambda rows: "\n".join(",".join(r) for r in rows))
raw = st.binary(max_size=1500)
PATHLIKE = ["..", "../x", "../../../../tmp/escaped", "/tmp/abs", "/", "a/b", "a\\b", "C:\\x", "~/x", "$HOME/x", ".", ".hidden", "-n",
            "x\x00y", "x\ny", "", " ", "ünïcødé", "a" * 300, "con", "nul.txt", "%2e%2e%2f", "..\\..\\x", "x/../../y"]


def _quickstart() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "recipes" / "quickstart.yaml").read_text(encoding="utf-8"))


@st.composite
def mutated_recipe(draw: Any) -> str:
    """A shipped recipe with one to three values replaced by hostile ones (wrong types, path-like names, huge numbers)."""
    r = _quickstart()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(r["steps"]) - 1))
        step = r["steps"][i]
        key = draw(st.sampled_from(sorted(step) + ["name", "output", "input", "n", "path", "policy"]))
        if key == "type":
            continue  # a wrong type is covered by the plain YAML cases; keep most mutations inside a known step
        step[key] = draw(st.one_of(st.sampled_from(PATHLIKE), json_lenient))
    if draw(st.booleans()):
        r[draw(st.sampled_from(["name", "seed", "privacy", "description"]))] = draw(json_lenient)
    return yaml.safe_dump(r, allow_unicode=True)


def _write(folder: Path, name: str, data: str | bytes) -> Path:
    p = folder / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return p


def _run_dir(folder: Path, files: dict[str, str | bytes]) -> Path:
    d = folder / "run"
    d.mkdir()
    for k, v in files.items():
        _write(d, k, v)
    return d


CASES: list[tuple[str, Any, Any]] = [
    ("scrub jsonl", st.one_of(raw, jsonl_text), lambda x, d: ["scrub", "--in", _write(d, "n.jsonl", x), "--out", d / "o.jsonl"]),
    ("scrub csv", st.one_of(raw, csv_text), lambda x, d: ["scrub", "--in", _write(d, "n.csv", x), "--out", d / "o.jsonl"]),
    ("scrub txt folder", raw, lambda x, d: ["scrub", "--in", _write(d, "a.txt", x).parent, "--out", d / "out" / "o.jsonl"]),
    ("impute csv", st.one_of(raw, csv_text), lambda x, d: ["impute", "--in", _write(d, "t.csv", x), "--out", d / "o.csv", "--method", "mean"]),
    ("impute parquet", raw, lambda x, d: ["impute", "--in", _write(d, "t.parquet", x), "--out", d / "o.csv", "--method", "mean"]),
    ("validate yaml", st.one_of(raw, json_lenient.map(lambda v: yaml.safe_dump(v, allow_unicode=True)), mutated_recipe()),
     lambda x, d: ["validate", _write(d, "r.yaml", x)]),
    ("run --dry-run", mutated_recipe(), lambda x, d: ["run", _write(d, "r.yaml", x), "--dry-run"]),
    ("run --set", st.lists(st.one_of(st.text(max_size=40), st.sampled_from(["steps.generate.n=abc", "steps.99.x=1", "=1", "a..b=1",
                                                                             "steps..n=1", "steps.generate.name=../x"])), max_size=4),
     lambda x, d: ["run", ROOT / "recipes" / "quickstart.yaml", "--dry-run", *[a for s in x for a in ("--set", s)]]),
    ("verify manifest", st.one_of(raw, json_lenient.map(json.dumps)),
     lambda x, d: ["verify", _run_dir(d, {"manifest.json": x, "a.txt": "x"})]),
    ("verify signature", st.one_of(raw, json_lenient.map(json.dumps)),
     lambda x, d: ["verify", _run_dir(d, {"manifest.json": json.dumps({"files": {"a.txt": {"sha256": "0" * 64, "size": 1}}}), "manifest.sig": x, "a.txt": "x"})]),
    ("report", st.one_of(raw, json_lenient.map(json.dumps)), lambda x, d: ["report", _run_dir(d, {"report.json": x})]),
    ("audit run dir", st.one_of(raw, json_lenient.map(json.dumps)), lambda x, d: ["audit", _run_dir(d, {"report.json": x})]),
    ("audit files", st.one_of(raw, jsonl_text),
     lambda x, d: ["audit", "--synthetic", _write(d, "s.jsonl", x), "--private", _write(d, "p.jsonl", x), "--audit", "verbatim_copy"]),
    ("train", st.one_of(raw, jsonl_text), lambda x, d: ["train", "--train", _write(d, "t.jsonl", x), "--out", d / "m", "--run-dir", d / "r"]),
    ("keys trust", raw, lambda x, d: ["keys", "trust", _write(d, "k.pem", x)]),
    ("budget create", st.tuples(st.text(max_size=20), st.sampled_from(["0", "-1", "nan", "inf", "1e309", "abc", "1", "8"]),
                                st.sampled_from(["0", "1", "2", "-1e-5", "nan", "1e-5", "x"])),
     lambda x, d: ["budget", "create", x[0], "--epsilon", x[1], "--delta", x[2]]),
]
