import numpy as np
import pytest

from medsynth.imaging.phantom import A_MAX, FINDINGS, PhantomGenerator, render


def test_deterministic_and_index_addressable():
    a = PhantomGenerator(size=32, seed=5).case(7)
    b = PhantomGenerator(size=32, seed=5).cases(3, start=6)[1]
    assert a.labels == b.labels and a.report == b.report
    for m in ("standard", "soft_tissue", "bone"):
        assert np.array_equal(a.images[m], b.images[m])
    c = PhantomGenerator(size=32, seed=6).case(7)
    assert not np.array_equal(a.images["standard"], c.images["standard"])


def test_standard_is_soft_plus_bone():
    g = PhantomGenerator(size=48, seed=1, prevalence={f: 0.5 for f in FINDINGS})
    for c in g.cases(6):
        s, so, bo = c.images["standard"], c.images["soft_tissue"], c.images["bone"]
        assert s.dtype == np.float32 and s.shape == (48, 48)
        assert 0 <= s.min() and s.max() <= 1
        assert s.max() < 1.0, "the default geometry must not clip"
        np.testing.assert_allclose(s, so + bo, atol=1e-6)


def _lung_base_mean(img: np.ndarray) -> float:
    h, w = img.shape
    return float(img[int(0.62 * h):int(0.72 * h), int(0.1 * w):int(0.9 * w)].mean())


def test_findings_are_controllable():
    rng = lambda: np.random.default_rng(3)  # noqa: E731 - same anatomy draw for both
    normal, p0 = render(64, [], rng(), noise=0)
    cardio, p1 = render(64, ["Cardiomegaly"], rng(), noise=0)
    assert 0.37 <= p0["ctr"] <= 0.47 and 0.57 <= p1["ctr"] <= 0.67
    assert cardio["soft_tissue"].sum() > normal["soft_tissue"].sum()
    eff, pe = render(64, ["Pleural Effusion"], rng(), noise=0)
    assert eff["soft_tissue"].sum() > normal["soft_tissue"].sum() + 5 and "effusion" in pe
    dev, pd = render(64, ["Support Device"], rng(), noise=0)
    assert np.allclose(dev["soft_tissue"], normal["soft_tissue"]), "devices are radio-opaque: bone image only"
    assert dev["bone"].max() > normal["bone"].max() + 0.1 and pd["devices"]
    nod, pn = render(64, ["Nodule"], rng(), noise=0)
    diff = nod["soft_tissue"] - normal["soft_tissue"]
    assert diff.max() > 0.1 and (diff > 0.05).sum() < 60, "a nodule is a small bright blob"
    op, po = render(64, ["Opacity"], rng(), noise=0)
    assert (op["soft_tissue"] - normal["soft_tissue"] > 0.03).sum() > 60 and po["opacity"]["lobe"] in ("upper", "lower")


def test_prevalence_and_reports():
    g = PhantomGenerator(size=16, seed=0, prevalence={"Nodule": 1.0, "Opacity": 0.0})
    labs = [g.labels_for(i) for i in range(200)]
    assert all("Nodule" in ls for ls in labs) and not any("Opacity" in ls for ls in labs)
    share = np.mean(["Cardiomegaly" in ls for ls in labs])
    assert 0.2 < share < 0.4
    c = g.case(0)
    assert "nodule" in c.report.lower()
    assert g.case(0, findings=["Cardiomegaly"]).labels == ["Cardiomegaly"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown phantom finding"):
        render(32, ["Pneumothorax"], np.random.default_rng(0))
    with pytest.raises(ValueError, match="prevalence"):
        PhantomGenerator(prevalence={"Nodule": 2.0})
    with pytest.raises(ValueError, match="unknown"):
        PhantomGenerator(prevalence={"Pneumothorax": 0.2})
    assert A_MAX > 0
