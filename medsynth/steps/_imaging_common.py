"""Helpers shared by the imaging steps (:mod:`.imaging_sources`, :mod:`.imaging`): the step-folder cache key, paths
relative to the run directory, hashed splits, and loading the images of records through the imaging tensor cache."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.records import Record, id_ref
from ..exceptions import DataFormatError

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["modality_path", "record_images"]


class _StepFolderKey:
    """Mixin: the step folder name (``NN_name``) is part of the cache key, so that relative image paths written by
    the step stay valid when its output is restored from the cache."""

    def cache_key_extra(self) -> dict[str, Any]:
        rec = getattr(self, "recipe", None)
        if rec is None:
            return {}
        try:
            i = next(k for k, s in enumerate(rec.steps) if s is self)
        except StopIteration:
            return {}
        return {"step_dir": f"{i:02d}_{rec.names[i]}"}


def _rel(ctx: StepContext, p: Path) -> str:
    return Path(p).resolve().relative_to(Path(ctx.run_dir).resolve()).as_posix()


def _split_of(key: str, validation: float, test: float) -> str:
    u = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else ("validation" if u < test + validation else "train")


def modality_path(r: Record, modality: str | None) -> str | None:
    if modality in (None, "", "image"):
        return r.image_path
    return (r.meta.get("modalities") or {}).get(modality)


def record_images(ctx: StepContext, records: list[Record], size: int, modality: str | None = None) -> Any:
    """Images of ``records`` (one modality) as float32 [N, size, size], through the imaging tensor cache."""
    from ..imaging.io import load_stack, resolve_image_path

    paths = []
    for r in records:
        p = modality_path(r, modality)
        if not p:
            raise DataFormatError(f"record {id_ref(r.id)} has no {'image_path' if modality in (None, 'image') else f'modality {modality!r}'}; "
                                  "image steps need image records (from phantom, image_folder or mni152).")
        paths.append(resolve_image_path(p, ctx.run_dir))
    return load_stack(paths, size, Path(ctx.home) / "cache" / "imaging")
