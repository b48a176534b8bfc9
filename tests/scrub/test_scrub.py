import json
import subprocess
import sys

import pytest

from medsynth.scrub.engine import Scrubber
from medsynth.scrub.surrogate import shift_date

NOTE = ("Patient John Smith (MRN 12345678), DOB 03/14/1941, a 92-year-old man seen by Dr. Alvarez at St. Mary's Hospital, "
        "123 Main Street, Springfield IL 62704. Phone (555) 123-4567. Email jsmith@mail.com. Serial: AB12-99871. "
        "BP 120/80, HR 72 at 14:30 for 3 days. Foley catheter placed. History of Parkinson disease. Follow-up on 04/02/1941.")


@pytest.fixture(scope="module")
def spans_scrubber():
    return Scrubber(mode="spans")


def test_detects_clinical_phi_presidio_misses(spans_scrubber):
    found = {(s.label, s.text) for s in spans_scrubber.analyze(NOTE)}
    for item in [("NAME", "John Smith"), ("MRN", "12345678"), ("DATE", "03/14/1941"), ("AGE_OVER_89", "92"), ("NAME", "Alvarez"),
                 ("HOSPITAL", "St. Mary's Hospital"), ("ADDRESS", "123 Main Street"), ("ZIP", "62704"), ("PHONE", "(555) 123-4567"),
                 ("EMAIL", "jsmith@mail.com"), ("DEVICE_ID", "AB12-99871"), ("DATE", "04/02/1941")]:
        assert item in found, item


def test_no_false_positives_on_clinical_expressions(spans_scrubber):
    texts = {s.text for s in spans_scrubber.analyze(NOTE)}
    for neg in ["Foley", "Parkinson", "14:30", "3 days", "120/80", "72", "DOB", "MRN"]:
        assert not any(neg == t or neg in t.split() for t in texts), neg


def test_presidio_defaults_baseline_misses_mrn_and_address():
    base = {(s.label, s.text) for s in Scrubber(mode="spans", presidio_defaults_only=True).analyze(NOTE)}
    assert ("MRN", "12345678") not in base and ("ADDRESS", "123 Main Street") not in base


def test_mask_and_surrogate_modes():
    masked = Scrubber(mode="mask").scrub(NOTE).text
    assert "John Smith" not in masked and "[NAME]" in masked and "[MRN]" in masked and "Foley catheter" in masked
    s = Scrubber(mode="surrogate", seed=1)
    a = s.scrub("Dr. Alvarez saw the patient on 03/14/2020; Dr. Alvarez called back on 03/20/2020.", group="p1").text
    assert "Alvarez" not in a
    # same real name -> same fake name within the group; the 6-day interval is kept
    import re

    names = re.findall(r"Dr\. (\w+)", a)
    assert len(set(names)) == 1
    d1, d2 = re.findall(r"\d{2}/\d{2}/\d{4}", a)
    from datetime import datetime

    gap = (datetime.strptime(d2, "%m/%d/%Y") - datetime.strptime(d1, "%m/%d/%Y")).days
    assert gap == 6 and d1 != "03/14/2020"


def test_shift_date_formats():
    assert shift_date("03/14/2020", 1) == "03/15/2020"
    assert shift_date("2020-12-31", 1) == "2021-01-01"
    assert shift_date("March 3, 2020", 2) == "March 5, 2020"


def test_empty_texts_ok(spans_scrubber):
    assert spans_scrubber.analyze_many(["", "   "]) == [[], []]


def test_cli_jsonl_spans_and_bad_lines(tmp_path):
    inp = tmp_path / "notes.jsonl"
    inp.write_text(json.dumps({"id": "a", "text": "MRN: 445566778, seen 03/14/2020", "ward": "3B"}) + "\nnot json\n")
    out = tmp_path / "out.jsonl"
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "scrub", "--in", str(inp), "--out", str(out), "--format", "spans"], capture_output=True, text=True)
    assert r.returncode == 2 and "line(s) 2" in r.stderr and "445566778" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "scrub", "--in", str(inp), "--out", str(out), "--format", "masked", "--skip-bad-lines"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows == [{"id": "a", "text": "MRN: [MRN], seen [DATE]", "ward": "3B"}]


def test_cli_non_utf8_clear_error(tmp_path):
    inp = tmp_path / "notes.jsonl"
    inp.write_bytes('{"id": "a", "text": "Jos\xe9"}\n'.encode("latin1"))
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "scrub", "--in", str(inp), "--out", str(tmp_path / "o.jsonl")], capture_output=True, text=True)
    assert r.returncode == 2 and "UTF-8" in r.stderr


def test_eval_set_gold_offsets_and_disjoint_templates():
    from medsynth.scrub.evalset import TEMPLATES_A, TEMPLATES_B, make_eval_set

    assert not set(TEMPLATES_A) & set(TEMPLATES_B)
    notes = make_eval_set(20, "test")
    labels = {lab for n in notes for _, _, lab in n.spans}
    assert {"NAME", "DATE", "MRN", "SSN", "EMAIL", "ZIP", "DEVICE_ID", "VEHICLE_ID", "URL", "IP_ADDRESS"} <= labels
    for n in notes:
        for a, b, _ in n.spans + n.negatives:
            assert 0 <= a < b <= len(n.text) and n.text[a:b].strip() == n.text[a:b]


def test_recall_on_held_out_templates(spans_scrubber):
    from medsynth.scrub.evalset import make_eval_set

    notes = make_eval_set(15, "test", seed=5)
    preds = spans_scrubber.analyze_many([n.text for n in notes])
    gold = sum(len(n.spans) for n in notes)
    hit = sum(any(p.start < b and a < p.end for p in ps) for n, ps in zip(notes, preds, strict=True) for a, b, _ in n.spans)
    assert hit / gold >= 0.95
