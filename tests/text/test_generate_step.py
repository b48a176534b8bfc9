import json

import pytest

from medsynth.data.io import read_records, write_records
from medsynth.data.records import Record, invalid_spans
from medsynth.exceptions import RecipeError
from medsynth.recipe.engine import run_recipe
from medsynth.recipe.schema import load_recipe

SEEDS = [
    Record(id="s1", text="FINDINGS: The heart is normal in size. The lungs are clear. IMPRESSION: No acute disease.", labels=["normal"]),
    Record(id="s2", text="FINDINGS: Mild cardiomegaly. No pleural effusion. IMPRESSION: Cardiomegaly.", labels=["Cardiomegaly"]),
    Record(id="s3", text="FINDINGS: Small left pleural effusion. IMPRESSION: Effusion.", labels=["Pleural Effusion"]),
]
DOC = ["prior", "label", "fewshot", "verify"]


def _recipe(tmp_path, model_dir, n=12, seeds=SEEDS, **gen):
    p = tmp_path / "seeds.jsonl"
    write_records(seeds, p)
    return {"name": "g", "seed": 3, "steps": [
        {"type": "load", "name": "seeds", "path": str(p)},
        {"type": "generate", "model": str(model_dir), "n": n, "batch_size": 4, "max_new_tokens": 40, "temperature": 0.7, **gen},
        {"type": "export", "formats": ["jsonl", "conll", "brat", "spacy", "hf"]},
    ]}


def _figs(run_dir):
    rep = json.loads((run_dir / "report.json").read_text())
    return rep, {f["name"]: f["value"] for s in rep["steps"] for f in s["figures"]}


def test_generate_valid_labelled_records_document_mode(tmp_path, medsynth_home, reporter_dir):
    res = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, strategies=DOC)), run_dir=tmp_path / "run", show_progress=False)
    recs = read_records(res.run_dir / "steps/01_generate/generate.jsonl")
    assert 0 < len(recs) <= 12
    for r in recs:
        assert r.labels and not invalid_spans(r)
        assert r.provenance.model_sha256 and r.provenance.prompt_id and r.provenance.seed_record_ids
        assert set(r.provenance.seed_record_ids) <= {"s1", "s2", "s3"}
        assert r.provenance.strategy == DOC and "target_labels" in r.provenance.params
    rep, figs = _figs(res.run_dir)
    assert figs["records_asked"] == 12 and "yield" in figs and "label_fidelity" in figs and "span_integrity" in figs
    if len(recs) < 12:
        assert figs["shortfall"] == 12 - len(recs)
    # rejected outputs are quarantined with their reason, never dropped
    assert rep["quarantine"]["by_step"].get("generate", 0) == sum(figs["rejections"].values())
    # every span survives every export read back by its tool; label features cover the seeds' whole label set
    n = sum(len(r.spans) for r in recs)
    assert figs["export_span_check"] == {f: f"{n}/{n}" for f in ["jsonl", "conll", "brat", "spacy", "hf"]}
    assert "export_spans_lost" not in figs
    from medsynth.text.export import read_hf, read_spacy

    exp = res.run_dir / "steps/02_export/export"
    assert all(set(cats) == {"normal", "Cardiomegaly", "Pleural Effusion"} for _, _, _, cats in read_spacy(exp / "records.spacy"))
    ds = read_hf(exp / "hf_dataset")
    assert set(ds.features["labels"].feature.names) == {"normal", "Cardiomegaly", "Pleural Effusion"}
    assert {"B-FINDING", "I-FINDING", "B-ANATOMY", "B-NEGATION_CUE"} <= set(ds.features["ner_tags"].feature.names)


def test_entity_first_sentence_mode(tmp_path, medsynth_home, reporter_dir):
    strategies = ["prior", "entity_first", "fewshot", "verify"]
    res = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=8, strategies=strategies, task="ner")), run_dir=tmp_path / "run", show_progress=False)
    rep, figs = _figs(res.run_dir)
    assert figs["sentence_requests"] > 0 and "planned_units_written" in figs
    recs = read_records(res.run_dir / "steps/01_generate/generate.jsonl")
    assert figs["records_generated"] == len(recs)
    for r in recs:
        assert r.text.startswith("FINDINGS:") and "IMPRESSION:" in r.text
        assert not invalid_spans(r) and r.labels
        assert r.meta["plan"]["entities"] is not None


def test_garbage_model_gives_counted_rejections_not_a_crash(tmp_path, medsynth_home, tiny_model_dir):
    res = run_recipe(load_recipe(_recipe(tmp_path, tiny_model_dir, n=4, max_attempts_factor=1.0, strategies=DOC)), run_dir=tmp_path / "run", show_progress=False)
    rep, figs = _figs(res.run_dir)
    assert figs["records_generated"] + figs.get("shortfall", 0) == 4
    assert rep["quarantine"]["by_step"].get("generate", 0) == sum(figs["rejections"].values())
    if figs.get("shortfall"):
        assert "FEWER" in next(f["how"] for s in rep["steps"] for f in s["figures"] if f["name"] == "shortfall")


def test_generate_is_deterministic(tmp_path, medsynth_home, reporter_dir):
    def texts(d):
        res = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=6, strategies=["prior", "entity_first", "fewshot", "verify"])), run_dir=tmp_path / d,
                         show_progress=False, use_cache=False)
        return [r.text for r in read_records(res.run_dir / "steps/01_generate/generate.jsonl")]

    assert texts("a") == texts("b")


def test_empty_seed_file_is_a_clear_error(tmp_path, medsynth_home, reporter_dir):
    with pytest.raises(RecipeError, match="none with text"):
        run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, seeds=[Record(id="e", text="  ")])), run_dir=tmp_path / "run", show_progress=False)


def test_label_the_annotator_cannot_see_is_a_clear_error(tmp_path, medsynth_home, reporter_dir):
    with pytest.raises(RecipeError, match="Telepathy.*not in schema"):
        run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, labels=["Cardiomegaly", "Telepathy"])), run_dir=tmp_path / "run", show_progress=False)


def test_label_without_seed_is_reported(tmp_path, medsynth_home, reporter_dir):
    res = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=4, labels=["Cardiomegaly", "Pneumothorax", "normal"], strategies=DOC)),
                     run_dir=tmp_path / "run", show_progress=False)
    _, figs = _figs(res.run_dir)
    assert figs["labels_without_seed"] == ["Pneumothorax"]


def test_unknown_strategy_and_bad_options_rejected_at_validation(tmp_path, reporter_dir):
    with pytest.raises(RecipeError) as ei:
        load_recipe(_recipe(tmp_path, reporter_dir, strategies=["prior", "telepathy", {"type": "fewshot", "kk": 2}]))
    msg = str(ei.value)
    assert "telepathy" in msg and "kk" in msg
    with pytest.raises(RecipeError, match="feedback.*needs 'verify'"):
        load_recipe(_recipe(tmp_path, reporter_dir, strategies=["prior", "fewshot", "feedback"]))


def test_dedup_and_generation_cache(tmp_path, medsynth_home, reporter_dir):
    # a seed that the reporter reproduces nearly verbatim is rejected as a near copy of a seed, and a second run
    # served from the generation cache writes the same records without generating
    gen = {"strategies": DOC, "cache": True, "dedup": {"near_threshold": 0.5}}
    a = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=8, **gen)), run_dir=tmp_path / "a", show_progress=False, use_cache=False)
    _, fa = _figs(a.run_dir)
    assert fa["generation_cache"]["misses"] > 0 and fa["dedup"]["preloaded_seeds"] == 3
    # whatever the reporter wrote, no record that was written is a near copy of a seed or of another written record
    from medsynth.text.dedup import Deduplicator

    dd = Deduplicator(threshold=0.5)
    dd.preload(SEEDS)
    written = read_records(a.run_dir / "steps/01_generate/generate.jsonl")
    assert written and all(dd.add(r.id, r.text).duplicate_of is None for r in written)
    # and every rejected duplicate is counted and quarantined, not dropped
    n_dup = sum(v for k, v in fa["rejections"].items() if "duplicate" in k)
    assert n_dup == sum(1 for q in (a.run_dir / "quarantine").glob("*.jsonl") for line in q.read_text().splitlines() if "duplicate" in line)
    b = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=8, **gen)), run_dir=tmp_path / "b", show_progress=False, use_cache=False)
    _, fb = _figs(b.run_dir)
    ca, cb = fa["generation_cache"], fb["generation_cache"]
    assert cb["misses"] == 0 and cb["hits"] == ca["hits"] + ca["misses"]
    ta = [r.text for r in read_records(a.run_dir / "steps/01_generate/generate.jsonl")]
    assert ta == [r.text for r in read_records(b.run_dir / "steps/01_generate/generate.jsonl")]


def test_progress_without_a_terminal_prints_plain_lines_and_no_text(tmp_path, medsynth_home, reporter_dir, monkeypatch):
    import io

    from rich.console import Console

    monkeypatch.setenv("MEDSYNTH_PROGRESS_EVERY", "0")
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=False, width=200)
    res = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=6, strategies=DOC)), run_dir=tmp_path / "run", console=con, show_progress=True)
    assert res.status == "completed"
    lines = buf.getvalue().splitlines()
    gen = [ln for ln in lines if ln.startswith("generate (")]
    assert gen and all("records/s" in ln and "elapsed" in ln for ln in gen)
    assert any("ETA" in ln for ln in gen)  # periodic lines carry an ETA
    assert any(ln.startswith("done generate (") for ln in lines)  # and each task ends with a final line
    texts = [r.text for r in read_records(res.run_dir / "steps/01_generate/generate.jsonl")] + [s.text for s in SEEDS]
    out = buf.getvalue()
    for t in texts:
        for sent in t.split(". "):
            if len(sent) > 25:
                assert sent not in out


def test_dry_run_estimates_from_measured_rates_then_calibration(tmp_path, medsynth_home, reporter_dir):
    from medsynth.recipe.engine import plan_recipe

    res = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=6, strategies=DOC)), run_dir=tmp_path / "run", show_progress=False)
    gen_s = next(s for s in res.steps if s["name"] == "generate")
    n_out = gen_s["records_out"]
    # the same step config asked for twice as many records: the measured rate of this machine, scaled
    rows = {r["step"]: r for r in plan_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=2 * n_out, strategies=DOC)), home=medsynth_home)}
    g = rows["generate"]
    assert g["how_estimated"].startswith("measured on this machine") and f"over {n_out} records" in g["how_estimated"]
    assert abs(g["est_seconds"] - 2 * gen_s["seconds"]) / (2 * gen_s["seconds"]) < 0.2
    # a config never run here (another batch size): a guess without calibration, a measured tokens/s with it (cached)
    other = _recipe(tmp_path, reporter_dir, n=6, strategies=DOC, batch_size=2)
    assert plan_recipe(load_recipe(other), home=medsynth_home)[1]["how_estimated"].startswith("guess")
    cal = plan_recipe(load_recipe(other), home=medsynth_home, calibrate=True)[1]
    assert cal["how_estimated"].startswith("calibrated on this machine") and cal["est_seconds"] > 0
    again = plan_recipe(load_recipe(other), home=medsynth_home)[1]  # cached: no second calibration needed
    assert again["how_estimated"] == cal["how_estimated"]
