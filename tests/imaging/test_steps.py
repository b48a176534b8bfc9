import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsynth.data.io import read_records
from medsynth.exceptions import DataFormatError, RecipeError
from medsynth.imaging.io import load_png, save_png16
from medsynth.steps.imaging_sources import ImageFolderConfig, ImageFolderStep, MNI152Config, MNI152Step, PhantomConfig, PhantomStep
from medsynth.recipe.engine import make_test_context, run_recipe
from medsynth.recipe.schema import load_recipe

from .conftest import make_dicom

PHI = ["Doe", "Janet", "MRN-55501234", "19470311", "Saint Example", "ACC99887766", "House"]
TINY = {"preset": "tiny", "size": 16, "vae": {"steps": 12, "batch_size": 8}, "unet": {"steps": 12, "batch_size": 8}}


def _folder(tmp_path, phantom_img):
    """A realistic messy folder: DICOM (MONOCHROME1/2, 12/16 bits, two sizes) + 8/16-bit PNG + JPEG, a labels CSV."""
    root = tmp_path / "cxr"
    root.mkdir()
    raw = (phantom_img * 4095).astype(np.uint16)
    make_dicom(root / "a.dcm", raw, window=(2048, 4096))
    make_dicom(root / "b.dcm", 4095 - raw, photometric="MONOCHROME1", window=(2048, 4096))
    big = np.kron(phantom_img, np.ones((2, 3)))  # 96×144, non-square
    make_dicom(root / "c.dcm", (big * 65535).astype(np.uint16), bits=16)
    Image.fromarray((phantom_img * 255).astype(np.uint8)).save(root / "d.png")
    save_png16(root / "sub" / "e.png", phantom_img)
    Image.fromarray((phantom_img * 255).astype(np.uint8)).convert("RGB").save(root / "f.jpg", quality=95)
    return root


def _run(step_cls, cfg, tmp_path, datasets=None, home=None):
    step = step_cls(cfg)
    ctx = make_test_context(tmp_path, datasets or {}, step=step, home=home)
    step.run(ctx)
    return ctx


def test_image_folder_reads_a_messy_folder(tmp_path, phantom_img, caplog):
    root = _folder(tmp_path, phantom_img)
    (root / "labels.csv").write_text("file,labels\na.dcm,Nodule\nb.dcm,Nodule\nc.dcm,\nd.png,Cardiomegaly|Nodule\nsub/e.png,No Finding\nf.jpg,Opacity\n")
    caplog.set_level(logging.DEBUG)
    ctx = _run(ImageFolderStep, ImageFolderConfig(type="image_folder", path=str(root), size=32), tmp_path)
    recs = read_records(ctx.step_dir / "test.jsonl")
    assert len(recs) == 6
    by = {r.meta["source_file"]: r for r in recs}
    assert by["d.png"].labels == ["Cardiomegaly", "Nodule"] and by["sub/e.png"].labels == []
    a, b = (load_png(Path(ctx.run_dir) / by[k].image_path) for k in ("a.dcm", "b.dcm"))
    np.testing.assert_allclose(a, b, atol=3e-3)  # MONOCHROME1 displays like MONOCHROME2
    assert all(load_png(Path(ctx.run_dir) / r.image_path).shape == (32, 32) for r in recs)
    assert by["a.dcm"].meta["pixel_spacing_mm"] == pytest.approx([0.3, 0.3])  # 0.2 mm × 48/32
    assert all(not r.id.startswith(("a", "b")) and r.id.startswith("img-") for r in recs)  # ids are hashes, not file names
    stats = ctx.sections["ingest_stats"]
    assert stats["monochrome1_inverted"] == 1 and stats["bits:16"] >= 2 and stats["bits:12"] == 2 and stats["format:dicom"] == 3
    assert not any(v in caplog.text for v in PHI)
    assert {r.meta["split"] for r in recs} <= {"train", "validation", "test"}


def test_image_folder_bad_input_is_explained(tmp_path, phantom_img):
    root = _folder(tmp_path, phantom_img)
    col = np.zeros((20, 20, 3), np.uint8)
    col[..., 1] = 150
    Image.fromarray(col).save(root / "screenshot.png")
    (root / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 10)
    (root / "labels.csv").write_text("file,labels\na.dcm,Nodule\nmissing1.dcm,Nodule\nmissing2.png,\nscreenshot.png,\ncorrupt.dcm,\n")
    cfg = dict(type="image_folder", path=str(root), size=24)
    with pytest.raises(DataFormatError) as ei:  # CSV rows naming files that are not there
        _run(ImageFolderStep, ImageFolderConfig(**cfg), tmp_path / "1")
    assert "2 row(s)" in str(ei.value) and "lines 3, 4" in str(ei.value) and "missing_image: skip" in str(ei.value)
    with pytest.raises(DataFormatError) as ei:  # then the corrupt file, named, with the fix
        _run(ImageFolderStep, ImageFolderConfig(**cfg, missing_image="skip"), tmp_path / "2")
    assert "corrupt.dcm" in str(ei.value) and "on_bad_file: quarantine" in str(ei.value)
    ctx = _run(ImageFolderStep, ImageFolderConfig(**cfg, missing_image="skip", on_bad_file="quarantine"), tmp_path / "3")
    recs = read_records(ctx.step_dir / "test.jsonl")
    assert [r.meta["source_file"] for r in recs] == ["a.dcm"]
    reasons = sorted(q["reason"] for q in ctx.quarantined)
    # colour screenshot, corrupt file, and the 5 images without a CSV row (b, c, d, e, f)
    assert reasons.count("color_image") == 1 and reasons.count("unreadable_file") == 1 and reasons.count("no_label_row") == 5
    figs = {f["name"]: f["value"] for f in ctx.figures}
    assert figs["csv_rows_without_image"] == 2 and figs["images_without_label_row"] == 5
    # colour converted instead, unlabeled kept
    ctx = _run(ImageFolderStep, ImageFolderConfig(**cfg, missing_image="skip", on_bad_file="quarantine", color="convert", unlabeled="keep"),
               tmp_path / "4")
    assert len(read_records(ctx.step_dir / "test.jsonl")) == 7
    with pytest.raises(DataFormatError, match="unlabeled: keep"):
        _run(ImageFolderStep, ImageFolderConfig(**cfg, missing_image="skip", on_bad_file="quarantine", unlabeled="error"), tmp_path / "5")


def test_image_folder_single_image_and_folder_labels(tmp_path, phantom_img):
    one = tmp_path / "one"
    save_png16(one / "Nodule" / "x.png", phantom_img)
    ctx = _run(ImageFolderStep, ImageFolderConfig(type="image_folder", path=str(one), size=16, labels_from="folder"), tmp_path / "a")
    recs = read_records(ctx.step_dir / "test.jsonl")
    assert len(recs) == 1 and recs[0].labels == ["Nodule"]
    assert any(f["name"] == "warning" for f in ctx.figures)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no images found"):
        _run(ImageFolderStep, ImageFolderConfig(type="image_folder", path=str(empty)), tmp_path / "b")


def test_image_folder_checks_before_running():
    bad = {"name": "t", "steps": [{"type": "image_folder", "path": "/no/such/folder", "labels_from": "dicom_tags", "label_tags": ["PatientName"]}]}
    with pytest.raises(RecipeError) as ei:
        load_recipe(bad)
    msg = str(ei.value)
    assert "folder not found" in msg and "PatientName" in msg and "identify" in msg


def test_phantom_and_mni152_steps(tmp_path):
    ctx = _run(PhantomStep, PhantomConfig(type="phantom", n=12, size=16, modalities=["standard", "soft_tissue", "bone"], reports=True), tmp_path / "p")
    recs = read_records(ctx.step_dir / "test.jsonl")
    r = recs[0]
    assert r.kind == "image" and r.meta["demo"] == "phantom" and set(r.meta["modalities"]) == {"standard", "soft_tissue", "bone"}
    m = {k: load_png(Path(ctx.run_dir) / v) for k, v in r.meta["modalities"].items()}
    np.testing.assert_allclose(m["standard"], m["soft_tissue"] + m["bone"], atol=1e-4)
    assert r.text and r.image_path == r.meta["modalities"]["standard"]
    ctx = _run(MNI152Step, MNI152Config(type="mni152", size=16, every=10), tmp_path / "m")
    recs = read_records(ctx.step_dir / "test.jsonl")
    assert len(recs) >= 10 and set(recs[0].meta["modalities"]) == {"t1", "gm", "wm"}
    splits = {}
    for r in recs:
        splits.setdefault(r.meta["block"], set()).add(r.meta["split"])
    assert all(len(s) == 1 for s in splits.values()), "contiguous blocks never straddle splits"


def _recipe(tmp_path, extra_sample=None):
    return {"name": "tiny_ldm", "seed": 3, "privacy": {"policy": str(tmp_path / "policy.yaml")}, "steps": [
        {"type": "phantom", "name": "data", "n": 48, "size": 16, "splits": {"validation": 0.25, "test": 0.0}},
        {"type": "select", "name": "private", "input": "data", "where": {"split": "train"}},
        {"type": "select", "name": "holdout", "input": "data", "where": {"split": "validation"}},
        {"type": "ldm_train", "name": "train", "input": "private", "min_images": 8, "eval": "holdout", **TINY},
        {"type": "ldm_sample", "name": "sample", "input": "train", "n": 6, "sampler": {"steps": 3, "batch_size": 4}, "formats": ["png", "dicom"],
         "conditions": "balanced", **(extra_sample or {})},
        {"type": "image_audit", "name": "gate", "input": "sample", "private": "private", "holdout": "holdout", "on_fail": "quarantine"},
    ]}


def _policy(tmp_path):
    (tmp_path / "policy.yaml").write_text("version: 1\naudits:\n  image_copy:\n    feature_steps: 20\n    candidates: 4\n    image_size: 16\n")


def test_ldm_recipe_end_to_end_with_cache(tmp_path, medsynth_home):
    import pydicom

    _policy(tmp_path)
    rec = _recipe(tmp_path, {"eval": {"real": "holdout", "classifier_steps": 10}})
    res = run_recipe(load_recipe(rec), run_dir=tmp_path / "run1", show_progress=False)
    assert res.status == "completed"
    report = json.loads((tmp_path / "run1" / "report.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    figs = {f["name"]: f["value"] for f in steps["train"]["figures"]}
    assert figs["unet.steps"] == 12 and figs["unet.images_per_second"] > 0 and 0 < figs["vae.reconstruction_ssim"] <= 1
    sfig = {f["name"]: f["value"] for f in steps["sample"]["figures"]}
    assert sfig["images"] == 6 and "eval.recognised_generated" in sfig and "eval.fd_generated_vs_real" in sfig
    assert "image_copy.nearest_ssim" in steps["gate"]["sections"] and "audit_summary" in steps["gate"]["sections"]
    pairs = steps["gate"]["sections"]["image_copy.closest_pairs"]
    assert pairs["thumbnails"] and pairs["pairs"][0]["synthetic_png"].startswith("data:image/png;base64,")  # phantoms only
    out = read_records(next((tmp_path / "run1" / "steps").glob("*_sample")) / "sample.jsonl")
    assert [r.labels for r in out[:3]] == [["Cardiomegaly"], ["Nodule"], ["Opacity"]]
    r0 = out[0]
    assert r0.meta["synthetic"] and r0.provenance.model_sha256 == report["models"]["train/ldm"]
    ds = pydicom.dcmread(tmp_path / "run1" / r0.meta["dicom_path"])
    assert ds.ConversionType == "SYN" and "SYNTHETIC" in ds.ImageComments and ds.Rows == 16
    assert "Cardiomegaly" in ds.ImageComments
    # second run in another folder: every step from the cache, and the restored image paths resolve in the new run
    res2 = run_recipe(load_recipe(rec), run_dir=tmp_path / "run2", show_progress=False)
    assert all(s["how"] == "cache" for s in res2.steps)
    out2 = read_records(next((tmp_path / "run2" / "steps").glob("*_sample")) / "sample.jsonl")
    assert [r.image_path for r in out2] == [r.image_path for r in out]
    assert all((tmp_path / "run2" / r.image_path).exists() for r in out2)
    a = load_png(tmp_path / "run1" / out[0].image_path)
    b = load_png(tmp_path / "run2" / out2[0].image_path)
    np.testing.assert_array_equal(a, b)


def test_ldm_train_refuses_too_few_images(tmp_path):
    from medsynth.data.records import Record
    from medsynth.steps.imaging import LDMTrainConfig, LDMTrainStep

    p = save_png16(tmp_path / "x.png", np.zeros((16, 16), np.float32))
    recs = [Record(id=f"r{i}", kind="image", image_path=str(p)) for i in range(3)]
    step = LDMTrainStep(LDMTrainConfig(type="ldm_train", **TINY))
    ctx = make_test_context(tmp_path, {"in": recs}, step=step)
    with pytest.raises(DataFormatError, match="at least 16 are needed"):
        step.run(ctx)


def test_model_config_errors_name_the_field():
    bad = {"name": "t", "steps": [{"type": "phantom", "n": 4}, {"type": "ldm_train", "unet": {"stepz": 3}, "vae": {"block_out_channels": [10, 20]}}]}
    with pytest.raises(RecipeError) as ei:
        load_recipe(bad)
    msg = str(ei.value)
    assert "unet.stepz" in msg and "allowed keys" in msg and "vae: every VAE channel count must be divisible" in msg


@pytest.mark.slow  # the fast path is tests/imaging/test_recipes.py::test_impute_modality_recipe
def test_modality_impute_step_with_baselines(tmp_path, medsynth_home):
    rec = {"name": "tiny_impute", "seed": 1, "steps": [
        {"type": "phantom", "name": "data", "n": 40, "size": 16, "modalities": ["standard", "soft_tissue"], "splits": {"validation": 0.2, "test": 0.0}},
        {"type": "select", "name": "train_pairs", "input": "data", "where": {"split": "train"}},
        {"type": "select", "name": "test_pairs", "input": "data", "where": {"split": "validation"}},
        {"type": "modality_impute", "name": "impute", "input": "train_pairs", "source": "standard", "target": "soft_tissue", "n_samples": 2,
         "eval": {"real": "test_pairs", "unet_steps": 5, "feature_steps": 10}, "apply": "test_pairs", "min_pairs": 8,
         "sampler": {"steps": 3, "guidance_scale": 1.0}, "mode": "palette", **TINY},
    ]}
    res = run_recipe(load_recipe(rec), run_dir=tmp_path / "run", show_progress=False)
    assert res.status == "completed"
    step = next(s for s in res.steps if s["name"] == "impute")
    assert not any(f["name"].startswith("eval.ldm_regression_mean") for f in step["figures"])  # palette: no regression mean
    figs = {f["name"]: f["value"] for f in step["figures"]}
    for k in ("ldm_mean", "ldm_sample", "copy_input", "mean_image", "unet_regression"):
        assert f"eval.{k}.ssim" in figs and f"eval.{k}.mae" in figs
    assert "eval.ldm_sample.fd" in figs and "eval.uncertainty_error_spearman" in figs
    out = read_records(next((tmp_path / "run" / "steps").glob("*_impute")) / "impute.jsonl")
    imp = out[0].meta["imputed"]["soft_tissue"]
    assert len(imp["samples"]) == 2 and imp["target_was_present"] and out[0].provenance.seed_record_ids == [out[0].id]
    m = load_png(tmp_path / "run" / imp["mean"])
    s0, s1 = (load_png(tmp_path / "run" / p) for p in imp["samples"])
    np.testing.assert_allclose(m, (s0 + s1) / 2, atol=2e-4)
    assert out[0].meta["modalities"]["soft_tissue"] != imp["mean"]  # the real image is never overwritten
