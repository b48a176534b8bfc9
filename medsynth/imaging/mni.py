"""Real paired multi-contrast slices from the MNI152 2009 (nonlinear, symmetric) template that nilearn installs in
``nilearn/datasets/data/``: the T1-weighted template and its grey- and white-matter probability maps.

The files are read at run time (never copied into the repository). The template is a population average
(ICBM 2009, McConnell Brain Imaging Centre), not an image of one patient; it serves as a *real* paired
example for modality imputation (T1 from tissue maps and back). It is one brain: neighbouring slices are
near-duplicates, so splits are made by blocks of contiguous slices.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..exceptions import MissingDependencyError

__all__ = ["mni152_dir", "mni152_volumes", "mni152_slices"]

_FILES = {"t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
          "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
          "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"}


def mni152_dir() -> Path:
    """nilearn's bundled data folder, found without importing nilearn."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("nilearn", "imaging", "the MNI152 paired-contrast demo")
    d = Path(spec.origin).parent / "datasets" / "data"
    missing = [f for f in _FILES.values() if not (d / f).exists()]
    if missing:
        raise MissingDependencyError("nilearn", "imaging", f"the MNI152 template files ({missing[0]} is missing from {d})")
    return d


def mni152_volumes() -> dict[str, np.ndarray]:
    """T1, GM, WM volumes as float32 in [0, 1], RAS voxel order (x, y, z), 1 mm."""
    try:
        import nibabel as nib
    except ImportError as e:
        raise MissingDependencyError("nibabel", "imaging", "reading NIfTI volumes") from e
    d = mni152_dir()
    out = {}
    for k, f in _FILES.items():
        img = nib.as_closest_canonical(nib.load(str(d / f)))
        a = np.asarray(img.dataobj, dtype=np.float32)
        out[k] = a / max(float(a.max()), 1e-6)
    return out


def mni152_slices(size: int = 64, axis: str = "axial", lo: float = 0.2, hi: float = 0.85, every: int = 1) -> list[tuple[int, dict[str, np.ndarray]]]:
    """``[(slice index, {"t1", "gm", "wm": float32 [size, size]})]`` along ``axis`` within [lo, hi] of its extent,
    displayed radiologically upright (superior/anterior at the top), padded to square and area-resized."""
    from .io import preprocess

    vols = mni152_volumes()
    ax = {"sagittal": 0, "coronal": 1, "axial": 2}[axis]
    n = vols["t1"].shape[ax]
    out = []
    for z in range(int(lo * n), int(hi * n), every):
        imgs = {}
        for k, v in vols.items():
            s = np.take(v, z, axis=ax)
            s = np.rot90(s)  # (x, y) → rows top = anterior/superior
            imgs[k], _ = preprocess(np.ascontiguousarray(s), size, "pad")
        if imgs["t1"].max() < 0.05:
            continue
        out.append((z, imgs))
    return out
