"""Imaging: latent-diffusion radiograph synthesis and missing-modality imputation (diffusers + MONAI), CPU-first.

Light to import: torch, diffusers and MONAI load only when a model is built or a metric computed.

    from medsynth.imaging import PhantomGenerator, LDMGenerator, ModalityImputer, LDMConfig

Modules: ``io`` (DICOM/PNG reading with VOI LUT and MONOCHROME1 handling, labels, synthetic DICOM), ``phantom``
(procedural chest radiographs with dual-energy pairs — never patients), ``mni`` (MNI152 paired contrasts),
``models`` (configs, builders, bundles), ``train`` (VAE / diffusion loops), ``pipelines`` (generator, imputer),
``baselines`` (U-Net regression), ``metrics`` (SSIM/PSNR/MAE, in-project feature network, FD, accuracy),
``steps`` (recipe steps).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PhantomGenerator", "FINDINGS", "LDMGenerator", "ModalityImputer", "LDMConfig", "SamplerConfig", "read_image",
           "read_dicom", "write_synthetic_dicom", "FeatureNet", "fit_feature_net"]

_LAZY = {
    "PhantomGenerator": "medsynth.imaging.phantom", "FINDINGS": "medsynth.imaging.phantom",
    "LDMGenerator": "medsynth.imaging.pipelines", "ModalityImputer": "medsynth.imaging.pipelines", "LDMConfig": "medsynth.imaging.pipelines",
    "SamplerConfig": "medsynth.imaging.models",
    "read_image": "medsynth.imaging.io", "read_dicom": "medsynth.imaging.dicom", "write_synthetic_dicom": "medsynth.imaging.dicom",
    "FeatureNet": "medsynth.imaging.metrics", "fit_feature_net": "medsynth.imaging.metrics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medsynth.imaging' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
