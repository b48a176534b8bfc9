"""The learned PHI tagger: corpus generators, training/saving/verifying on a tiny encoder built in code, the ensemble
with the rules, and (with the installed artifact, trained by install.sh) its generalisation to generator B."""

from __future__ import annotations

import json
import shutil

import pytest

from medsynth.exceptions import MedsynthError
from medsynth.scrub.corpus import TAG_LABELS, make_training_notes
from medsynth.scrub.heldout import make_test_notes
from medsynth.scrub.phi_values import in_partition

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_generators_give_exact_offsets_and_disjoint_name_pools():
    a, b = make_training_notes(60, seed=5), make_test_notes(60, seed=5)
    assert sum(bool(n.spans) for n in a + b) >= 0.9 * len(a + b)  # a few short messages carry no PHI, as in life
    for n in a + b:
        for s, e, lab in n.spans:
            assert 0 <= s < e <= len(n.text) and n.text[s:e].strip() == n.text[s:e] and lab in TAG_LABELS
    names_a = {n.text[s:e] for n in a for s, e, lab in n.spans if lab == "NAME" and " " not in n.text[s:e]}
    names_b = {n.text[s:e] for n in b for s, e, lab in n.spans if lab == "NAME" and " " not in n.text[s:e]}
    # single-token names of A come from the train partition, B's from the test partition: no overlap (any case)
    def drawn_from(x: str, part: str) -> bool:  # a pool value, or (A's double-barrelled surnames) two of them
        return in_partition(x, part) or all(in_partition(p, part) for p in x.split("-"))

    assert all(drawn_from(x, "train") for x in names_a if x.istitle() and len(x) > 2 and not x.isupper())
    assert all(drawn_from(x, "test") for x in names_b if x.istitle() and len(x) > 2)
    assert not {x.lower() for x in names_a} & {x.lower() for x in names_b}
    assert len({n.genre for n in a}) >= 14 and len({n.genre for n in b}) >= 14 and not {n.genre for n in a} & {n.genre for n in b}


def test_hard_negatives_come_from_broad_vocabularies_split_by_hash():
    """Drug and diagnosis names come from the installed ICD-10-CM and drug dictionaries (thousands, not a hand list);
    training notes use the train partition, development notes the other, so a development figure is on unseen terms."""
    from medsynth.scrub.vocab import diagnosis_terms, drug_terms

    dx = {p: set(diagnosis_terms(p)) for p in ("train", "test")}
    dr = {p: set(drug_terms(p)) for p in ("train", "test")}
    assert min(map(len, dx.values())) > 2000 and min(map(len, dr.values())) > 2000
    assert not dx["train"] & dx["test"] and not dr["train"] & dr["test"]
    assert {"Budd-Chiari syndrome", "Stevens-Johnson syndrome"} <= dx["train"] | dx["test"] and "zyvox" in dr["train"] | dr["test"]
    assert not [t for t in dx["train"] if t.endswith((" of", " with", " unspecified"))]
    from medsynth.scrub import corpus

    hand = {t.lower() for t in corpus.DRUGS + corpus.EPONYM_PHRASES + corpus.LABS + corpus.DEPARTMENTS + corpus.DEVICES + corpus.SCORES
            + list(corpus.real_clinical_text("train")[1]) + list(corpus.real_clinical_text("validation")[1])}
    held_out = {t.lower() for t in dx["test"] | dr["test"]} - hand  # hand lists and MeSH terms have their own sources
    seen_in_training = {t.lower() for t in dx["train"] | dr["train"]} - hand

    def vocab_negatives(notes, pool):
        return {n.text[s:e].lower() for n in notes for s, e, _ in n.negatives} & pool

    train, dev = make_training_notes(120, seed=11, vocab_partition="train"), make_training_notes(120, seed=12, vocab_partition="test")
    assert len(vocab_negatives(train, seen_in_training)) >= 40 and not vocab_negatives(train, held_out)
    assert len(vocab_negatives(dev, held_out)) >= 40 and not vocab_negatives(dev, seen_in_training)
    for n in train + dev:  # a hard negative never overlaps PHI
        assert not [1 for s, e, _ in n.negatives for ps, pe, _ in n.spans if s < pe and ps < e]


def test_development_generator_c_is_apart_from_training_and_test():
    """Generator C (the second development set) shares no genre, locale or single-token name with A (training) or
    B (test); its offsets are exact."""
    from medsynth.scrub.corpus import TRAIN_LOCALES
    from medsynth.scrub.devset_c import C_LOCALES, make_dev_c_notes
    from medsynth.scrub.heldout import TEST_LOCALES

    a, b, c = make_training_notes(60, seed=5), make_test_notes(80, seed=5), make_dev_c_notes(80, seed=5)
    assert not set(C_LOCALES) & (set(TRAIN_LOCALES) | set(TEST_LOCALES))
    assert len({n.genre for n in c}) == 14 and not {n.genre for n in c} & ({n.genre for n in a} | {n.genre for n in b})
    for n in c:
        for s, e, lab in n.spans:
            assert 0 <= s < e <= len(n.text) and n.text[s:e].strip() == n.text[s:e] and lab in TAG_LABELS
        assert all(0 <= s < e <= len(n.text) for s, e, _ in n.negatives)

    def names(notes):
        return {n.text[s:e].lower() for n in notes for s, e, lab in n.spans if lab == "NAME" and " " not in n.text[s:e] and len(n.text[s:e]) > 2}

    name_c = names(c)
    assert len(name_c) > 50 and not name_c & names(b) and not name_c & names(a)
    assert all(in_partition(x, "test") for x in name_c if x.isalpha())  # the half no training note draws from


def test_variety_corpus_layouts_and_negatives_apart_from_generator_c():
    """Tagger v4's corpus (``variety``) writes surname particles, weekday dates, composed organisations and more
    negatives, with exact offsets; none of its negatives is one of generator C's (the development set)."""
    from medsynth.scrub.corpus import DEVICE_BRANDS, EPONYM_MORE, NAMED_SCORES, ORGANISMS
    from medsynth.scrub.devset_c import C_BUGS, C_DEVICES, C_DRUGS, C_SCORES, C_SIGNS
    from medsynth.scrub.phi_values import ORG_SPECIALTIES, PARTICLES

    mine = {x.lower() for x in ORGANISMS + DEVICE_BRANDS + NAMED_SCORES + EPONYM_MORE}
    assert not mine & {x.lower() for x in C_BUGS + C_DEVICES + C_DRUGS + C_SCORES + C_SIGNS}
    assert not {"audiology", "endoscopy", "sleep", "wound", "hospice"} & {w.lower() for x in ORG_SPECIALTIES for w in x.split()}
    notes = make_training_notes(150, seed=4, variety=True)
    for n in notes:
        for a, b, lab in n.spans:
            assert n.text[a:b].strip() == n.text[a:b] and lab in TAG_LABELS
    names = [n.text[a:b] for n in notes for a, b, lab in n.spans if lab == "NAME"]
    assert any(p + " " in x or x.startswith(p) for x in names for p in PARTICLES if len(p) > 2)
    dates = [n.text[a:b] for n in notes for a, b, lab in n.spans if lab == "DATE"]
    assert any(x[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun") for x in dates)
    negs = {n.text[a:b] for n in notes for a, b, _ in n.negatives}
    assert any(any(o in x for o in ORGANISMS) for x in negs) and any(x in DEVICE_BRANDS for x in negs)
    # the default (development) corpus draws none of it
    plain = make_training_notes(150, seed=4)
    assert not {n.text[a:b] for n in plain for a, b, _ in n.negatives} & set(DEVICE_BRANDS)


@pytest.fixture(scope="module")
def tiny_tagger(tmp_path_factory):
    """A tagger trained in seconds on a tiny random BERT with MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from medsynth.scrub.tagger import TaggerConfig, _minilm_dir, train_tagger

    base = tmp_path_factory.mktemp("tiny_bert")
    tok = AutoTokenizer.from_pretrained(_minilm_dir(), local_files_only=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=512)
    BertModel(cfg).save_pretrained(base)
    tok.save_pretrained(base)
    out = tmp_path_factory.mktemp("tagger") / "phi-tagger"
    tg = train_tagger(out, TaggerConfig(n_train=80, n_dev=20, epochs=1, batch_size=8, lr=1e-3), base_model=base)
    return out, tg


def test_training_writes_a_verified_artifact(tiny_tagger, tmp_path):
    from medsynth.scrub.tagger import PhiTagger

    path, tg = tiny_tagger
    meta = json.loads((path / "medsynth_tagger.json").read_text())
    assert meta["labels"][0] == "O" and len(meta["labels"]) == 1 + 2 * len(TAG_LABELS)
    assert "model.safetensors" in meta["files"] and 0 <= meta["dev"]["recall"] <= 1
    assert PhiTagger.load(path).sha256 == tg.sha256
    # a changed byte of the weights, a missing file, or no artifact at all: errors naming the command that rebuilds it
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    w = broken / "model.safetensors"
    b = bytearray(w.read_bytes())
    b[len(b) // 2] ^= 1
    w.write_bytes(bytes(b))
    with pytest.raises(MedsynthError, match="corrupt.*medsynth models prepare phi-tagger"):
        PhiTagger.load(broken)
    (broken / "config.json").unlink()
    with pytest.raises(MedsynthError, match="corrupt"):
        PhiTagger.load(broken)
    with pytest.raises(MedsynthError, match="not installed.*medsynth models prepare phi-tagger"):
        PhiTagger.load(tmp_path / "nothing")


def test_predict_handles_long_empty_and_non_english_text(tiny_tagger):
    _, tg = tiny_tagger
    long = "Seen by Dr. Okafor on 03/14/2020. " * 400  # ≈ 13,000 characters: many overlapping windows
    texts = ["", "   ", long, "Le patient a été vu le 14 mars par le Dr Dupont à Lyon.", "患者は東京で診察された。"]
    out = tg.predict(texts)
    assert out[0] == [] and out[1] == []
    for t, spans in zip(texts, out, strict=True):
        for s in spans:
            assert 0 <= s.start < s.end <= len(t) and s.label in TAG_LABELS
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))  # merged, sorted, no overlap


def test_one_pass_at_several_operating_points_equals_separate_passes(tiny_tagger):
    _, tg = tiny_tagger
    texts = make_test_notes(6, seed=3)
    texts = [n.text for n in texts]
    at = tg.predict_at(texts, [0.5, 0.05])
    assert at[0] == tg.predict(texts, threshold=0.5) and at[1] == tg.predict(texts, threshold=0.05)
    assert sum(map(len, at[1])) > 0 and all(any(w.start <= h.start and h.end <= w.end for w in at[1][i]) for i in range(len(texts)) for h in at[0][i])


def test_scrubber_requires_the_tagger_unless_the_policy_allows_rules_only(tmp_path, monkeypatch):
    from medsynth.scrub import tagger as tagger_mod
    from medsynth.scrub.engine import Scrubber

    monkeypatch.setenv("MEDSYNTH_HOME", str(tmp_path / "empty_home"))
    monkeypatch.setattr(tagger_mod, "_DEFAULT", {})
    with pytest.raises(MedsynthError, match="not installed.*medsynth models prepare phi-tagger"):
        Scrubber(mode="spans", tagger="required")
    s = Scrubber(mode="spans", tagger="optional")
    assert s.tagger is None and "not installed" in s.tagger_status
    assert Scrubber(mode="spans", tagger="off").tagger_status == "off"


def test_scrub_cli_names_the_fix_when_the_tagger_is_missing(tmp_path, monkeypatch):
    from medsynth.scrub import tagger as tagger_mod
    from tests.hardening.harness import run_cli

    monkeypatch.setattr(tagger_mod, "_DEFAULT", {})
    p = tmp_path / "n.jsonl"
    p.write_text(json.dumps({"id": "1", "text": "Seen by Dr. Okafor."}) + "\n")
    r = run_cli("scrub", "--in", p, "--out", tmp_path / "o.jsonl", env={"MEDSYNTH_HOME": str(tmp_path / "h")})
    assert r.code == 2 and "medsynth models prepare phi-tagger" in r.text and not (tmp_path / "o.jsonl").exists()
    r = run_cli("scrub", "--in", p, "--out", tmp_path / "o.jsonl", "--tagger", "optional", env={"MEDSYNTH_HOME": str(tmp_path / "h")})
    assert r.code == 0 and "tagger not installed" in r.text


def test_ensemble_keeps_the_union_and_the_precision_guard(tiny_tagger):
    from medsynth.scrub.engine import Scrubber
    from medsynth.scrub.tagger import TaggerSpan

    class Fixed:  # a stand-in with known outputs, to test the merging rules exactly
        threshold = 0.5

        def predict(self, texts, threshold=None):
            out = []
            for t in texts:
                spans = []
                for word, lab in (("rosa gonzalez", "NAME"), ("Baker", "NAME"), ("0930", "DATE"), ("445566778", "ID"), ("XXXX", "NAME")):
                    i = t.find(word)
                    if i >= 0:
                        spans.append(TaggerSpan(i, i + len(word), lab, 0.9))
                out.append(spans)
            return out

        def predict_at(self, texts, thresholds):
            return [self.predict(texts, t) for t in thresholds]

    scr = Scrubber(mode="spans", tagger="off")
    scr.tagger, scr.tagger_status = Fixed(), "used"
    t = "my mom rosa gonzalez has a Baker's cyst, seen at 0930. MRN: 445566778. Mr. Baker called. Seen by XXXX."
    got = {(s.text, s.label) for s in scr.analyze(t)}
    assert ("rosa gonzalez", "NAME") in got  # lower-case name: only the tagger finds it
    assert ("445566778", "MRN") in got  # tagger and rules agree: one span, the rules' finer label
    assert not any(x == "0930" for x, _ in got)  # a time is not a date (guard)
    assert not any("XXXX" in x for x, _ in got)  # an upstream redaction placeholder is left alone
    bakers = [s for s in scr.analyze(t) if s.text == "Baker"]
    assert len(bakers) == 1 and t[bakers[0].start - 4:bakers[0].start] == "Mr. "  # "Baker's cyst" guarded, "Mr. Baker" kept


def test_the_tagger_vetoes_only_names_and_places_that_spacy_alone_found():
    """spaCy's NER calls "Trachea" a person and "Toledo" a place; a tagger that is near certain they are not PHI (no
    span even at the veto's low operating point) drops them. A name our title pattern found ("Dr. Okafor") is never
    vetoed, a name the tagger weakly supports is kept, and ``tagger_veto=0`` turns the veto off."""
    from medsynth.scrub.engine import TAGGER_VETO, Scrubber
    from medsynth.scrub.tagger import TaggerSpan

    seen: list[list[float]] = []

    class Weak:  # above the veto's operating point for one name only, below the main one for everything
        threshold = 0.5

        def predict_at(self, texts, thresholds):
            seen.append(list(thresholds))
            return [[[TaggerSpan(t.find("Shanice"), t.find("Shanice") + 7, "NAME", 0.2)] if thr < 0.2 else [] for t in texts]
                    for thr in thresholds]

    t = "Trachea is midline. Met with Shanice Whitfield in Toledo. Seen by Dr. Okafor."
    # the veto alone (the vocabulary guard would drop "Trachea" before the veto sees it)
    rules = {s.text for s in Scrubber(mode="spans", tagger="off", vocabulary_guard=False).analyze(t)}
    assert {"Trachea", "Toledo", "Shanice Whitfield", "Okafor"} <= rules  # what spaCy and the patterns find on their own

    def found(veto):
        scr = Scrubber(mode="spans", tagger="off", tagger_veto=veto, vocabulary_guard=False)
        scr.tagger, scr.tagger_status = Weak(), "used"
        return {s.text for s in scr.analyze(t)}

    assert found(None) == {"Shanice Whitfield", "Okafor"} and seen[-1] == [0.5, TAGGER_VETO]
    assert found(0) == rules and seen[-1] == [0.5]  # no veto: one operating point, the rules' spans all kept


# -- the installed artifact (trained by install.sh) ---------------------------------------------------------------------
def test_installed_tagger_generalises_to_generator_b():
    """Generator B's notes (own genres, locales and pool partition): the ensemble finds ≥ 95 % of name tokens on 40
    notes. The full figures (400 notes, per type and genre) are in benchmarks/results/scrub.json."""
    import re

    from medsynth.scrub.engine import Scrubber

    notes = make_test_notes(40, seed=123)
    scr = Scrubber(mode="spans", tagger="required")
    preds = scr.analyze_many([n.text for n in notes])
    hit = tot = 0
    for n, ps in zip(notes, preds, strict=True):
        for m in re.finditer(r"\w+", n.text):
            a, b = m.span()
            if any(s <= a and b <= e and lab == "NAME" for s, e, lab in n.spans):
                tot += 1
                hit += any(a < p.end and p.start < b for p in ps)
    assert tot > 100 and hit / tot >= 0.95, (hit, tot)


def test_non_english_notes_are_reported_not_guessed(tmp_path):
    from medsynth.scrub.fields import looks_non_english
    from tests.hardening.harness import run_cli

    fr = "Le patient a été vu le 14 mars par le Dr Dupont à Lyon pour une douleur thoracique depuis trois jours."
    assert looks_non_english(fr) and looks_non_english("患者は東京で診察された。")
    assert not looks_non_english("Seen by Dr. De La Cruz; no acute disease, the patient is doing well and will follow up in clinic.")
    p = tmp_path / "n.jsonl"
    p.write_text(json.dumps({"id": "1", "text": "Chest pain since Monday."}) + "\n" + json.dumps({"id": "2", "text": fr}) + "\n")
    r = run_cli("scrub", "--in", p, "--out", tmp_path / "o.jsonl", "--tagger", "off")
    assert r.code == 0 and "1 note(s) do not look like English (note #2)" in r.text and "Dupont" not in r.text


def test_replay_audit_checks_synthetic_text_with_the_tagger():
    """A private patient's name that the scrub step's PHI list does not contain is still caught when a synthetic
    record repeats it: the tagger tags it in the synthetic text and it occurs in a private record, not the holdout."""
    from medsynth.audit.replay import PhiReplayAudit, PhiReplayPolicy
    from medsynth.data.records import Record

    private = [Record(id="p1", text="Seen with her daughter Quillon Vandermeer today. No acute disease."),
               Record(id="p2", text="Heart size normal. Lungs clear.")]
    holdout = [Record(id="h1", text="Heart size normal. No effusion.")]
    synthetic = [Record(id="s1", text="Follow-up arranged with Quillon Vandermeer next week."), Record(id="s2", text="Lungs clear. No effusion.")]
    audit = PhiReplayAudit(PhiReplayPolicy())
    res = audit.run(synthetic, private, holdout, phi_strings=[])  # the scrubber's list is empty: only the tagger can see it
    fig = {f["name"]: f["value"] for f in res.figures}
    assert res.verdict == "fail" and [f.record_id for f in res.findings] == ["s1"]
    assert fig["phi_replay.tagger_candidates_in_private"] >= 1 and fig["phi_replay.records_replaying_tagged_phi"] == 1
    off = PhiReplayAudit(PhiReplayPolicy(tagger_scan=False)).run(synthetic, private, holdout, phi_strings=[])
    # nothing left to look for: not powered, never "pass"
    assert off.verdict == "not_powered" and {f["name"]: f["value"] for f in off.figures}["phi_replay.tagger_scan"] == "off"


def test_the_shipped_taggers_training_corpus_is_unchanged():
    """install.sh trains phi-tagger-v<TAGGER_VERSION> from this corpus on every fresh machine: a change to the default
    corpus must come with a new TAGGER_VERSION (and new measurements), never silently retrain a measured tagger."""
    import hashlib

    from medsynth.scrub.corpus import real_clinical_text
    from medsynth.scrub.tagger import TAGGER_VERSION, TaggerConfig

    if not real_clinical_text("train")[0]:
        pytest.skip("the IU reports (torchxrayvision, installed by install.sh) are part of the shipped corpus and are not installed")
    c = TaggerConfig()  # the corpus exactly as train_tagger builds it by default
    notes = make_training_notes(60, seed=1000, vocab_partition="train" if c.vocabulary_negatives else None, variety=c.corpus_variety)
    digest = hashlib.sha256("".join(n.text + str(n.spans) + str(n.negatives) for n in notes).encode()).hexdigest()
    shipped = {4: "6fba0ed31f166df6ed9017f06d8b0bcee05f039ba8b1180d37a720d1f6584460"}
    assert digest == shipped[TAGGER_VERSION], f"the default training corpus changed: bump TAGGER_VERSION and record {digest}"


def test_corpora_are_the_same_on_every_machine():
    """The training and test notes depend only on their seed, not on Python's hash seed (every machine that runs
    install.sh trains the tagger on the same notes)."""
    import hashlib
    import os
    import subprocess
    import sys

    code = ("import hashlib;from medsynth.scrub.corpus import make_training_notes as a;from medsynth.scrub.heldout import make_test_notes as b;"
            "print(hashlib.sha256(''.join(n.text + str(n.spans) for n in a(300, seed=3) + b(100, seed=3)).encode()).hexdigest())")
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": str(s)},
                          timeout=300).stdout.strip() for s in (1, 2)}
    assert len(out) == 1 and len(next(iter(out))) == len(hashlib.sha256().hexdigest())
