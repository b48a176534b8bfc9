from hypothesis import given, settings
from hypothesis import strategies as st

from medsynth.data.records import Record, Relation, Span, invalid_spans
from medsynth.text.spans import (MentionRef, SpanStats, enforce, locate, parse_entity_list, parse_inline, resolve_overlaps,
                                 verify_and_repair)


def test_parse_inline_markdown_and_xml():
    st_ = SpanStats()
    text, spans = parse_inline("FINDINGS: [Mild](severity) [cardiomegaly](FINDING) in the <ANATOMY>left base</ANATOMY>.", stats=st_)
    assert text == "FINDINGS: Mild cardiomegaly in the left base."
    assert [(text[s.start:s.end], s.label) for s in spans] == [("Mild", "SEVERITY"), ("cardiomegaly", "FINDING"), ("left base", "ANATOMY")]
    assert all(text[s.start:s.end] == s.text for s in spans) and not st_.rejected


def test_parse_inline_malformed_markup_is_stripped_and_counted():
    st_ = SpanStats()
    text, spans = parse_inline("No <FINDING>effusion. [opacity](FINDING) seen</ANATOMY>.", stats=st_)
    assert "<" not in text and ">" not in text
    assert [s.text for s in spans] == ["opacity"] and text[spans[0].start:spans[0].end] == "opacity"
    assert st_.rejected["malformed_markup"] == 2


def test_parse_entity_list_formats():
    labels = ["FINDING", "ANATOMY"]
    a = parse_entity_list('[{"text": "opacity", "label": "finding"}, ["left base", "ANATOMY"], {"text": "x", "label": "DRUG"}]', labels)
    assert [(m.text, m.label) for m in a] == [("opacity", "FINDING"), ("left base", "ANATOMY")]
    b = parse_entity_list("FINDING: opacity; atelectasis\nANATOMY: left base")
    assert [(m.text, m.label) for m in b] == [("opacity", "FINDING"), ("atelectasis", "FINDING"), ("left base", "ANATOMY")]
    st_ = SpanStats()
    c = parse_entity_list("- opacity (FINDING); left base [ANATOMY]; garbage", labels, st_)
    assert [(m.text, m.label) for m in c] == [("opacity", "FINDING"), ("left base", "ANATOMY")]
    assert st_.rejected["unparsable_entity"] == 1
    st2 = SpanStats()
    assert parse_entity_list("[{broken json", labels, st2) == [] and st2.rejected["unparsable_entity_list"] == 1


def test_locate_prefers_hint_and_unused_occurrences_and_rejects_missing():
    t = "Opacity at the left base. Another opacity at the right base."
    st_ = SpanStats()
    spans = locate(t, [MentionRef("opacity", "FINDING"), MentionRef("opacity", "FINDING"), MentionRef("nodule", "FINDING"),
                       MentionRef("RIGHT  base", "ANATOMY", hint=50)], st_)
    assert [(s.start, s.text) for s in spans[:2]] == [(0, "Opacity"), (34, "opacity")]
    assert spans[2].text == "right base" and spans[2].start == t.index("right base")
    assert st_.rejected == {"not_found": 1} and st_.repaired["case_or_whitespace"] >= 1
    # word boundaries: "effusion" is not found inside "effusions" … but "pleural effusion" inside a longer text is
    assert locate("small effusions", [MentionRef("effusion", "F")]) == []


def test_verify_and_repair_each_reason():
    t = "FINDINGS: Mild cardiomegaly. No effusion."
    spans = [Span(start=15, end=27, label="F", text="cardiomegaly"),  # valid
             Span(start=14, end=27, label="F", text=" cardiomegaly"),  # boundary whitespace in span.text and offsets
             Span(start=17, end=29, label="F", text="cardiomegaly"),  # shifted by 2
             Span(start=10, end=14, label="S", text="MILD"),  # case
             Span(start=100, end=108, label="F", text="effusion"),  # out of bounds, unique elsewhere -> relocated
             Span(start=0, end=4, label="F", text="nodule"),  # nowhere
             Span(start=3, end=3, label="F", text="")]  # empty
    st_ = SpanStats()
    good, kept = verify_and_repair(t, spans, st_)
    assert all(t[s.start:s.end] == s.text for s in good)
    assert kept == [0, 1, 2, 3, 4]
    assert st_.repaired == {"trimmed": 1, "shifted": 1, "case_fixed": 1, "relocated": 1}
    assert st_.rejected == {"offset_mismatch": 1, "empty": 1}
    assert good[3].text == "Mild"


def test_overlap_policies():
    spans = [Span(start=0, end=10, label="A", text=""), Span(start=2, end=5, label="B", text=""), Span(start=8, end=14, label="C", text=""),
             Span(start=0, end=10, label="A", text="")]
    kl, _, ok = resolve_overlaps(spans, "keep_longest", SpanStats())
    assert [s.label for s in kl] == ["A"] and ok
    kf, _, _ = resolve_overlaps(spans, "keep_first")
    assert [s.label for s in kf] == ["A"]
    nest, _, _ = resolve_overlaps(spans, "allow_nested")
    assert [s.label for s in nest] == ["A", "B"]
    st_ = SpanStats()
    allr, _, ok = resolve_overlaps(spans, "reject", st_)
    assert not ok and st_.rejected["overlap_record"] == 1 and st_.rejected["duplicate"] == 1
    assert len(resolve_overlaps(spans, "allow")[0]) == 3


def test_enforce_remaps_relations_and_checks_types():
    t = "Mild opacity in the left base."
    spans = [Span(start=0, end=4, label="SEVERITY", text="Mild"), Span(start=5, end=12, label="FINDING", text="opacity"),
             Span(start=20, end=29, label="ANATOMY", text="left base"), Span(start=90, end=95, label="FINDING", text="bogus"),
             Span(start=0, end=4, label="DRUG", text="Mild")]
    rels = [Relation(head=1, tail=0, label="has_severity"), Relation(head=1, tail=2, label="located_at"), Relation(head=3, tail=2, label="located_at"),
            Relation(head=2, tail=1, label="located_at"), Relation(head=1, tail=2, label="causes")]
    types = {"has_severity": (["FINDING"], ["SEVERITY"]), "located_at": (["FINDING"], ["ANATOMY"])}
    st_ = SpanStats()
    res = enforce(t, spans, rels, labels=["FINDING", "ANATOMY", "SEVERITY"], relation_types=types, stats=st_)
    assert [s.text for s in res.spans] == ["Mild", "opacity", "left base"]
    assert [(r.head, r.tail, r.label) for r in res.relations] == [(1, 0, "has_severity"), (1, 2, "located_at")]
    assert st_.rejected == {"unknown_label": 1, "out_of_bounds": 1, "relation_endpoint_dropped": 1, "relation_argument_types": 1,
                            "relation_unknown_type": 1}
    Record(id="x", text=t, spans=res.spans, relations=res.relations)  # the record contract accepts the result


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet="ab .\n", min_size=0, max_size=40),
       raw=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.sampled_from(["X", "Y"]), st.text(alphabet="ab .", max_size=6)), max_size=8),
       policy=st.sampled_from(["keep_longest", "keep_first", "allow_nested", "allow", "reject"]))
def test_enforce_never_returns_an_invalid_span(text, raw, policy):
    spans = [Span(start=min(a, b), end=max(a, b), label=lab, text=s) for a, b, lab, s in raw]
    res = enforce(text, spans, [], overlaps=policy)
    assert not invalid_spans(Record(id="r", text=text, spans=res.spans))
    if policy in ("keep_longest", "keep_first"):
        assert not any(x.start < y.end and y.start < x.end for i, x in enumerate(res.spans) for y in res.spans[i + 1:])
