"""The supervised U-Net regression baseline of modality imputation (real MONAI network, tiny data)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medsynth.imaging.baselines import train_regression_unet  # noqa: E402


def _pairs(n: int = 48, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    src = np.stack([np.clip(0.2 + 0.6 * rng.random() * np.exp(-((yy - rng.random()) ** 2 + (xx - rng.random()) ** 2) * 8), 0, 1)
                    for _ in range(n)]).astype(np.float32)
    return src[:, None], (1.0 - src).astype(np.float32)  # an intensity inversion: copying the input is maximally wrong


def test_regression_unet_learns_an_intensity_mapping_better_than_copying():
    X, Y = _pairs()
    reg, info = train_regression_unet(X[:40], Y[:40], steps=120, batch_size=16, channels=(8, 16, 32), seed=0)
    P = reg.predict(X[40:])
    assert P.shape == Y[40:].shape and P.min() >= 0 and P.max() <= 1
    mae_model = float(np.abs(P - Y[40:]).mean())
    mae_copy = float(np.abs(X[40:, 0] - Y[40:]).mean())
    assert mae_model < 0.5 * mae_copy, (mae_model, mae_copy)
    assert info["steps"] == 120 and info["images_per_second"] > 0


def test_residual_prediction_adds_the_first_source_channel():
    X, Y = _pairs(n=8)
    reg, _ = train_regression_unet(X, Y, steps=2, batch_size=4, channels=(8, 16), residual=True, seed=1)
    assert reg.residual
    with torch.no_grad():
        x = torch.as_tensor(X) * 2 - 1
        manual = ((reg.net(x)[:, 0] + x[:, 0] + 1) / 2).clamp(0, 1).numpy()
    np.testing.assert_allclose(reg.predict(X), manual, atol=1e-5)
