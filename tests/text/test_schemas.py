import pytest

from medsynth.exceptions import RecipeError
from medsynth.text.schemas import BUILTIN_SCHEMAS, annotate, load_schema


def _rels(ann):
    return {(ann.spans[r.head].text, r.label, ann.spans[r.tail].text) for r in ann.relations}


def test_builtin_schemas_load_and_declare_their_types():
    assert set(BUILTIN_SCHEMAS) == {"radiology", "i2b2_2010"}
    rad = load_schema("radiology")
    assert rad.entity_labels == ["FINDING", "DEVICE", "SEVERITY", "ANATOMY", "NEGATION_CUE"]
    assert {r.name for r in rad.relations} == {"has_severity", "located_at", "negated_by"}
    assert "Cardiomegaly" in rad.doc_label_values and "Catheters, Indwelling" in rad.doc_label_values
    i2b2 = load_schema("i2b2_2010")
    assert [e.name for e in i2b2.entities] == ["PROBLEM", "TEST", "TREATMENT"]
    assert {r.name for r in i2b2.relations} == {"TrIP", "TrWP", "TrCP", "TrAP", "TrNAP", "TeRP", "TeCP", "PIP"}


def test_radiology_annotation_spans_relations_labels():
    t = "FINDINGS: Mild cardiomegaly. Streaky opacity in the left lower lobe. No pleural effusion. A left-sided catheter. IMPRESSION: Cardiomegaly."
    ann = annotate(t, load_schema("radiology"), ["Cardiomegaly", "Opacity", "Pleural Effusion", "Catheters, Indwelling", "normal"])
    assert all(t[s.start:s.end] == s.text for s in ann.spans)
    assert {(s.text, s.label) for s in ann.spans} >= {("Mild", "SEVERITY"), ("cardiomegaly", "FINDING"), ("opacity", "FINDING"),
                                                      ("left lower lobe", "ANATOMY"), ("No", "NEGATION_CUE"), ("pleural effusion", "FINDING")}
    assert _rels(ann) >= {("cardiomegaly", "has_severity", "Mild"), ("opacity", "located_at", "left lower lobe"),
                          ("pleural effusion", "negated_by", "No")}
    assert ann.labels == ["Cardiomegaly", "Catheters, Indwelling", "Opacity"]
    # a negated finding is never a document label, and never gets a location or severity relation
    assert not any(lab == "has_severity" and h == "pleural effusion" for h, lab, _ in _rels(ann))


def test_i2b2_relations_need_a_cue_between_arguments():
    sch = load_schema("i2b2_2010")
    t = "She was started on metoprolol for atrial fibrillation. A chest x-ray showed pneumonia. Denies chest pain."
    ann = annotate(t, sch)
    rels = _rels(ann)
    assert ("metoprolol", "TrAP", "atrial fibrillation") in rels
    assert ("chest x-ray", "TeRP", "pneumonia") in rels
    assert not any(h == "chest x-ray" and lab.startswith("Tr") for h, lab, _ in rels)
    assert {(s.text, s.label) for s in ann.spans} >= {("metoprolol", "TREATMENT"), ("atrial fibrillation", "PROBLEM"), ("chest pain", "PROBLEM")}
    assert ann.labels == []  # the clinical schema has no document labels


def test_bad_schema_files_are_clear_errors(tmp_path):
    with pytest.raises(RecipeError, match="Unknown schema 'nope'"):
        load_schema("nope")
    p = tmp_path / "s.yaml"
    p.write_text("name: x\nentities:\n  - {name: A, lexicon: {a: ['(unclosed']}}\n")
    with pytest.raises(RecipeError, match="invalid regex"):
        load_schema(p)
    p2 = tmp_path / "s2.yaml"
    p2.write_text("name: x\nentities: [{name: A}]\nrelations: [{name: r, head: [A], tail: [B]}]\n")
    with pytest.raises(RecipeError, match="unknown entity type"):
        load_schema(p2)
    p3 = tmp_path / "s3.yaml"
    p3.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="cannot be parsed"):
        load_schema(p3)


def test_custom_schema_file_with_terms(tmp_path):
    p = tmp_path / "onc.yaml"
    p.write_text("name: onc\nentities:\n  - {name: DRUG, terms: {cisplatin: [cisplatin, CDDP]}}\n  - {name: AE, negatable: true, terms: {nausea: [nausea]}}\n"
                 "relations:\n  - {name: causes, head: [DRUG], tail: [AE], cues: ['\\bcaus\\w*|after'], max_chars: 40}\n"
                 "negation_cues: ['\\bno\\b']\n")
    ann = annotate("Nausea after CDDP. No nausea today.", load_schema(p))
    assert [(s.text, s.label) for s in ann.spans] == [("Nausea", "AE"), ("CDDP", "DRUG"), ("nausea", "AE")]
    assert _rels(ann) == {("CDDP", "causes", "Nausea")}
    assert [m.negated for m in ann.mentions] == [False, False, True]
