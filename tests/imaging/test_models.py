import json

import numpy as np
import pytest

from medsynth.exceptions import ModelNotAvailableError
from medsynth.imaging.models import SamplerConfig, UNetConfig, VAEConfig
from medsynth.imaging.phantom import PhantomGenerator
from medsynth.imaging.pipelines import LDMConfig, LDMGenerator, ModalityImputer, condition_vectors

CFG = LDMConfig.from_preset("tiny", size=16, vae={"steps": 8, "batch_size": 8}, unet={"steps": 8, "batch_size": 8})


@pytest.fixture(scope="module")
def data():
    cs = PhantomGenerator(size=16, seed=1).cases(24)
    return np.stack([c.images["standard"] for c in cs]), np.stack([c.images["soft_tissue"] for c in cs]), [c.labels for c in cs]


@pytest.fixture(scope="module")
def gen(data):
    X, _, L = data
    return LDMGenerator.fit(X, L, config=CFG, seed=0)


def test_generator_deterministic_batch_independent_and_bundle_roundtrip(gen, data, tmp_path):
    conds = [["Cardiomegaly"], [], ["Nodule", "Opacity"]]
    a = gen.generate(conds, sampler=SamplerConfig(steps=3, batch_size=3), seed=4)
    b = gen.generate(conds, sampler=SamplerConfig(steps=3, batch_size=1), seed=4)
    c = gen.generate(conds, sampler=SamplerConfig(steps=3), seed=5)
    assert a.shape == (3, 16, 16) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a, c)
    # image j depends on (seed, j) only: generating image 2 alone with start_index=2 gives the same picture
    np.testing.assert_allclose(gen.generate(conds[2:], sampler=SamplerConfig(steps=3), seed=4, start_index=2)[0], a[2], atol=1e-5)
    sha = gen.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "medsynth_ldm.json").read_text())
    assert meta["sha256"] == sha and meta["kind"] == "generator" and meta["labels"] == gen.labels
    assert meta["training"]["unet"]["steps"] == 8 and meta["training"]["vae"]["images_seen"] == 64
    g2 = LDMGenerator.load(tmp_path / "m")
    np.testing.assert_allclose(g2.generate(conds, sampler=SamplerConfig(steps=3), seed=4), a, atol=1e-5)
    # schedulers and guidance paths
    for s in (SamplerConfig(steps=3, scheduler="dpm"), SamplerConfig(steps=3, scheduler="ddpm"), SamplerConfig(steps=2, guidance_scale=0.0),
              SamplerConfig(steps=2, guidance_scale=1.0), SamplerConfig(steps=2, eta=1.0)):
        assert g2.generate(conds[:1], sampler=s, seed=1).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="not trained on label"):
        g2.generate([["Pneumothorax"]])
    # a changed weight file is refused
    w = next((tmp_path / "m" / "unet").glob("*.safetensors"))
    blob = bytearray(w.read_bytes())
    blob[-1] ^= 0xFF
    w.write_bytes(bytes(blob))
    with pytest.raises(ModelNotAvailableError, match="changed or missing"):
        LDMGenerator.load(tmp_path / "m")
    with pytest.raises(ModelNotAvailableError, match="not a medsynth"):
        LDMGenerator.load(tmp_path)


def test_conditioning_and_cfg_null_are_distinct():
    v = condition_vectors([[], ["B"], ["A", "B", "zzz"]], ["A", "B"])
    assert v.tolist() == [[0, 0, 1], [0, 1, 1], [1, 1, 1]]  # "no finding" ≠ the all-zero null condition


def test_ema_weights_are_what_is_saved(data):
    import torch

    from medsynth.imaging.models import build_scheduler, build_unet
    from medsynth.imaging.train import train_diffusion

    X, _, L = data
    lat = torch.randn(24, 4, 8, 8)
    cfg = CFG.unet.model_copy(update={"steps": 6, "ema_decay": 0.99})
    torch.manual_seed(0)
    unet = build_unet(cfg, latent_channels=4, latent_size=8, n_labels=2)
    init = [p.detach().clone() for p in unet.parameters()]
    ema, info = train_diffusion(unet, build_scheduler(cfg), lat, cfg, class_vecs=condition_vectors(L, ["Nodule", "Opacity"]), seed=0)
    raw = list(unet.parameters())
    diff_raw = sum(float((a - b).abs().sum()) for a, b in zip(raw, init, strict=True))
    diff_ema = sum(float((a - b).abs().sum()) for a, b in zip(ema.parameters(), init, strict=True))
    assert info.steps == 6 and info.images_seen == 48 and diff_raw > 0
    assert 0 < diff_ema < diff_raw  # the EMA lags the raw weights


def test_report_conditioning_and_time_budget(data):
    X, _, L = data
    rep = np.random.default_rng(0).normal(size=(len(X), 384)).astype(np.float32)
    g = LDMGenerator.fit(X, L, config=CFG, report_embeddings=rep, seed=0, max_seconds=0.0)
    assert g.uses_reports and g.meta["training"]["unet"]["stopped_early"] and g.meta["training"]["unet"]["steps"] == 1
    out = g.generate([["Nodule"]], report_embeddings=rep[:1], sampler=SamplerConfig(steps=2), seed=0)
    assert out.shape == (1, 16, 16)
    with pytest.raises(ValueError, match="report_embeddings"):
        g.generate([["Nodule"]])


def test_imputer_samples_and_shapes(data, tmp_path):
    X, S, _ = data
    imp = ModalityImputer.fit({"standard": X}, S, config=CFG, target_name="soft_tissue", seed=0)
    out = imp.impute({"standard": X[:3]}, n_samples=2, sampler=SamplerConfig(steps=3, guidance_scale=1.0), seed=1)
    assert out.shape == (3, 2, 16, 16)
    assert not np.allclose(out[:, 0], out[:, 1])  # samples differ: that spread is the uncertainty
    imp.save(tmp_path / "imp")
    imp2 = ModalityImputer.load(tmp_path / "imp")
    assert imp2.sources == ["standard"] and imp2.target == "soft_tissue"
    np.testing.assert_allclose(imp2.impute({"standard": X[:3]}, n_samples=2, sampler=SamplerConfig(steps=3), seed=1), out, atol=1e-5)
    with pytest.raises(ValueError, match="needs source modality"):
        imp2.impute({"bone": X[:1]})
    with pytest.raises(ModelNotAvailableError, match="imputer"):
        LDMGenerator.load(tmp_path / "imp")


def test_residual_imputer_scatters_around_its_regression_mean_and_roundtrips(data, tmp_path):
    from medsynth.imaging.pipelines import MeanModelConfig, _fit_mean
    from medsynth.imaging.train import Runtime

    X, S, _ = data
    mm = MeanModelConfig(steps=12, batch_size=8, channels=[8, 16, 32], folds=2)
    imp = ModalityImputer.fit({"standard": X}, S, config=CFG, target_name="soft_tissue", seed=0, mean_model=mm)
    assert imp.mode == "residual" and imp.meta["mean_model"]["training"]["fits"] == 3
    scale = imp.meta["mean_model"]["residual_scale"]
    assert 0 < scale < 1
    out = imp.impute({"standard": X[:3]}, n_samples=3, sampler=SamplerConfig(steps=3), seed=1)
    mu = imp.predict_mean({"standard": X[:3]})
    assert out.shape == (3, 3, 16, 16) and mu.shape == (3, 16, 16)
    assert not np.allclose(out[:, 0], out[:, 1])
    # a sample is the regression mean plus a decoded residual, which the VAE range bounds by ±scale
    assert np.abs(out - np.clip(mu[:, None], 0, 1)).max() <= scale + 1e-5
    rec = imp.reconstruct({"standard": X[:3]}, S[:3])  # the VAE round trip of the true residual, around the same mean
    assert rec.shape == (3, 16, 16) and np.abs(rec - mu).max() <= scale + 1e-5
    imp.save(tmp_path / "res")
    assert (tmp_path / "res" / "mean" / "model.safetensors").exists()
    imp2 = ModalityImputer.load(tmp_path / "res")
    assert imp2.mode == "residual"
    np.testing.assert_allclose(imp2.impute({"standard": X[:3]}, n_samples=3, sampler=SamplerConfig(steps=3), seed=1), out, atol=1e-5)
    # the regression's weights are hashed like every other file of the bundle
    w = tmp_path / "res" / "mean" / "model.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-1] ^= 0xFF
    w.write_bytes(bytes(blob))
    with pytest.raises(ModelNotAvailableError, match="changed or missing"):
        ModalityImputer.load(tmp_path / "res")
    # residuals: in-sample from the final regression, or out-of-fold from regressions that never saw the pair
    Xs = X[:, None]
    final0, mu0, i0 = _fit_mean(Xs, S, mm.model_copy(update={"folds": 0}), 0, Runtime("cpu"), None)
    np.testing.assert_allclose(mu0, final0.predict(Xs), atol=1e-6)
    final2, mu2, i2 = _fit_mean(Xs, S, mm, 0, Runtime("cpu"), None)
    assert i0["fits"] == 1 and i2["fits"] == 3 and not np.allclose(mu2, final2.predict(Xs), atol=1e-3)


def test_palette_imputer_has_no_regression_mean(data):
    X, S, _ = data
    imp = ModalityImputer.fit({"standard": X}, S, config=CFG, seed=0)
    assert imp.mode == "palette"
    with pytest.raises(ValueError, match="palette-mode"):
        imp.predict_mean({"standard": X[:1]})


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        VAEConfig(block_out_channels=[12, 24], norm_num_groups=8)
    with pytest.raises(ValueError, match="one entry per level"):
        UNetConfig(block_out_channels=[16, 32], attention=[True])
    with pytest.raises(ValueError, match="unknown preset"):
        LDMConfig.from_preset("huge")
    with pytest.raises(ValueError, match="configured for"):
        LDMGenerator.fit(np.zeros((4, 20, 20), np.float32), [[]] * 4, config=CFG)


@pytest.mark.parametrize("kind", ["ddim", "dpm", "ddpm"])
def test_samplers_recover_the_data_from_a_slightly_wrong_denoiser(kind):
    """An almost-perfect noise predictor (oracle ε + 5% error) must lead every sampler back to the data. With
    the squared-cosine schedule, a first DDIM/DPM step at t = T−1 (ᾱ ≈ 0) divides the error by √ᾱ and returns
    noise — which is what 'trailing' timestep spacing did."""
    import torch
    from types import SimpleNamespace

    from medsynth.imaging.models import build_scheduler
    from medsynth.imaging.pipelines import _denoise, make_scheduler

    train = build_scheduler(UNetConfig())
    ab = train.alphas_cumprod
    x0 = torch.full((2, 4, 4, 4), 0.5)
    x0[1] = -0.7
    g = torch.Generator().manual_seed(0)

    def unet(x, t, **kw):
        a = ab[int(t)]
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return SimpleNamespace(sample=eps + 0.05 * torch.randn(x.shape, generator=g))

    sched = make_scheduler(train.config, kind)
    steps = 50 if kind == "ddpm" else 20
    lat = _denoise(unet, sched, torch.randn(x0.shape, generator=g), steps, eta=0.0, gen=g, model_kwargs=lambda x: (x, {}))
    assert float((lat - x0).abs().mean()) < 0.15, kind
