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


def test_ages_over_89_written_without_old_or_in_words(spans_scrubber):
    found = lambda t: {x.text for x in spans_scrubber.analyze(t) if x.label == "AGE_OVER_89"}  # noqa: E731
    assert found("Willekens, DOB 19310130, 101 years. Moderate hearing loss.") == {"101"}
    assert found("Patient is ninety-two years old.") == {"ninety-two"}
    assert found("aged ninety-five, lives alone") == {"ninety-five"}
    assert found("one hundred and one years old on admission") == {"one hundred and one"}
    for duration in ["smoked for 95 years", "diagnosed over 90 years ago", "a 92-year history", "85 years old"]:
        assert not found(duration), duration


def test_weekday_and_month_year_dates_are_whole_spans(spans_scrubber):
    dates = lambda t: {x.text for x in spans_scrubber.analyze(t) if x.label == "DATE"}  # noqa: E731
    assert dates("Hospice admission Mon 24 Oct 1977. Stable.") == {"Mon 24 Oct 1977"}
    assert dates("Seen Thursday, March 3, 2001 in clinic.") == {"Thursday, March 3, 2001"}
    assert dates("Next review August of 2000.") == {"August of 2000"}
    assert dates("Compared with the study of Sep '75.") == {"Sep '75"}
    assert not dates("given 2 mg at 10 am on Mon, repeat in 3 days")


def test_names_with_particles_and_diacritics(spans_scrubber):
    names = lambda t: {x.text for x in spans_scrubber.analyze(t) if x.label == "NAME"}  # noqa: E731
    assert names("Echo bubble study for Ms Ó Héadtromáin today.") == {"Ó Héadtromáin"}
    assert names("Dr. Müller saw Mrs Ní Bhriain.") == {"Müller", "Ní Bhriain"}
    assert names("Consultant: Dr al-Rashid") == {"al-Rashid"}
    assert names("Patient: St-Laurent T.  Study date 2016") == {"St-Laurent T"}


def test_canadian_and_uk_postcodes_but_not_tumour_stages(spans_scrubber):
    zips = lambda t: {x.text for x in spans_scrubber.analyze(t) if x.label == "ZIP"}  # noqa: E731
    assert zips("Lives at 12 Main St, Toronto ON M5V 2T6.") == {"M5V 2T6"}
    assert zips("Address: Flat 2, London SW1A 1AA") == {"SW1A 1AA"}
    assert not zips("Staged T2N0M0, Gleason 3+4, B12 400 pg/mL")


def test_eponym_phrases_with_hyphens_or_their_head_noun_are_not_names():
    from medsynth.scrub.engine import _tagger_false_positive

    rules = Scrubber(mode="spans")
    assert not rules.analyze("Pattern: Cheyne-Stokes respiration noted overnight.")
    text = "Kussmaul breathing, Ewing sarcoma and a Mallory-Weiss tear. Mr Ewing and Mrs Weiss were seen."
    for phrase, fp in [("Kussmaul breathing", True), ("Ewing sarcoma", True), ("Mallory-Weiss tear", True), ("Ewing", False), ("Weiss", False)]:
        a = text.index(phrase) if fp else text.index(phrase, text.index("Mr"))
        assert _tagger_false_positive("NAME", phrase, text, a + len(phrase)) is fp, phrase
    names = {x.text for x in rules.analyze("Mr Ewing and Mrs Novak were seen; Ewing reports pain.") if x.label == "NAME"}
    assert names == {"Ewing", "Novak"}


def test_vocabulary_guard_drops_clinical_words_but_never_a_name():
    """The guard drops a name/place detection made only of clinical vocabulary (ICD-10-CM, MedlinePlus drugs) that is
    no one's name; a word that is also a given or family name is always kept, and our own patterns are never guarded."""
    from medsynth.scrub.engine import _clinical_term

    for term in ["Helicobacter pylori", "Herceptin", "Takotsubo", "Acinetobacter baumannii", "Glipizide"]:
        assert _clinical_term("NAME", term), term
    for name in ["Bell", "Parkinson", "Hunter", "Johnson", "Still", "Maria Lopez", "Takotsubo Smith"]:
        assert not _clinical_term("NAME", name), name
    assert not _clinical_term("DATE", "Herceptin") and not _clinical_term("NAME", "Dr")
    guarded, plain = Scrubber(mode="spans"), Scrubber(mode="spans", vocabulary_guard=False)
    text = "Culture grew Acinetobacter baumannii; Dr. Hunter started Herceptin. Maria Lopez was told."
    g, p = ({t.text for t in s.analyze(text)} for s in (guarded, plain))
    assert {"Hunter", "Maria Lopez"} <= g and {"Acinetobacter", "Herceptin"} <= p and not {"Acinetobacter", "Herceptin"} & g
    assert g <= p  # the guard only removes detections


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
    assert rows == [{"id": "a", "text": "MRN: [MRN], seen [DATE]"}]  # 'ward' is dropped: not named in --keep-fields
    err = " ".join(r.stderr.split())  # rich wraps lines
    assert "dropped field(s)" in err and "ward (1 notes)" in err and "3B" not in err
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "scrub", "--in", str(inp), "--out", str(out), "--format", "masked", "--skip-bad-lines",
                        "--keep-fields", "ward"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x) for x in out.read_text().splitlines()] == [{"id": "a", "text": "MRN: [MRN], seen [DATE]", "ward": "3B"}]


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


# -- harder evaluation set and bad input -------------------------------------------------------------------------

def test_eval_set_is_hard_and_splits_share_no_names():
    from medsynth.scrub.evalset import _Pools, make_eval_set

    v, t = _Pools("validation"), _Pools("test")
    assert not set(v.last) & set(t.last) and not set(v.first) & set(t.first) and not set(v.hospitals) & set(t.hospitals)
    notes = make_eval_set(40, "test", seed=3)
    text = "\n".join(n.text for n in notes)
    assert sum("\n" in n.text for n in notes) >= 10  # wrapped lines and header blocks, in many notes
    gold_names = [n.text[a:b] for n in notes for a, b, lab in n.spans if lab == "NAME"]
    assert any(g.isupper() for g in gold_names) and any("," in g for g in gold_names)  # CAPS and LAST, FIRST
    assert any(w in text for w in ("c0", "1ine", "rn", "0n"))  # OCR-like confusions
    assert "  " in text  # and doubled spaces
    for n in notes:
        for a, b, _ in n.spans:
            assert n.text[a:b].strip() == n.text[a:b] and n.text[a:b]


def test_caps_headers_relations_and_ocr_keywords(spans_scrubber):
    txt = ("PATIENT NAME:   OKAFOR, GRACE\nMRN: 4411 2203\nHer husband Tomasz was at the bedside. Case d/w Lindqvist from cardiology. "
           "Pacemaker seria1 numbcr GE16565185 interrogated. PT IS A 97 YO MALE. Started Lasix 20 mg PO; FOLEY CATHETER noted.")
    found = {s.text for s in spans_scrubber.analyze(txt)}
    for item in ["OKAFOR, GRACE", "4411 2203", "Tomasz", "Lindqvist", "GE16565185", "97"]:
        assert item in found, item
    assert not any(w in " ".join(found) for w in ("Lasix", "FOLEY", "CATHETER"))


def test_long_document_windows_keep_offsets(spans_scrubber, monkeypatch):
    from medsynth.scrub import engine

    monkeypatch.setattr(engine, "WINDOW_CHARS", 400)
    filler = "The lungs are clear and the heart size is normal. " * 30
    txt = filler + "Seen by Dr. Alvarez on 03/14/2020. " + filler + "Her son Kenji called, MRN 99887766."
    spans = spans_scrubber.analyze(txt)
    for s in spans:
        assert txt[s.start : s.end] == s.text
    got = {(s.label, s.text) for s in spans}
    assert {("NAME", "Alvarez"), ("DATE", "03/14/2020"), ("NAME", "Kenji"), ("MRN", "99887766")} <= got
    assert len(spans) == len({(s.start, s.end) for s in spans})  # overlapping windows do not duplicate spans


@pytest.mark.slow
def test_one_megabyte_document(spans_scrubber):
    txt = "The lungs are clear. Heart size normal. " * 26_000 + "Seen by Dr. Alvarez, MRN 12345678."
    assert len(txt) > 1_000_000
    got = {(s.label, s.text) for s in spans_scrubber.analyze(txt)}
    assert ("MRN", "12345678") in got and ("NAME", "Alvarez") in got


def test_non_str_text_is_a_clear_error(spans_scrubber):
    with pytest.raises(TypeError, match="text #1 is int"):
        spans_scrubber.analyze_many(["ok", 5])


def test_parallel_workers_give_identical_spans(spans_scrubber):
    from medsynth.scrub.evalset import make_eval_set

    texts = [n.text for n in make_eval_set(8, "validation", seed=2)]
    par = Scrubber(mode="spans", n_process=2).analyze_many(texts)
    assert [[(s.start, s.end, s.label) for s in p] for p in par] == [[(s.start, s.end, s.label) for s in p] for p in spans_scrubber.analyze_many(texts)]


class _Run:
    def __init__(self, returncode: int, stderr: str):
        self.returncode = returncode
        self.stderr = " ".join(stderr.split())  # rich wraps long lines


def _cli(*args):
    """`medsynth scrub ...` in-process (the spaCy engine loads once for all these tests), with `medsynth.cli.main`'s
    error handling: a MedsynthError exits 2 with its message on stderr. One test above runs the real subprocess."""
    from typer.testing import CliRunner

    from medsynth.cli import app
    from medsynth.exceptions import MedsynthError

    r = CliRunner().invoke(app, ["scrub", *map(str, args)], terminal_width=400)
    if isinstance(r.exception, MedsynthError):
        return _Run(2, r.stderr + "\n" + str(r.exception))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return _Run(r.exit_code, r.stderr)


def test_cli_txt_folder_non_utf8_and_skip(tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    (d / "a.txt").write_text("Seen by Dr. Alvarez on 03/14/2020.", encoding="utf-8")
    (d / "b.txt").write_bytes("Patient Jos\xe9 Okafor".encode("latin1"))
    out = tmp_path / "o.jsonl"
    r = _cli("--in", d, "--out", out)
    assert r.returncode == 2 and "b.txt" in r.stderr and "UTF-8" in r.stderr and "Okafor" not in r.stderr
    r = _cli("--in", d, "--out", out, "--skip-bad-lines")
    assert r.returncode == 0, r.stderr
    assert "b.txt: skipped (not UTF-8)" in r.stderr and "1 input record(s) skipped" in r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in rows] == ["a"] and "Alvarez" not in rows[0]["text"]


def test_cli_csv_text_column_and_errors(tmp_path):
    p = tmp_path / "n.csv"
    p.write_text("note_id,body\n1,Seen by Dr. Alvarez\n2,\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    r = _cli("--in", p, "--out", out)
    assert r.returncode == 2 and "no column 'text'" in r.stderr and "--text-column" in r.stderr
    r = _cli("--in", p, "--out", out, "--text-column", "body", "--format", "spans")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 and rows[1]["spans"] == [] and rows[0]["spans"][0]["label"] == "NAME"
    assert "1 note(s) with empty text" in r.stderr  # nothing silently skipped
    bad = tmp_path / "latin.csv"
    bad.write_bytes("text\nJos\xe9 Okafor\n".encode("latin1"))
    r = _cli("--in", bad, "--out", out)
    assert r.returncode == 2 and "UTF-8" in r.stderr and "Okafor" not in r.stderr


def test_cli_malformed_lines_all_reported_and_no_phi_in_messages(tmp_path):
    inp = tmp_path / "n.jsonl"
    inp.write_text("\n".join([json.dumps({"id": "a", "text": "Dr. Alvarez"}), '{"id": "b", "text": "Okafor MRN 1234567', json.dumps({"id": "c"}),
                              json.dumps({"id": "d", "text": "fine"}), "[1, 2]"]) + "\n")
    out = tmp_path / "o.jsonl"
    r = _cli("--in", inp, "--out", out)
    # malformed lines and lines without text are reported together, in one pass
    assert r.returncode == 2 and "line(s) 2, 5" in r.stderr and "without a string field 'text' at line(s) 3" in r.stderr
    assert "Okafor" not in r.stderr and "1234567" not in r.stderr
    r = _cli("--in", inp, "--out", out, "--skip-bad-lines")
    assert r.returncode == 0
    assert "n.jsonl:3: no string field 'text' (skipped)" in r.stderr and "line(s) 2, 5" in r.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "d"]


def test_cli_oversized_document_clear_error(tmp_path):
    from medsynth.cli.scrub import MAX_CHARS

    inp = tmp_path / "big.jsonl"
    inp.write_text(json.dumps({"id": "big", "text": "a" * (MAX_CHARS + 1)}) + "\n")
    r = _cli("--in", inp, "--out", tmp_path / "o.jsonl")
    assert r.returncode == 2 and "line 1" in r.stderr and "Split the document" in r.stderr and "big" not in r.stderr.replace("big.jsonl", "")


def test_vocabulary_guard_reads_phrases_binomials_lists_and_keeps_places_and_names():
    """The guard's phrase, organism and list tests, each against the case that must survive: an eponym is dropped
    inside its clinical phrase only, an organism only written as a binomial, a place word is never dropped as a place."""
    from medsynth.scrub.engine import _clinical_term

    def guarded(label: str, span: str, text: str) -> bool:
        return _clinical_term(label, span, text, text.index(span))

    assert guarded("NAME", "Kaposi", "Biopsy showed Kaposi sarcoma of the foot.")
    assert not guarded("NAME", "Kaposi", "Seen with Mr Kaposi today.")  # the eponym alone is a possible surname
    assert guarded("NAME", "Kussmaul breathing", "Kussmaul breathing noted.")
    assert guarded("NAME", "epidermidis", "Cultures: Staphylococcus epidermidis in 2 of 4 bottles.")
    assert guarded("NAME", "Kaposi sarcoma, Kussmaul", "Kaposi sarcoma, Kussmaul breathing")
    assert not guarded("NAME", "Kaposi sarcoma, Maria", "Kaposi sarcoma, Maria Lopez")  # one part is a name
    assert guarded("NAME", "Omeprazole nightly", "Omeprazole nightly.")
    assert not guarded("LOCATION", "River Street", "Lives on River Street.")  # place words stay places
    assert not guarded("NAME", "Kaposi 4", "Kaposi 4")  # never with a digit


def test_score_values_are_not_identifiers_but_identifiers_stay():
    """A lone 1–3 digit value after an instrument's name is a score, not an ID, ZIP or date; after an ID cue, inside a
    longer identifier or after a month it stays."""
    from medsynth.scrub.engine import _score_value

    def score(text: str, value: str) -> bool:
        a = text.rindex(value)
        return _score_value(value, text, a, a + len(value))

    for text, value in [("CIWA 14", "14"), ("GAD-7 of 9", "9"), ("GAD-7 of 9", "7"), ("Braden score 16", "16"), ("Barthel: 85", "85")]:
        assert score(text, value), text
    for text, value in [("MRN 4411", "441"), ("Bed 12", "12"), ("Room 304", "304"), ("March 12", "12"), ("AB-120-4431", "120"),
                        ("on 3/12", "12"), ("Apt 7", "7")]:
        assert not score(text, value), text


def test_vocabulary_guard_reads_accented_names_as_whole_words():
    """"Gámez" is one word: split at the accent into "g" and "mez" it once matched a drug phrase and was dropped."""
    from medsynth.scrub.engine import _clinical_term

    text = "Lungs clear\nGámez reports dyspnoea."
    assert not _clinical_term("NAME", "Gámez", text, text.index("Gámez"))


def test_tagger_spans_are_judged_line_by_line():
    """A tagger span over a line break is cut into its lines, blanks trimmed, so each line meets the guards alone."""
    from medsynth.scrub.engine import _lines

    text = "MRN K-238-8619\n  Zyrtec 10 mg\n\n"
    assert [text[a:b] for a, b in _lines(text, 4, len(text))] == ["K-238-8619", "Zyrtec 10 mg"]
    assert [text[a:b] for a, b in _lines(text, 4, 14)] == ["K-238-8619"]
