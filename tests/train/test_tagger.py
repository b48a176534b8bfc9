"""NER tagger on synthetic spans: BIO alignment, entity-level F1 (seqeval), DP, bad input."""

import pytest

from medsynth.data.records import Record, Span
from medsynth.exceptions import DataFormatError
from medsynth.dp import DPConfig
from medsynth.train.tagger import Tagger, TaggerConfig, fit_tagger, tags_to_spans, words_and_tags

from .conftest import text_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # restored after the module, not set at import


def test_bio_alignment_roundtrip():
    r = text_records(1)[0]
    words, tags = words_and_tags(r)
    assert tags.count("B-FINDING") == 1 and "I-FINDING" in tags and "B-SIDE" in tags
    spans = tags_to_spans(r.text, words, tags)
    assert {(s.start, s.end, s.label) for s in spans} == {(s.start, s.end, s.label) for s in r.spans}


def test_tagger_learns_entities_and_saves(tiny_backbone, tmp_path):
    recs = text_records(60)
    cfg = TaggerConfig(backbone=tiny_backbone, max_length=16, epochs=15, lr=5e-3, batch_size=10, train_layers=2)
    tg = fit_tagger(recs, cfg)
    ev = tg.evaluate(recs[:10])
    assert ev["entity_f1"] > 0.7 and set(ev["per_type_f1"]) == {"FINDING", "SIDE"}
    tg2 = Tagger.load(tg.save(tmp_path / "t"))
    assert tg2.predict_spans(recs[:3]) == tg.predict_spans(recs[:3])


def test_tagger_with_dp_and_bad_input(tiny_backbone):
    recs = text_records(40)
    cfg = TaggerConfig(backbone=tiny_backbone, max_length=16, epochs=1, batch_size=10)
    tg = fit_tagger(recs, cfg, dp=DPConfig(epsilon=5, delta=1e-3))
    assert tg.privacy["epsilon_rdp"] <= 5 and tg.privacy["guard"]["frozen_unchanged"]
    with pytest.raises(DataFormatError, match="no training record has spans"):
        fit_tagger([Record(id="a", text="nothing here")], cfg)
    odd = [Record(id="z", text="Small mass.", spans=[Span(start=6, end=10, label="MASS", text="mass")])]
    with pytest.raises(DataFormatError, match="absent from training"):
        fit_tagger(recs, cfg, evals={"test": odd})
