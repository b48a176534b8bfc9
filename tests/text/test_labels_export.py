import pytest

from medsynth.data.records import Record, Relation, Span
from medsynth.exceptions import DataFormatError
from medsynth.text.export import (export_records, read_brat, read_brat_docs, read_conll, read_conll_relations, read_hf, read_spacy,
                                  read_spacy_docs)
from medsynth.text.labels import detect, detect_labels
from medsynth.text.schemas import annotate, load_schema


def test_detector_negation_and_labels():
    t = "FINDINGS: Mild cardiomegaly. No pleural effusion. Pneumothorax is not seen. IMPRESSION: Cardiomegaly."
    ms = detect(t)
    assert any(m.label == "Cardiomegaly" and not m.negated for m in ms)
    assert any(m.label == "Pleural Effusion" and m.negated for m in ms)
    assert any(m.label == "Pneumothorax" and m.negated for m in ms)
    assert detect_labels(t) == ["Cardiomegaly"]
    assert detect_labels("FINDINGS: The lungs are clear. IMPRESSION: No acute disease.") == ["normal"]
    assert detect_labels("asdf qwer") == []
    # 'but' breaks the scope of a negation
    assert detect_labels("No effusion but there is a small pneumothorax.") == ["Pneumothorax"]
    for m in ms:
        assert t[m.start:m.end]


def _rec():
    t = "FINDINGS: Mild cardiomegaly. No pleural effusion. Opacity in the right lower lobe. IMPRESSION: Cardiomegaly."
    ann = annotate(t, load_schema("radiology"))
    return Record(id="r1", text=t, labels=ann.labels, spans=ann.spans, relations=ann.relations)


def test_export_round_trips_with_relations(tmp_path):
    r = _rec()
    assert r.relations and {x.label for x in r.relations} >= {"has_severity", "located_at", "negated_by"}
    paths = export_records([r], tmp_path, ["jsonl", "conll", "brat", "spacy", "hf"])
    back = Record.from_json(paths["jsonl"].read_text().splitlines()[0])
    assert back == r
    conll = read_conll(paths["conll"])["r1"]
    assert ("cardiomegaly", "B-FINDING") in conll and ("effusion", "I-FINDING") in conll and ("No", "B-NEGATION_CUE") in conll
    rels = read_conll_relations(paths["conll"])["r1"]
    assert {(lab, h, t) for lab, h, t in rels} == {(x.label, (r.spans[x.head].start, r.spans[x.head].end, r.spans[x.head].label),
                                                   (r.spans[x.tail].start, r.spans[x.tail].end, r.spans[x.tail].label)) for x in r.relations}
    text, spans = read_brat(paths["brat"])["r1"]
    assert text == r.text and spans == r.spans
    doc = read_brat_docs(paths["brat"])["r1"]
    assert doc.relations == r.relations
    conf = (paths["brat"] / "annotation.conf").read_text()
    assert "located_at\tArg1:FINDING, Arg2:ANATOMY" in conf
    (rid, stext, ents, cats) = read_spacy(paths["spacy"])[0]
    assert rid == "r1" and stext == r.text and {(a, b, lab) for a, b, lab in ents} == {(s.start, s.end, s.label) for s in r.spans}
    assert cats["Cardiomegaly"] == 1.0
    sd = read_spacy_docs(paths["spacy"])[0]
    assert [tuple(x) for x in sd.user_data["relations"]] == [(x.head, x.tail, x.label) for x in r.relations]
    assert len(sd.spans["sc"]) == len(r.spans)
    ds = read_hf(paths["hf"])
    assert ds[0]["text"] == r.text and ds[0]["labels"] == r.labels and len(ds[0]["spans"]) == len(r.spans)
    assert [(x["head"], x["tail"], x["label"]) for x in ds[0]["relations"]] == [(x.head, x.tail, x.label) for x in r.relations]


def test_hf_export_of_records_without_relations(tmp_path):
    r = Record(id="n", text="FINDINGS: Clear. IMPRESSION: Normal.", labels=["normal"])
    ds = read_hf(export_records([r], tmp_path, ["hf"])["hf"])
    assert ds[0]["relations"] == [] and ds[0]["spans"] == []


def test_invalid_span_never_exported(tmp_path):
    bad = Record(id="b", text="abc", spans=[Span(start=0, end=2, label="X", text="zz")])
    with pytest.raises(DataFormatError):
        export_records([bad], tmp_path, ["jsonl"])
    with pytest.raises(DataFormatError, match="file name"):
        export_records([Record(id="../x", text="abc")], tmp_path, ["brat"])
    assert Relation(head=0, tail=0, label="x")
