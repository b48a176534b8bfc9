import pytest

from medsynth.data.records import Record, Span
from medsynth.exceptions import DataFormatError
from medsynth.text.export import export_records, read_brat, read_conll, read_hf, read_spacy
from medsynth.text.labels import detect, detect_labels
from medsynth.text.steps import build_prompt, parse_report


def test_detector_negation_and_labels():
    t = "FINDINGS: Mild cardiomegaly. No pleural effusion. Pneumothorax is not seen. IMPRESSION: Cardiomegaly."
    ms = detect(t)
    assert any(m.label == "Cardiomegaly" and not m.negated for m in ms)
    assert any(m.label == "Pleural Effusion" and m.negated for m in ms)
    assert any(m.label == "Pneumothorax" and m.negated for m in ms)
    assert detect_labels(t) == ["Cardiomegaly"]
    assert detect_labels("FINDINGS: The lungs are clear. IMPRESSION: No acute disease.") == ["normal"]
    assert detect_labels("asdf qwer") == []
    for m in ms:
        assert t[m.start:m.end]


def test_prompt_and_parse():
    p = build_prompt([(["Cardiomegaly"], "FINDINGS: Big heart. IMPRESSION: Cardiomegaly.")], ["normal"])
    assert p.endswith("Findings list: normal chest\nFINDINGS:")
    assert parse_report(" Lungs clear. IMPRESSION: Normal chest.", "stop")[0].startswith("FINDINGS: Lungs clear.")
    assert parse_report(" Lungs clear and", "length") == (None, "incomplete")
    assert parse_report(" Lungs are clear. Lungs are clear. Lungs are clear. IMPRESSION: ok ok", "stop")[1] == "degenerate_repetition"


def _rec():
    t = "FINDINGS: Mild cardiomegaly. No pleural effusion. IMPRESSION: Cardiomegaly."
    spans = [Span(start=m.start, end=m.end, label="NEGATED_FINDING" if m.negated else "FINDING", text=t[m.start:m.end]) for m in detect(t)]
    return Record(id="r1", text=t, labels=["Cardiomegaly"], spans=spans)


def test_export_round_trips(tmp_path):
    r = _rec()
    paths = export_records([r], tmp_path, ["jsonl", "conll", "brat", "spacy", "hf"])
    conll = read_conll(paths["conll"])["r1"]
    assert ("cardiomegaly", "B-FINDING") in conll and ("effusion", "I-NEGATED_FINDING") in conll
    text, spans = read_brat(paths["brat"])["r1"]
    assert text == r.text and {(s.start, s.end, s.label) for s in spans} == {(s.start, s.end, s.label) for s in r.spans}
    (rid, stext, ents, cats) = read_spacy(paths["spacy"])[0]
    assert rid == "r1" and stext == r.text and {(a, b, lab) for a, b, lab in ents} == {(s.start, s.end, s.label) for s in r.spans}
    assert cats["Cardiomegaly"] == 1.0
    ds = read_hf(paths["hf"])
    assert ds[0]["text"] == r.text and ds[0]["labels"] == ["Cardiomegaly"] and len(ds[0]["spans"]) == len(r.spans)


def test_invalid_span_never_exported(tmp_path):
    bad = Record(id="b", text="abc", spans=[Span(start=0, end=2, label="X", text="zz")])
    with pytest.raises(DataFormatError):
        export_records([bad], tmp_path, ["jsonl"])
