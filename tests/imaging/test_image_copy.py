import numpy as np
import pytest

from medsynth.audit.image_copy import ImageCopyAudit, ImageCopyPolicy
from medsynth.audit.policy import load_policy
from medsynth.data.records import Record
from medsynth.imaging.io import save_png16
from medsynth.imaging.phantom import PhantomGenerator
from medsynth.registry import AUDITS


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgcopy")
    g = PhantomGenerator(size=24, seed=9)
    imgs = [c.images["standard"] for c in g.cases(90)]

    def recs(arrs, prefix, demo=True):
        return [Record(id=f"{prefix}-{i}", kind="image", image_path=str(save_png16(root / prefix / f"{i}.png", a)),
                       meta={"demo": "phantom"} if demo else {}) for i, a in enumerate(arrs)]

    private, holdout, novel = imgs[:50], imgs[50:70], imgs[70:85]
    rng = np.random.default_rng(0)
    planted = [private[3], np.clip(private[5] * 1.05 + rng.normal(0, 0.01, private[5].shape), 0, 1), np.roll(private[8], (2, -2), axis=(0, 1))]
    return {"private": recs(private, "p"), "holdout": recs(holdout, "h"), "synthetic": recs(novel + planted, "s"),
            "private_real": recs(private, "pr", demo=False)}


def test_registered_and_policy_section_validates(tmp_path):
    assert AUDITS.get("image_copy") is ImageCopyAudit
    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\naudits:\n  image_copy:\n    min_ssim: 0.97\n    max_flagged_share: 0.0\n")
    assert load_policy(p).audit_policy("image_copy").min_ssim == 0.97
    p.write_text("version: 1\naudits:\n  image_copy:\n    min_sim: 0.97\n")
    with pytest.raises(Exception, match="min_sim"):
        load_policy(p)


def test_planted_copies_are_flagged_and_novel_images_are_not(sets):
    # SSIM criterion alone (translation-tolerant search, threshold calibrated on the holdout)
    pol = ImageCopyPolicy(feature_steps=0, candidates=8, image_size=24)
    res = ImageCopyAudit(pol).run(sets["synthetic"], sets["private"], sets["holdout"], seed=0)
    flagged = {f.record_id for f in res.findings}
    assert "s-15" in flagged, "an exact copy"
    assert "s-17" in flagged, "a 2-pixel shifted copy (translation-tolerant SSIM)"
    assert not flagged & {f"s-{i}" for i in range(15)}, "novel images of the same population are not copies"
    assert res.verdict == "fail" and res.release_reasons
    by = {f.record_id: f for f in res.findings}
    assert by["s-15"].value["private_id"] == "p-3" and by["s-15"].value["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert by["s-17"].value["private_id"] == "p-8" and by["s-17"].value["ssim"] > 0.999
    figs = {f["name"]: f["value"] for f in res.figures}
    assert figs["image_copy.flagged"] == len(flagged) and figs["image_copy.ssim_threshold"] >= pol.min_ssim
    assert res.sections["nearest_ssim"]["plot"]["kind"] == "histogram"
    pairs = res.sections["closest_pairs"]
    assert pairs["thumbnails"] and pairs["pairs"][0]["synthetic_png"].startswith("data:image/png")
    # without the planted copies the release passes
    clean = ImageCopyAudit(pol).run(sets["synthetic"][:15], sets["private"], sets["holdout"], seed=0)
    assert clean.verdict == "pass" and not clean.findings
    # without translation tolerance the shifted copy escapes the SSIM criterion (why max_shift exists)
    plain = ImageCopyAudit(pol.model_copy(update={"max_shift": 0})).run(sets["synthetic"], sets["private"], sets["holdout"], seed=0)
    assert "s-17" not in {f.record_id for f in plain.findings}


@pytest.mark.slow
def test_feature_criterion_flags_a_recontrasted_noisy_copy(sets):
    pol = ImageCopyPolicy(feature_steps=100, candidates=8, image_size=24)
    res = ImageCopyAudit(pol).run(sets["synthetic"], sets["private"], sets["holdout"], seed=0)
    reasons = {(f.record_id, f.reason) for f in res.findings}
    flagged = {r for r, _ in reasons}
    assert ("s-16", "image_copy_features") in reasons, "gain ×1.05 + noise: closer in features than any two private images"
    assert {"s-15", "s-17"} <= flagged
    assert not flagged & {f"s-{i}" for i in range(15)}
    assert {f["name"]: f["value"] for f in res.figures}["image_copy.flagged"] == 3


def test_real_private_images_never_become_thumbnails(sets):
    pol = ImageCopyPolicy(feature_steps=0, candidates=4, image_size=24)
    res = ImageCopyAudit(pol).run(sets["synthetic"], sets["private_real"], None)
    pairs = res.sections["closest_pairs"]
    assert not pairs["thumbnails"] and all("private_png" not in p and "synthetic_png" not in p for p in pairs["pairs"])
    assert {f.record_id for f in res.findings} >= {"s-15", "s-16"}  # SSIM criterion alone (no holdout: min_ssim)


def test_degenerate_inputs(sets):
    pol = ImageCopyPolicy(feature_steps=0)
    assert ImageCopyAudit(pol).run([Record(id="t", text="x")], sets["private"]).verdict == "pass"
    r = ImageCopyAudit(pol).run(sets["synthetic"][:2], sets["private"][:1])
    assert r.verdict == "fail" and "at least 2 private images" in r.release_reasons[0]
