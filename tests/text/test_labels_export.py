import pytest

from medsynth.data.records import Record, Relation, Span
from medsynth.exceptions import DataFormatError
from medsynth.text.export import (export_records, read_brat, read_brat_docs, read_conll, read_conll_relations, read_hf, read_spacy,
                                  read_spacy_docs)
from medsynth.text.schemas import annotate, doc_labels, find_mentions, load_schema


def detect_labels(text: str) -> list[str]:
    return doc_labels(text, load_schema("radiology"))


def test_detector_negation_and_labels():
    t = "FINDINGS: Mild cardiomegaly. No pleural effusion. Pneumothorax is not seen. IMPRESSION: Cardiomegaly."
    ms = find_mentions(t, load_schema("radiology"), types=["FINDING", "DEVICE"])
    assert any(m.canonical == "Cardiomegaly" and not m.negated for m in ms)
    assert any(m.canonical == "Pleural Effusion" and m.negated for m in ms)
    assert any(m.canonical == "Pneumothorax" and m.negated for m in ms)
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
    paths = export_records([r], tmp_path, ["jsonl", "conll", "brat", "spacy", "hf"], doc_labels=["Cardiomegaly", "Opacity", "Nodule", "normal"])
    assert {f: (c["spans"], c["recovered"], c["lost"]) for f, c in paths.checks.items()} == {f: (len(r.spans), len(r.spans), {}) for f in paths}
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
    # doc.cats covers the whole label set, not only the labels this record carries
    assert cats == {"Cardiomegaly": 1.0, "Opacity": 1.0, "Nodule": 0.0, "normal": 0.0}
    sd = read_spacy_docs(paths["spacy"])[0]
    assert [tuple(x) for x in sd.user_data["relations"]] == [(x.head, x.tail, x.label) for x in r.relations]
    assert len(sd.spans["sc"]) == len(r.spans)
    ds = read_hf(paths["hf"])
    lab_names = ds.features["labels"].feature.names
    assert ds[0]["text"] == r.text and [lab_names[i] for i in ds[0]["labels"]] == r.labels and len(ds[0]["spans"]) == len(r.spans)
    assert lab_names == ["Cardiomegaly", "Opacity", "Nodule", "normal"]
    assert [(x["head"], x["tail"], x["label"]) for x in ds[0]["relations"]] == [(x.head, x.tail, x.label) for x in r.relations]


def _awkward_records():
    """Spans inside words (an LLM's or a lexicon's), overlapping spans, odd whitespace, an empty record."""
    def sp(t: str, sub: str, label: str, after: int = 0) -> Span:
        a = t.index(sub, after)
        return Span(start=a, end=a + len(sub), label=label, text=sub)

    t1 = "Small pleural effusion.\n\n  Stable  cardiomegaly;no pneumothorax."
    s1 = [sp(t1, "pleura", "ANATOMY"), sp(t1, "pleural effusion", "FINDING"), sp(t1, "cardiomegaly", "FINDING"), sp(t1, "no", "NEGATION_CUE", 30)]
    t2 = "Hyperinflated lungs, T12 compression deformity."
    s2 = [sp(t2, "inflated", "FINDING"), sp(t2, "lungs", "ANATOMY"), sp(t2, "T12", "ANATOMY")]
    return [Record(id="a1", text=t1, spans=s1, labels=["Pleural Effusion", "Cardiomegaly"]), Record(id="a2", text=t2, spans=s2, labels=["Lung"]),
            Record(id="a3", text="", labels=["normal"])]


def test_every_span_survives_each_export_read_by_its_own_tool(tmp_path):
    import subprocess
    import sys

    import spacy
    from seqeval.metrics.sequence_labeling import get_entities
    from spacy.tokens import DocBin

    recs = _awkward_records()
    res = export_records(recs, tmp_path, ["jsonl", "conll", "brat", "spacy", "hf"], splits={"train": 0.7, "validation": 0.3})  # a1 → train, a2, a3 → validation
    total = sum(len(r.spans) for r in recs)
    # the overlapping ANATOMY "pleura" inside FINDING "pleural effusion" cannot be in a flat format: counted, not hidden
    for fmt in ("jsonl", "brat", "spacy"):
        assert res.checks[fmt] == {"spans": total, "recovered": total, "lost": {}}, fmt
    hf = res.checks["hf"]
    assert (hf["spans"], hf["recovered"], hf["lost"]) == (total, total, {}) and sum(hf["splits"].values()) == 3
    assert res.checks["conll"]["recovered"] == total - 1 and sum(res.checks["conll"]["lost"].values()) == 1
    assert res.spans_lost == 0
    # spaCy's own CoNLL-2003 converter reads the file (no E177 from comment lines) and finds every flat span
    out = tmp_path / "converted"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "spacy", "convert", str(res["conll"]), str(out), "-c", "ner", "-n", "0"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conv = list(DocBin().from_disk(out / "records.spacy").get_docs(spacy.blank("en").vocab))
    assert len(conv) == 2  # the empty record has no tokens (its id and labels are in the side file)
    for d, r in zip(conv, recs[:2], strict=True):
        flat = sorted((s.text, s.label) for s in r.spans if not (s.label == "ANATOMY" and s.text == "pleura"))
        assert sorted((e.text, e.label_) for e in d.ents) == flat
    # seqeval decodes the tags to the same token ranges
    conll = read_conll(res["conll"])
    assert list(conll) == ["a1", "a2", "a3"] and conll["a3"] == []
    toks = [t for t, _ in conll["a2"]]
    assert [(lab, " ".join(toks[a:b + 1])) for lab, a, b in get_entities([g for _, g in conll["a2"]])] == [
        ("FINDING", "inflated"), ("ANATOMY", "lungs"), ("ANATOMY", "T12")]
    # spaCy DocBin: exact text, every span in doc.spans, the flat ones in doc.ents
    docs = read_spacy_docs(res["spacy"])
    assert [d.text for d in docs] == [r.text for r in recs]
    for d, r in zip(docs, recs, strict=True):
        assert {(s.start_char, s.end_char, s.label_) for s in d.spans["sc"]} == {(s.start, s.end, s.label) for s in r.spans}
    # HF: a DatasetDict with the asked splits, ClassLabel tags
    from datasets import load_from_disk

    dd = load_from_disk(str(res["hf"]))
    assert hf["splits"] == {"train": 1, "validation": 2} and {k: len(v) for k, v in dd.items()} == hf["splits"]
    names = next(iter(dd.values())).features["ner_tags"].feature.names
    assert names[0] == "O" and {"B-FINDING", "I-FINDING", "B-ANATOMY", "B-NEGATION_CUE"} <= set(names)
    # BRAT: the standoff offsets give back the span text
    for rid, d in read_brat_docs(res["brat"]).items():
        assert all(d.text[s.start:s.end] == s.text for s in d.spans) and rid in {"a1", "a2", "a3"}


def test_export_rejects_bad_splits(tmp_path):
    with pytest.raises(DataFormatError, match="summing to 1"):
        export_records(_awkward_records(), tmp_path, ["hf"], splits={"train": 0.7, "validation": 0.7})


def test_hf_export_of_records_without_relations(tmp_path):
    r = Record(id="n", text="FINDINGS: Clear. IMPRESSION: Normal.", labels=["normal"])
    ds = read_hf(export_records([r], tmp_path, ["hf"])["hf"])
    assert ds[0]["relations"] == [] and ds[0]["spans"] == []


def test_lexicon_matches_whole_words_only():
    sch = load_schema("radiology")
    t = "The pleural space is clear. Small pleural effusion. Findings are consistent with prior. The heart is enlarged. Mild dextroscoliosis."
    ann = annotate(t, sch)
    texts = {(s.text, s.label) for s in ann.spans}
    assert ("pleural space", "ANATOMY") in texts and ("pleura", "ANATOMY") not in texts
    assert ("dextroscoliosis", "FINDING") in texts
    assert not any(s.text.lower() in ("stent", "large") for s in ann.spans)  # not inside "consistent", "enlarged"
    for s in ann.spans:
        assert not (s.start > 0 and t[s.start - 1].isalnum()), s
        assert not (s.end < len(t) and t[s.end].isalnum()), s


def test_invalid_span_never_exported(tmp_path):
    bad = Record(id="b", text="abc", spans=[Span(start=0, end=2, label="X", text="zz")])
    with pytest.raises(DataFormatError):
        export_records([bad], tmp_path, ["jsonl"])
    with pytest.raises(DataFormatError, match="file name"):
        export_records([Record(id="../x", text="abc")], tmp_path, ["brat"])
    assert Relation(head=0, tail=0, label="x")


def test_export_of_no_records_writes_empty_files_and_says_so(tmp_path):
    res = export_records([], tmp_path, ["jsonl", "conll", "brat", "spacy", "hf"])
    assert "hf" not in res and res.checks["hf"]["not_written"] == "no records to export"
    assert res["jsonl"].read_text() == "" and read_conll(res["conll"]) == {} and read_spacy(res["spacy"]) == []
