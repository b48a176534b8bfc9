"""The generate step on the embedded models (marked llm + slow: minutes on a shared CPU)."""

import json

import pytest

from medsynth.data.io import read_records, write_records
from medsynth.data.records import Provenance, Record, invalid_spans
from medsynth.recipe.engine import run_recipe
from medsynth.recipe.schema import load_recipe

SEEDS = [
    ("s1", "FINDINGS: The heart is normal in size. The mediastinum is unremarkable. The lungs are clear. IMPRESSION: No acute disease.", ["normal"]),
    ("s2", "FINDINGS: Mild cardiomegaly. No pleural effusion or pneumothorax. IMPRESSION: Mild cardiomegaly.", ["Cardiomegaly"]),
    ("s3", "FINDINGS: Small left pleural effusion. Heart size is normal. IMPRESSION: Small left effusion.", ["Pleural Effusion"]),
    ("s4", "FINDINGS: Streaky opacity in the left lower lobe. The heart is normal. IMPRESSION: Left basilar opacity, likely atelectasis.", ["Opacity"]),
    ("s5", "FINDINGS: The lungs are hyperexpanded. No focal consolidation. IMPRESSION: Emphysema.", ["Lung"]),
]


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.parametrize(("model", "strategies"), [(None, ["prior", "entity_first", "fewshot", "verify"]),
                                                   (None, ["prior", "label", "fewshot", "verify"]),
                                                   ("gemma3-270m", ["prior", "entity_first", "fewshot", "verify"])])
def test_embedded_model_generates_valid_labelled_records(tmp_path, medsynth_home, model, strategies):
    p = tmp_path / "seeds.jsonl"
    write_records([Record(id=i, text=t, labels=ls, provenance=Provenance(params={"scrubbed": "surrogate"})) for i, t, ls in SEEDS], p)
    r = {"name": "llm", "seed": 1, "steps": [{"type": "load", "name": "seeds", "path": str(p)},
                                              {"type": "generate", "n": 4, "batch_size": 4, "strategies": strategies, "task": "ner",
                                               **({"model": model} if model else {})}]}
    res = run_recipe(load_recipe(r), run_dir=tmp_path / "run", show_progress=False, use_cache=False)
    recs = read_records(res.run_dir / "steps/01_generate/generate.jsonl")
    rep = json.loads((res.run_dir / "report.json").read_text())
    figs = {f["name"]: f["value"] for s in rep["steps"] for f in s["figures"]}
    assert len(recs) + figs.get("shortfall", 0) == 4 and len(recs) >= 1
    for rec in recs:
        assert rec.text.startswith("FINDINGS:") and "IMPRESSION:" in rec.text
        assert rec.labels and not invalid_spans(rec)
        assert rec.provenance.model_sha256 == rep["models"][rec.provenance.generator.split(":", 1)[1]]
