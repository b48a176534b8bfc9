"""What every image reader returns and raises: :class:`ImageInfo` (what was read, without any identifying header
value), :class:`ImageReadError` with a typed reason, the normalisation and colour policies, intensity scaling to
``[0, 1]`` and file hashing. Shared by :mod:`.dicom` and :mod:`.io`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..exceptions import DataFormatError

__all__ = ["ImageInfo", "ImageReadError", "ImageFailure", "Normalize", "ColorPolicy", "scale_intensity", "file_sha256"]

#: why an image could not be read, for the ingestion step's quarantine reasons and statistics
ImageFailure = Literal["color_image", "multiframe", "unreadable_file"]

class ImageReadError(DataFormatError):
    """An image that cannot be used, with a typed ``reason`` (the message names the file and the fix)."""

    def __init__(self, message: str, reason: ImageFailure = "unreadable_file"):
        super().__init__(message)
        self.reason: ImageFailure = reason

Normalize = Literal["auto", "dtype", "minmax", "percentile"]

ColorPolicy = Literal["error", "convert", "quarantine"]

@dataclass
class ImageInfo:
    """What was read, without any header value that could identify a patient."""

    format: str
    shape: tuple[int, ...]
    bits: int | None = None
    photometric: str | None = None
    color: bool = False
    frames: int = 1
    inverted: bool = False
    intensity: str = ""  # how values were mapped to [0, 1]: voi_lut | window | dtype | minmax | percentile
    spacing_mm: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

def scale_intensity(a: np.ndarray, how: str, lo_q: float = 0.5, hi_q: float = 99.5) -> np.ndarray:
    a = a.astype(np.float64)
    if how == "percentile":
        lo, hi = np.percentile(a, [lo_q, hi_q])
    else:
        lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.float32)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
