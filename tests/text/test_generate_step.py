import json

from medsynth.data.io import read_records, write_records
from medsynth.data.records import Record, invalid_spans
from medsynth.recipe.engine import run_recipe
from medsynth.recipe.schema import load_recipe

SEEDS = [
    Record(id="s1", text="FINDINGS: The heart is normal in size. The lungs are clear. IMPRESSION: No acute disease.", labels=["normal"]),
    Record(id="s2", text="FINDINGS: Mild cardiomegaly. No pleural effusion. IMPRESSION: Cardiomegaly.", labels=["Cardiomegaly"]),
    Record(id="s3", text="FINDINGS: Small left pleural effusion. IMPRESSION: Effusion.", labels=["Pleural Effusion"]),
]


def _recipe(tmp_path, model_dir, n=12, **gen):
    seeds = tmp_path / "seeds.jsonl"
    write_records(SEEDS, seeds)
    return {"name": "g", "seed": 3, "steps": [
        {"type": "load", "name": "seeds", "path": str(seeds)},
        {"type": "generate", "model": str(model_dir), "n_records": n, "batch_size": 4, "max_new_tokens": 40, "temperature": 0.7, **gen},
        {"type": "export", "formats": ["jsonl", "conll", "brat"]},
    ]}


def test_generate_valid_labelled_records(tmp_path, medsynth_home, reporter_dir):
    res = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir)), run_dir=tmp_path / "run", show_progress=False)
    recs = read_records(res.run_dir / "steps/01_generate/generate.jsonl")
    assert 0 < len(recs) <= 12
    for r in recs:
        assert r.labels and not invalid_spans(r)
        assert r.provenance.model_sha256 and r.provenance.prompt_id and r.provenance.seed_record_ids
        assert set(r.provenance.seed_record_ids) <= {"s1", "s2", "s3"}
    rep = json.loads((res.run_dir / "report.json").read_text())
    figs = {f["name"]: f["value"] for s in rep["steps"] for f in s["figures"]}
    assert figs["records_asked"] == 12 and "yield" in figs and "label_fidelity" in figs
    if len(recs) < 12:
        assert figs["shortfall"] == 12 - len(recs)
    # rejected outputs are quarantined with their reason, never dropped
    n_q = rep["quarantine"]["total"]
    assert n_q == sum(figs["rejections"].values())


def test_garbage_model_gives_counted_rejections_not_a_crash(tmp_path, medsynth_home, tiny_model_dir):
    res = run_recipe(load_recipe(_recipe(tmp_path, tiny_model_dir, n=4, max_attempts_factor=1.0)), run_dir=tmp_path / "run", show_progress=False)
    rep = json.loads((res.run_dir / "report.json").read_text())
    figs = {f["name"]: f["value"] for s in rep["steps"] for f in s["figures"]}
    assert figs["records_generated"] + figs.get("shortfall", 0) == 4
    assert rep["quarantine"]["total"] >= figs.get("shortfall", 0)


def test_generate_is_deterministic(tmp_path, medsynth_home, reporter_dir):
    a = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=6)), run_dir=tmp_path / "a", show_progress=False, use_cache=False)
    b = run_recipe(load_recipe(_recipe(tmp_path, reporter_dir, n=6)), run_dir=tmp_path / "b", show_progress=False, use_cache=False)
    ta = [r.text for r in read_records(a.run_dir / "steps/01_generate/generate.jsonl")]
    tb = [r.text for r in read_records(b.run_dir / "steps/01_generate/generate.jsonl")]
    assert ta == tb
