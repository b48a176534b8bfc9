"""The shipped imaging recipes run end to end with a tiny configuration (the same YAML, overridden with --set)."""

import json
from pathlib import Path

import numpy as np
import pytest
from medsynth.data.io import read_records
from medsynth.imaging.io import load_png, save_png16
from medsynth.imaging.phantom import PhantomGenerator
from medsynth.recipe.engine import run_recipe
from medsynth.recipe.schema import load_recipe

ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL = ["preset=tiny", "size=16", "vae.steps=10", "vae.batch_size=8", "unet.steps=10", "unet.batch_size=8"]


def _policy(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\naudits:\n  image_copy:\n    feature_steps: 10\n    candidates: 4\n    image_size: 16\n")
    return str(p)


def _cxr_overrides(tmp_path, data):
    return ([f"privacy.policy={_policy(tmp_path)}", "steps.data.size=16", "steps.sample.n=5", "steps.sample.sampler.steps=2",
             "steps.sample.eval.classifier_steps=10", "steps.train.min_images=8"]
            + [f"steps.train.{o}" for o in TINY_MODEL] + data)


def _figs(report, step):
    s = next(s for s in report["steps"] if s["name"] == step)
    return {f["name"]: f["value"] for f in s["figures"]}, s


def test_cxr_ldm_recipe_on_phantoms(tmp_path, medsynth_home):
    rec = load_recipe(ROOT / "recipes" / "cxr_ldm.yaml", _cxr_overrides(tmp_path, ["steps.data.phantom.n=48"]))
    res = run_recipe(rec, run_dir=tmp_path / "run", show_progress=False)
    assert res.status == "completed" and (tmp_path / "run" / "report.html").exists()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    sfig, _ = _figs(report, "sample")
    assert sfig["images"] == 5 and "eval.recognised_generated" in sfig
    gfig, gate = _figs(report, "gate")
    # 5 images are fewer than the policy's min_records (60): the gate cannot support a release claim, whatever it found
    assert gfig["image_copy.images"] == 5 and gfig["release_verdict"] == "not_powered"
    assert "min_records" in gate["sections"]["audit_summary"]["audits"]["image_copy"]["reason"]
    assert gfig["records_released"] + gfig["records_quarantined"] == 5
    assert "image_copy.closest_pairs" in gate["sections"]
    out = read_records(next((tmp_path / "run" / "steps").glob("*_sample")) / "sample.jsonl")
    assert all(r.meta["synthetic"] and (tmp_path / "run" / r.meta["dicom_path"]).exists() for r in out)


@pytest.mark.slow
def test_cxr_ldm_recipe_on_a_user_folder(tmp_path, medsynth_home):
    """`--set steps.data.path=...`: a folder of PNGs with a labels CSV replaces the phantoms."""
    folder = tmp_path / "cxr"
    rows = ["file,labels"]
    for i, c in enumerate(PhantomGenerator(size=32, seed=4).cases(40)):
        save_png16(folder / f"im{i:02d}.png", c.images["standard"])
        rows.append(f"im{i:02d}.png,{'|'.join(c.labels)}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    rec = load_recipe(ROOT / "recipes" / "cxr_ldm.yaml", _cxr_overrides(tmp_path, [f"steps.data.path={folder}"]))
    res = run_recipe(rec, run_dir=tmp_path / "run", show_progress=False)
    assert res.status == "completed"
    data = read_records(next((tmp_path / "run" / "steps").glob("*_data")) / "data.jsonl")
    assert len(data) == 40 and all("demo" not in r.meta for r in data)  # user images: no thumbnails in the report
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    _, gate = _figs(report, "gate")
    assert gate["sections"]["image_copy.closest_pairs"]["thumbnails"] is False


def test_impute_modality_recipe(tmp_path, medsynth_home):
    ov = ["steps.data.n=36", "steps.data.size=16", "steps.impute.min_pairs=8", "steps.impute.n_samples=2", "steps.impute.sampler.steps=2",
          "steps.impute.eval.unet_steps=4", "steps.impute.eval.feature_steps=10"] + [f"steps.impute.{o}" for o in TINY_MODEL]
    res = run_recipe(load_recipe(ROOT / "recipes" / "impute_modality.yaml", ov), run_dir=tmp_path / "run", show_progress=False)
    assert res.status == "completed"
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    figs, _ = _figs(report, "impute")
    for k in ("ldm_mean", "copy_input", "mean_image", "unet_regression"):
        assert -1 <= figs[f"eval.{k}.ssim"] <= 1 and figs[f"eval.{k}.mae"] >= 0
    out = read_records(next((tmp_path / "run" / "steps").glob("*_impute")) / "impute.jsonl")
    assert out and all(r.meta["split"] == "validation" for r in out)
    assert "eval.ldm_sample.fd" in figs and "eval.uncertainty_error_spearman" in figs
    # the recipe's default mode: samples scatter around the imputer's own regression mean
    assert "eval.ldm_regression_mean.ssim" in figs and "eval.ldm_regression_mean.fd" in figs and figs["mean_model.train_residual_mae"] > 0
    assert out[0].provenance.params["mode"] == "residual"
    imp = out[0].meta["imputed"]["soft_tissue"]
    assert len(imp["samples"]) == 2 and imp["target_was_present"]
    m = load_png(tmp_path / "run" / imp["mean"])
    s0, s1 = (load_png(tmp_path / "run" / p) for p in imp["samples"])
    assert m.shape == (16, 16) and np.isfinite(m).all()
    np.testing.assert_allclose(m, (s0 + s1) / 2, atol=2e-4)  # the mean image is the mean of the samples
    assert out[0].meta["modalities"]["soft_tissue"] != imp["mean"]  # the real image is never overwritten


def test_recipe_defaults_are_phantoms_and_the_cpu_preset():
    cxr = load_recipe(ROOT / "recipes" / "cxr_ldm.yaml")
    by = {n: s.config for n, s in zip(cxr.names, cxr.steps, strict=True)}
    assert by["data"].path is None and by["data"].demo == "chest_phantom"
    assert by["train"].preset == "cpu" and by["train"].input == "private"
    assert by["gate"].private == "private" and by["gate"].holdout == "holdout" and by["gate"].on_fail == "quarantine"
    ir = load_recipe(ROOT / "recipes" / "impute_modality.yaml")
    imp = {n: s.config for n, s in zip(ir.names, ir.steps, strict=True)}
    assert imp["impute"].preset == "cpu" and imp["impute"].source == "standard" and imp["impute"].target == "soft_tissue"
