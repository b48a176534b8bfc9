"""Imaging recipe steps (heavy imports stay inside ``run()``).

Sources: ``phantom`` (procedural chest radiographs with dual-energy pairs), ``image_folder`` (DICOM / PNG / JPEG
folder + labels; demo data when no ``path`` is given), ``mni152`` (real paired T1 / grey / white-matter slices of the
MNI152 template shipped with nilearn).
Models: ``ldm_train`` (VAE + label-conditioned UNet), ``ldm_sample`` (synthetic radiographs, PNG and synthetic
DICOM, optional evaluation), ``modality_impute`` (imputation of a missing modality by a conditional LDM — residual around a regression mean,
or Palette-style — with baselines).
Gate: ``image_audit`` (in :mod:`medsynth.steps.audit`: the ``image_copy`` audit through the one release gate).

Image records: ``Record(kind="image", image_path=<path relative to the run directory>, labels=[...])``; paired
modalities in ``meta.modalities`` (name → path). Files live in the writing step's folder; the step folder name is
part of each such step's cache key, so cached copies always land where their paths say.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..data.records import Provenance, Record, id_ref
from ..exceptions import DataFormatError, RecipeError
from ..paths import find_step_dir
from ..recipe.step import Step, StepConfig, StepPlan, eval_object, register_step

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["PhantomStep", "ImageFolderStep", "MNI152Step", "LDMTrainStep", "LDMSampleStep", "ModalityImputeStep",
           "modality_path", "record_images"]

log = logging.getLogger("medsynth.imaging")


# ------------------------------------------------------------------------------------------------------------------
# helpers shared by the steps


class _StepFolderKey:
    """Mixin: the step folder name (``NN_name``) is part of the cache key, so that relative image paths written by
    the step stay valid when its output is restored from the cache."""

    def cache_key_extra(self) -> dict[str, Any]:  # type: ignore[override]
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


def _find_step_dir(ctx: StepContext, name: str) -> Path | None:
    return find_step_dir(ctx.run_dir, name)


class _Splits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    validation: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, ge=0, lt=1)

    @model_validator(mode="after")
    def _sum(self) -> _Splits:
        if self.validation + self.test >= 1:
            raise ValueError("splits.validation + splits.test must leave some training data (sum < 1)")
        return self


class PhantomOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(600, ge=1, le=200000, description="cases drawn")
    size: int = Field(64, ge=16, le=1024)
    prevalence: dict[str, float] = Field(default_factory=dict, description="probability of each finding (default 0.3 each)")
    noise: float = Field(0.006, ge=0, le=0.2, description="quantum noise σ (pixel units)")
    modalities: list[Literal["standard", "soft_tissue", "bone"]] = Field(default_factory=lambda: ["standard"],
                                                                        description="images written per case (image_path = the first)")
    reports: bool = Field(False, description="put a short templated report of the drawn findings in record.text")

    @field_validator("prevalence")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        from ..imaging.phantom import FINDINGS

        bad = [k for k in v if k not in FINDINGS]
        if bad:
            raise ValueError(f"unknown finding(s) {bad}; known: {', '.join(FINDINGS)}")
        return v


def _write_phantoms(ctx: StepContext, opts: PhantomOptions, splits: _Splits, prefix: str) -> list[Record]:
    import numpy as np

    from ..imaging.io import save_png16
    from ..imaging.phantom import PhantomGenerator

    gen = PhantomGenerator(size=opts.size, seed=int(ctx.seed), prevalence=opts.prevalence, noise=opts.noise)
    out_dir = ctx.step_dir / "images"
    recs = []
    with ctx.progress(opts.n, "phantom", unit="images") as bar:
        for i in range(opts.n):
            c = gen.case(i)
            rid = f"{prefix}-{i:05d}"
            mods = {}
            for m in opts.modalities:
                p = save_png16(out_dir / (f"{rid}.png" if m == opts.modalities[0] else f"{rid}_{m}.png"), c.images[m])
                mods[m] = _rel(ctx, p)
            meta = {"split": _split_of(rid, splits.validation, splits.test), "demo": "phantom", "modalities": mods,
                    "phantom": {"ctr": c.params["ctr"]}}
            recs.append(Record(id=rid, kind="image", image_path=mods[opts.modalities[0]], labels=c.labels,
                               text=c.report if opts.reports else None, meta=meta,
                               provenance=Provenance(step=ctx.step_name, generator="phantom", params={"seed": int(ctx.seed), "index": i})))
            bar.advance(1)
    counts = Counter(lab for r in recs for lab in r.labels)
    ctx.add_figure("images", len(recs), f"procedural phantom cases of {opts.size}×{opts.size} px (never patients), seed {ctx.seed}")
    ctx.add_section("label_counts", dict(sorted(counts.items())))
    ctx.add_figure("splits", dict(Counter(r.meta["split"] for r in recs)), "hashed split of the record ids")
    _ = np
    return recs


# ------------------------------------------------------------------------------------------------------------------
# sources


class PhantomConfig(StepConfig):
    type: Literal["phantom"] = "phantom"
    n: int = Field(600, ge=1, le=200000)
    size: int = Field(64, ge=16, le=1024)
    prevalence: dict[str, float] = Field(default_factory=dict)
    noise: float = Field(0.006, ge=0, le=0.2)
    modalities: list[Literal["standard", "soft_tissue", "bone"]] = Field(default_factory=lambda: ["standard"])
    reports: bool = False
    splits: _Splits = Field(default_factory=_Splits)

    @field_validator("prevalence")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        return PhantomOptions._known(v)


@register_step
class PhantomStep(_StepFolderKey, Step[PhantomConfig]):
    """Procedural chest radiographs with controllable findings and dual-energy pairs (see imaging/phantom.py)."""

    Config = PhantomConfig

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        return StepPlan(records_out=self.config.n, notes=["procedural phantoms: demo/test data, never patients"])

    def run(self, ctx: StepContext) -> None:
        c = self.config
        opts = PhantomOptions(**c.model_dump(include={"n", "size", "prevalence", "noise", "modalities", "reports"}))
        ctx.write_output(_write_phantoms(ctx, opts, c.splits, ctx.step_name))


class ImageFolderConfig(StepConfig):
    type: Literal["image_folder"] = "image_folder"
    path: str | None = Field(None, description="folder of DICOM/PNG/JPEG images (recursive); empty: demo data (see `demo`)")
    demo: Literal["chest_phantom"] = Field("chest_phantom", description="data used when `path` is empty (procedural phantoms, never patients)")
    phantom: PhantomOptions = Field(default_factory=PhantomOptions, description="demo phantom options (when `path` is empty; their size defaults to `size`)")
    labels_from: Literal["auto", "csv", "folder", "dicom_tags", "none"] = Field(
        "auto", description="auto: the labels CSV if given or labels.csv exists in the folder, else none")
    labels_csv: str | None = Field(None, description="CSV with one row per image (default: <path>/labels.csv if present)")
    file_column: str | None = Field(None, description="CSV column with the image file (relative to `path`); default: file/path/filename/image")
    label_column: str | None = Field("labels", description="CSV column with separated findings (empty or 'No Finding' = none)")
    label_columns: list[str] | None = Field(None, description="one-hot CSV columns instead (1 present, 0/blank absent, -1 uncertain)")
    label_separator: str = "|"
    uncertain_as: Literal["negative", "positive"] = "negative"
    report_column: str | None = Field(None, description="CSV column with the report text (record.text; for report conditioning)")
    split_column: str | None = Field(None, description="CSV column with train/validation/test (default: hashed split of the ids)")
    modality_columns: dict[str, str] | None = Field(None, description="paired images: modality name → CSV file column (image_path = the first)")
    label_tags: list[str] = Field(default_factory=list, description="DICOM keywords (or gggg,eeee) whose values are labels (labels_from: dicom_tags)")
    size: int = Field(64, ge=16, le=1024, description="images are padded/cropped to square and area-resized to size×size (64 / 128 / 256)")
    fit: Literal["pad", "crop", "stretch"] = Field("pad", description="how non-square images become square")
    normalize: Literal["auto", "dtype", "minmax", "percentile"] = Field(
        "auto", description="auto: DICOM VOI LUT/window, else 0.5–99.5 percentiles; 8-bit rasters by dtype; 16-bit rasters by percentiles")
    color: Literal["error", "convert", "quarantine"] = Field("quarantine", description="colour images in the set: stop, use luminance, or quarantine them")
    frame: Literal["error", "first", "middle"] = Field("error", description="multi-frame DICOM: stop, or take one frame")
    on_bad_file: Literal["error", "quarantine"] = Field("error", description="unreadable/corrupt files: stop listing all of them, or quarantine and go on")
    missing_image: Literal["error", "skip"] = Field("error", description="CSV rows whose file does not exist: stop, or skip them (counted in the report)")
    unlabeled: Literal["quarantine", "keep", "error"] = Field("quarantine", description="images without a CSV row: quarantine, keep with no labels, or stop")
    splits: _Splits = Field(default_factory=_Splits)
    recursive: bool = True

    @model_validator(mode="after")
    def _exclusive(self) -> ImageFolderConfig:
        if self.label_columns and self.label_column not in (None, "labels"):
            raise ValueError("give either label_column or label_columns, not both")
        return self


@register_step
class ImageFolderStep(_StepFolderKey, Step[ImageFolderConfig]):
    """A folder of radiographs (DICOM or PNG/JPEG) with labels → preprocessed image records."""

    Config = ImageFolderConfig

    def _paths(self, recipe: Any) -> tuple[Path | None, Path | None]:
        c = self.config
        res = (lambda p: recipe.resolve_path(p)) if recipe is not None else Path
        root = res(c.path) if c.path else None
        csvp = res(c.labels_csv) if c.labels_csv else None
        if csvp is None and root is not None and c.labels_from in ("auto", "csv") and (root / "labels.csv").exists():
            csvp = root / "labels.csv"
        return root, csvp

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        from ..imaging.io import check_label_tags

        c = self.config
        probs = []
        root, csvp = self._paths(recipe)
        if root is not None and not root.is_dir():
            probs.append(("path", f"folder not found: {root}. Give an absolute path or one relative to the project root."))
        if c.labels_csv and csvp is not None and not csvp.exists():
            probs.append(("labels_csv", f"file not found: {csvp}"))
        if c.labels_from == "csv" and root is not None and csvp is None:
            probs.append(("labels_csv", "labels_from: csv needs labels_csv (or labels.csv in the folder)"))
        if c.labels_from == "dicom_tags":
            if not c.label_tags:
                probs.append(("label_tags", "labels_from: dicom_tags needs label_tags (e.g. [BodyPartExamined])"))
            probs += [("label_tags", m) for m in check_label_tags(c.label_tags)]
        return probs

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c = self.config
        return StepPlan(records_out=c.phantom.n if not c.path else None)

    def run(self, ctx: StepContext) -> None:
        c = self.config
        root, csvp = self._paths(ctx.recipe)
        if root is None:
            opts = c.phantom if "size" in c.phantom.model_fields_set else c.phantom.model_copy(update={"size": c.size})
            recs = _write_phantoms(ctx, opts, c.splits, "phantom")
            ctx.add_figure("source", "demo: chest_phantom", "no `path` given: procedural phantoms (set `--set steps.<name>.path=/your/folder`)")
            ctx.write_output(recs)
            return
        self._run_folder(ctx, c, root, csvp)

    def _run_folder(self, ctx: StepContext, c: ImageFolderConfig, root: Path, csvp: Path | None) -> None:
        from ..imaging.io import (
            dicom_tag_labels,
            ImageReadError,
            file_sha256,
            is_dicom,
            preprocess,
            read_image,
            read_labels_csv,
            save_png16,
            scan_folder,
        )

        files = scan_folder(root, c.recursive)
        if csvp is not None:
            files = [f for f in files if f.resolve() != csvp.resolve()]
        if not files:
            raise DataFormatError(f"{root}: no images found (looked for DICOM, PNG, JPEG, TIFF, BMP{', recursively' if c.recursive else ''}). "
                                  "Check `path:`.")
        use_csv = c.labels_from == "csv" or (c.labels_from == "auto" and csvp is not None)
        rows_by_file: dict[str, Any] = {}
        skipped_rows = 0
        cases: list[tuple[str, dict[str, Path], Any]] = []  # (case key, modality -> file, row)
        if use_csv:
            assert csvp is not None
            rows = read_labels_csv(csvp, file_column=c.file_column, label_column=None if c.label_columns else c.label_column,
                                   label_columns=c.label_columns, label_separator=c.label_separator, uncertain_as=c.uncertain_as,
                                   report_column=c.report_column, split_column=c.split_column, modality_columns=c.modality_columns)
            on_disk = {f.resolve() for f in files}
            missing_lines: list[int] = []
            dup: list[int] = []
            for row in rows:
                paths = {m: (root / f) for m, f in row.files.items()}
                if any(not f or not p.resolve() in on_disk for (m, f), p in zip(row.files.items(), paths.values(), strict=True)):
                    missing_lines.append(row.line)
                    continue
                key = "|".join(sorted(str(p.resolve()) for p in paths.values()))
                if key in rows_by_file:
                    dup.append(row.line)
                    continue
                rows_by_file[key] = row
                cases.append((key, paths, row))
            if dup:
                raise DataFormatError(f"{csvp}: {len(dup)} duplicate row(s) for the same image (lines {', '.join(map(str, dup[:10]))}). "
                                      "Keep one row per image.")
            if missing_lines:
                if c.missing_image == "error":
                    raise DataFormatError(f"{csvp}: {len(missing_lines)} row(s) name images that are not in {root} "
                                          f"(lines {', '.join(map(str, missing_lines[:10]))}{' …' if len(missing_lines) > 10 else ''}). "
                                          "Fix the file names (relative to `path`), or set missing_image: skip.")
                skipped_rows = len(missing_lines)
            used = {p.resolve() for _, ps, _ in cases for p in ps.values()}
            unlabeled = [f for f in files if f.resolve() not in used]
        else:
            cases = [(str(f.resolve()), {"image": f}, None) for f in files]
            unlabeled = []
        if unlabeled and c.unlabeled == "error":
            raise DataFormatError(f"{root}: {len(unlabeled)} image(s) have no row in {csvp} (e.g. {unlabeled[0].relative_to(root)}). "
                                  "Add rows for them, or set unlabeled: keep (no labels) / quarantine.")
        if unlabeled and c.unlabeled == "keep":
            cases += [(str(f.resolve()), {"image": f}, None) for f in unlabeled]
            unlabeled = []
        out_dir = ctx.step_dir / "images"
        recs: list[Record] = []
        bad: list[str] = []
        stats: Counter[str] = Counter()
        with ctx.progress(len(cases) + len(unlabeled), "image_folder", unit="images") as bar:
            for f in unlabeled:
                rid = "img-" + hashlib.sha256(f.relative_to(root).as_posix().encode()).hexdigest()[:16]
                ctx.quarantine(Record(id=rid, kind="image", meta={"source_file": f.relative_to(root).as_posix()}), "no_label_row")
                bar.advance(1)
            for key, paths, row in cases:
                first = next(iter(paths.values()))
                rel0 = first.relative_to(root).as_posix()
                rid = "img-" + hashlib.sha256("|".join(p.relative_to(root).as_posix() for p in paths.values()).encode()).hexdigest()[:16]
                mods: dict[str, str] = {}
                meta: dict[str, Any] = {"source_file": rel0}
                try:
                    for m, p in paths.items():
                        img, info = read_image(p, normalize=c.normalize, color="convert" if c.color == "convert" else "error", frame=c.frame)
                        arr, sp = preprocess(img, c.size, c.fit, info.spacing_mm)
                        stats[f"format:{info.format}"] += 1
                        stats[f"intensity:{info.intensity}"] += 1
                        if info.bits:
                            stats[f"bits:{info.bits}"] += 1
                        if info.inverted:
                            stats["monochrome1_inverted"] += 1
                        if info.color:
                            stats["color_converted"] += 1
                        if (info.shape[0], info.shape[1]) != (c.size, c.size):
                            stats["resized"] += 1
                        name = f"{rid}.png" if m == next(iter(paths)) else f"{rid}_{m}.png"
                        mods[m] = _rel(ctx, save_png16(out_dir / name, arr))
                        if m == next(iter(paths)):
                            meta["pixel_spacing_mm"] = [round(sp[0], 5), round(sp[1], 5)] if sp else None
                            meta["source_sha256"] = file_sha256(p)
                except DataFormatError as e:  # ImageReadError carries a typed reason; any other read failure is unreadable_file
                    msg = str(e)
                    reason = e.reason if isinstance(e, ImageReadError) else "unreadable_file"
                    if reason == "color_image" and c.color == "quarantine":
                        ctx.quarantine(Record(id=rid, kind="image", meta={"source_file": rel0}), reason)
                        stats["quarantined:" + reason] += 1
                    elif c.on_bad_file == "quarantine" and reason != "color_image":
                        ctx.quarantine(Record(id=rid, kind="image", meta={"source_file": rel0}), reason)
                        stats["quarantined:" + reason] += 1
                    else:
                        bad.append(msg)
                    bar.advance(1)
                    continue
                labels: list[str] = []
                text = None
                split = None
                if row is not None:
                    labels, text, split = row.labels, row.text, row.split
                elif c.labels_from == "folder":
                    parent = first.parent.relative_to(root).as_posix()
                    labels = [] if parent in (".", "") or parent.lower() in ("normal", "no_finding", "no finding") else [parent.split("/")[0]]
                elif c.labels_from == "dicom_tags" and is_dicom(first):
                    labels = dicom_tag_labels(first, c.label_tags)
                meta["split"] = split if split in ("train", "validation", "test") else _split_of(rid, c.splits.validation, c.splits.test)
                if len(mods) > 1 or c.modality_columns:
                    meta["modalities"] = mods
                recs.append(Record(id=rid, kind="image", image_path=next(iter(mods.values())), labels=labels, text=text, meta=meta,
                                   provenance=Provenance(step=ctx.step_name, generator="image_folder", params={"size": c.size, "fit": c.fit})))
                bar.advance(1)
        if bad:
            shown = "\n".join("  - " + b for b in bad[:20])
            raise DataFormatError(f"{len(bad)} image file(s) could not be used:\n{shown}{chr(10) + '  …' if len(bad) > 20 else ''}\n"
                                  "Fix or remove them, or set on_bad_file: quarantine (colour images: color: convert / quarantine).")
        if not recs:
            raise DataFormatError(f"{root}: every image was quarantined or skipped; nothing to work with (see the run's quarantine/).")
        ctx.add_figure("images", len(recs), f"images read from the folder, preprocessed to {c.size}×{c.size} ({c.fit}, {c.normalize} intensity)")
        ctx.add_figure("files_found", len(files), "image files found under the folder")
        if skipped_rows:
            ctx.add_figure("csv_rows_without_image", skipped_rows, "labels CSV rows naming files that do not exist (missing_image: skip)")
        if unlabeled:
            ctx.add_figure("images_without_label_row", len(unlabeled), "quarantined: images with no row in the labels CSV")
        ctx.add_section("ingest_stats", dict(sorted(stats.items())))
        ctx.add_section("label_counts", dict(sorted(Counter(lab for r in recs for lab in r.labels).items())))
        ctx.add_figure("splits", dict(Counter(r.meta["split"] for r in recs)), "CSV split column if given, else hashed split of the record ids")
        if len(recs) == 1:
            ctx.add_figure("warning", "one image", "a single image can be converted but not used to train a model (ldm_train needs min_images)")
        ctx.write_output(recs)


class MNI152Config(StepConfig):
    type: Literal["mni152"] = "mni152"
    size: int = Field(64, ge=16, le=512)
    axis: Literal["axial", "coronal", "sagittal"] = "axial"
    range: tuple[float, float] = Field((0.2, 0.85), description="share of the volume along the axis that is sliced (skips empty slices)")
    every: int = Field(1, ge=1, description="take every n-th slice")
    block: int = Field(8, ge=1, description="contiguous slices per split block (neighbouring slices are near-duplicates; splits are by block)")
    splits: _Splits = Field(default_factory=lambda: _Splits(validation=0.15, test=0.2))


@register_step
class MNI152Step(_StepFolderKey, Step[MNI152Config]):
    """Real paired multi-contrast slices: T1, grey-matter and white-matter maps of the MNI152 2009 template
    (nilearn's bundled copy, offline). One template brain: a demo of imputation mechanics on real contrasts, not
    evidence of generalisation across patients."""

    Config = MNI152Config

    def run(self, ctx: StepContext) -> None:
        from ..imaging.io import save_png16
        from ..imaging.mni import mni152_slices

        c = self.config
        sl = mni152_slices(size=c.size, axis=c.axis, lo=c.range[0], hi=c.range[1], every=c.every)
        out_dir = ctx.step_dir / "images"
        recs = []
        nblocks = 0
        for k, (z, imgs) in enumerate(sl):
            rid = f"mni152-{c.axis}-{z:03d}"
            b = k // c.block
            nblocks = max(nblocks, b + 1)
            mods = {m: _rel(ctx, save_png16(out_dir / f"{rid}_{m}.png", a)) for m, a in imgs.items()}
            recs.append(Record(id=rid, kind="image", image_path=mods["t1"], labels=[],
                               meta={"split": _split_of(f"{c.axis}-block-{b}", c.splits.validation, c.splits.test), "demo": "mni152",
                                     "modalities": mods, "slice": int(z), "axis": c.axis, "block": b},
                               provenance=Provenance(step=ctx.step_name, generator="mni152", params={"axis": c.axis, "slice": int(z)})))
        ctx.add_figure("images", len(recs), f"{c.axis} slices of the MNI152 2009 template (T1, GM, WM) at {c.size}×{c.size}, from nilearn's bundled files")
        ctx.add_figure("splits", dict(Counter(r.meta["split"] for r in recs)), f"hashed split of blocks of {c.block} contiguous slices ({nblocks} blocks)")
        ctx.write_output(recs)


# ------------------------------------------------------------------------------------------------------------------
# models


class _ModelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: Literal["cpu", "cpu_long", "tiny", "gpu"] = Field("cpu", description="network sizes and step counts (cpu: 64 px, the generator trains in ≈ 15 min (896 s measured) on 2 CPU threads; cpu_long: the earlier wider configuration, ≈ 41 min; tiny: tests; gpu: 128 px)")
    size: int | None = Field(None, ge=8, le=1024, description="image size (default: the preset's)")
    vae: dict[str, Any] = Field(default_factory=dict, description="overrides of the preset's VAE settings (see imaging/models.py VAEConfig)")
    unet: dict[str, Any] = Field(default_factory=dict, description="overrides of the preset's UNet settings (UNetConfig)")
    max_minutes: float | None = Field(None, gt=0, description="wall-clock budget for training (stops early and says so)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field("auto", description="on CUDA only (through accelerate)")
    threads: int | None = Field(None, ge=1, description="CPU threads (torch.set_num_threads); default: torch's")

    def ldm_config(self) -> Any:
        from ..imaging.pipelines import LDMConfig

        return LDMConfig.from_preset(self.preset, self.size, self.vae, self.unet)

    @model_validator(mode="after")
    def _valid(self) -> _ModelOptions:
        from pydantic import ValidationError

        from ..imaging.models import UNetConfig, VAEConfig, preset

        p = preset(self.preset)
        built: dict[str, Any] = {}
        problems = []
        for part, cls, over in (("vae", VAEConfig, self.vae), ("unet", UNetConfig, self.unet)):
            try:
                built[part] = cls(**{**p[part], **over})
            except ValidationError as e:
                for er in e.errors():
                    loc = ".".join(str(x) for x in er["loc"])
                    allowed = ", ".join(sorted(cls.model_fields))
                    msg = er["msg"].removeprefix("Value error, ")
                    problems.append(f"{part}{'.' + loc if loc else ''}: {msg}" + (f" (allowed keys: {allowed})" if er["type"] == "extra_forbidden" else ""))
        if problems:
            raise ValueError("; ".join(problems))
        size = self.size or p["size"]
        ds = 2 ** (len(built["vae"].block_out_channels) - 1)
        if size % (ds * 2 ** (len(built["unet"].block_out_channels) - 1)):
            raise ValueError(f"size {size} must be divisible by the VAE downsampling × UNet downsampling")
        return self


class VAEEvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    real: str = Field(description="dataset of held-out real images (never trained on)")


class LDMTrainConfig(StepConfig, _ModelOptions):
    type: Literal["ldm_train"] = "ldm_train"
    modality: str | None = Field(None, description="which image of each record to model (a meta.modalities name; default image_path)")
    labels: list[str] | None = Field(None, description="finding labels to condition on (default: every label in the training set)")
    min_label_count: int = Field(5, ge=1, description="labels with fewer training images are not conditioned on (reported)")
    report_conditioning: bool = Field(False, description="also condition on MiniLM embeddings of record.text (cross-attention)")
    min_images: int = Field(16, ge=2, description="refuse to train on fewer images (a diffusion model of a handful of images memorizes them)")
    eval: VAEEvalOptions | None = Field(None, description="held-out real images: VAE reconstruction SSIM is reported on them")

    _eval = field_validator("eval", mode="before")(eval_object)


@register_step
class LDMTrainStep(_StepFolderKey, Step[LDMTrainConfig]):
    """Train the VAE and the label-conditioned UNet on the input image records; the bundle goes to ``model/``."""

    Config = LDMTrainConfig
    version = "1"

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c = self.config
        cfg = c.ldm_config()
        n = next(iter(input_sizes.values()), None)
        return StepPlan(records_in=n, records_out=n, notes=[f"VAE {cfg.vae.steps} steps + UNet {cfg.unet.steps} steps at {cfg.size}px"
                                                             + (f", at most {c.max_minutes} min" if c.max_minutes else "")])

    def run(self, ctx: StepContext) -> None:
        import numpy as np

        from ..imaging.pipelines import LDMGenerator
        from ..imaging.train import Runtime

        c = self.config
        recs = [r for r in ctx.input() if r.kind == "image"]
        if len(recs) < c.min_images:
            raise DataFormatError(f"step '{ctx.step_name}': {len(recs)} image record(s) to train on; at least {c.min_images} are needed "
                                  "(min_images). Add images, or lower min_images knowing a model of a few images memorizes them.")
        cfg = c.ldm_config()
        X = record_images(ctx, recs, cfg.size, c.modality)
        counts = Counter(lab for r in recs for lab in r.labels)
        labels = c.labels if c.labels is not None else sorted(counts)
        dropped = [lab for lab in labels if counts.get(lab, 0) < c.min_label_count]
        labels = [lab for lab in labels if lab not in dropped]
        if dropped:
            ctx.add_figure("labels_not_conditioned", dropped, f"labels with fewer than {c.min_label_count} training images")
        rep = None
        if c.report_conditioning:
            from ..data.embed import embed_texts

            if not any(r.text for r in recs):
                raise DataFormatError("report_conditioning needs report texts in record.text (image_folder report_column, or phantom reports: true)")
            rep = embed_texts([r.text or "" for r in recs])
        rt = Runtime(c.device, c.mixed_precision, c.threads)
        total = cfg.vae.steps + cfg.unet.steps
        with ctx.progress(total, "ldm_train", unit="steps") as bar:
            gen = LDMGenerator.fit(X, [[lab for lab in r.labels if lab in labels] for r in recs], config=cfg, labels=labels,
                                   report_embeddings=rep, seed=int(ctx.seed), runtime=rt, progress=lambda _k, n: bar.advance(n),
                                   max_seconds=c.max_minutes * 60 if c.max_minutes else None)
        model_dir = ctx.step_dir / "model"
        gen.meta["modality"] = c.modality
        gen.meta["trained_on"] = {"dataset": ctx.input_names[0], "records": len(recs), "demo": bool(all(r.meta.get("demo") for r in recs))}
        sha = gen.save(model_dir)
        ctx.add_model(f"{ctx.step_name}/ldm", sha)
        ctx.add_artifact(model_dir / "medsynth_ldm.json")
        tr = gen.meta["training"]
        for part in ("vae", "unet"):
            t = tr[part]
            ctx.add_figure(f"{part}.steps", t["steps"], f"optimizer steps of batch {getattr(cfg, part).batch_size}" + (" (stopped at the time budget)" if t["stopped_early"] else ""))
            ctx.add_figure(f"{part}.images_per_second", t["images_per_second"], f"training throughput on {t['device']} ({'crops, ' if part == 'vae' and cfg.vae.crop else ''}wall clock; shared machines vary)")
            ctx.add_figure(f"{part}.seconds", t["seconds"], f"wall-clock training time ({t['cpu_seconds']} CPU-seconds)")
        ctx.add_section("loss_curves", {"plot": {"kind": "lines", "title": "Training loss (EMA)", "xlabel": "step", "ylabel": "loss",
                                                 "series": {k: {"x": [p[0] for p in tr[k]["loss_curve"]], "y": [p[1] for p in tr[k]["loss_curve"]]}
                                                            for k in ("vae", "unet")}},
                                        "caption": "VAE: L1 + KL; UNet: Min-SNR-weighted denoising loss."})
        if c.eval:
            from ..imaging.metrics import ssim

            ev = [r for r in ctx.dataset(c.eval.real) if r.kind == "image"]
            if ev:
                E = record_images(ctx, ev, cfg.size, c.modality)
                s = ssim(gen.reconstruct(E), E)
                ctx.add_figure("vae.reconstruction_ssim", round(float(np.mean(s)), 4), f"mean MONAI SSIM of VAE round trips of {len(ev)} held-out images ({c.eval.real})")
        out = []
        rel = _rel(ctx, model_dir)
        for r in recs:
            rr = r.model_copy(deep=True)
            rr.meta["ldm"] = {"step": ctx.step_name, "model_dir": rel, "model_sha256": sha}
            out.append(rr)
        ctx.write_output(out)


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    real: str = Field(description="dataset of held-out real images (never trained on): classifier accuracy and FD reference")
    classifier_steps: int = Field(400, ge=10, description="training steps of the finding classifier (trained on the generator's training images)")
    validation: str | None = Field(None, description="dataset used to calibrate the classifier's thresholds (default: none, 0.5)")


class LDMSampleConfig(StepConfig):
    type: Literal["ldm_sample"] = "ldm_sample"
    model: str | None = Field(None, description="ldm_train step name in this recipe, or a bundle folder (default: the step that trained the input records)")
    n: int = Field(200, ge=1, le=1_000_000, description="images to generate")
    conditions: Literal["prior", "balanced"] | list[list[str]] = Field(
        "prior", description="prior: label sets drawn from the training records; balanced: each label alone and no finding, in turn; or a list of label sets cycled")
    sampler: dict[str, Any] = Field(default_factory=dict, description="scheduler (ddim/dpm/ddpm), steps, guidance_scale, eta, batch_size")
    reports_from: str | None = Field(None, description="dataset whose record.text conditions the images (report-conditioned models), cycled")
    formats: list[Literal["png", "dicom"]] = Field(default_factory=lambda: ["png"], description="png (image_path) and/or synthetic DICOM (meta.dicom_path)")
    eval: EvalOptions | None = Field(None, description="classifier accuracy on requested findings, FD vs real held-out images, diversity")

    _eval = field_validator("eval", mode="before")(eval_object)

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..imaging.models import SamplerConfig

        SamplerConfig(**v)
        return v


@register_step
class LDMSampleStep(_StepFolderKey, Step[LDMSampleConfig]):
    """Generate labelled synthetic radiographs (batched, resumable), marked synthetic, optionally evaluated."""

    Config = LDMSampleConfig

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        if c.model and c.model not in recipe.names:
            p = recipe.resolve_path(c.model)
            if not (p / "medsynth_ldm.json").exists():
                return [("model", f"'{c.model}' is neither a step of this recipe nor a model bundle folder (with medsynth_ldm.json)")]
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        return StepPlan(records_in=next(iter(input_sizes.values()), None), records_out=self.config.n)

    def cache_key_extra(self) -> dict[str, Any]:
        out = super().cache_key_extra()
        c = self.config
        if c.model and self.recipe is not None and c.model not in self.recipe.names:
            mf = self.recipe.resolve_path(c.model) / "medsynth_ldm.json"
            if mf.exists():
                out["model_sha256"] = json.loads(mf.read_text(encoding="utf-8")).get("sha256")
        return out

    def _model_dir(self, ctx: StepContext, recs: list[Record]) -> Path:
        c = self.config
        if c.model:
            if ctx.recipe is not None and c.model in ctx.recipe.names:
                d = _find_step_dir(ctx, c.model)
                if d is None:
                    raise RecipeError(f"step '{c.model}' has not written a model yet")
                return d / "model"
            return ctx.recipe.resolve_path(c.model) if ctx.recipe else Path(c.model)
        for r in recs:
            if "ldm" in r.meta:
                return Path(ctx.run_dir) / r.meta["ldm"]["model_dir"]
        raise RecipeError(f"step '{ctx.step_name}': no model. Set `model:` to the ldm_train step (or a bundle folder), or read the ldm_train step's output.")

    def run(self, ctx: StepContext) -> None:
        import random

        import numpy as np

        from ..imaging.io import save_png16, write_synthetic_dicom
        from ..imaging.models import SamplerConfig
        from ..imaging.pipelines import LDMGenerator

        c = self.config
        recs = ctx.input() if ctx.input_names else []
        gen = LDMGenerator.load(self._model_dir(ctx, recs))
        s = SamplerConfig(**c.sampler)
        rng = random.Random(int(ctx.seed))
        if isinstance(c.conditions, list):
            conds = [list(c.conditions[i % len(c.conditions)]) for i in range(c.n)]
        elif c.conditions == "balanced":
            cycle = [[lab] for lab in gen.labels] + [[]]
            conds = [cycle[i % len(cycle)] for i in range(c.n)]
        else:
            pool = [[lab for lab in r.labels if lab in gen.labels] for r in recs if r.kind == "image"]
            if not pool:
                raise DataFormatError(f"step '{ctx.step_name}': conditions: prior needs the training records as input; or use balanced / a list")
            conds = [sorted(rng.choice(pool)) for _ in range(c.n)]
        rep_all = None
        if gen.uses_reports:
            if not c.reports_from:
                raise RecipeError(f"step '{ctx.step_name}': the model is report-conditioned; set reports_from: to a dataset with report texts")
            from ..data.embed import embed_texts

            texts = [r.text for r in ctx.dataset(c.reports_from) if r.text]
            if not texts:
                raise DataFormatError(f"dataset '{c.reports_from}' has no report texts")
            rep_all = embed_texts([texts[i % len(texts)] for i in range(c.n)])
        out_dir = ctx.step_dir / "images"
        bs = s.batch_size
        nb = (c.n + bs - 1) // bs
        sha = gen.sha256
        series_uid = None
        if "dicom" in c.formats:
            from pydicom.uid import generate_uid

            series_uid = generate_uid(prefix=None)
        with ctx.progress(c.n, "ldm_sample", unit="images", completed=min(c.n, ctx.n_committed() * bs)) as bar:
            for b in ctx.pending_batches(nb):
                lo, hi = b * bs, min(c.n, (b + 1) * bs)
                imgs = gen.generate(conds[lo:hi], sampler=s, seed=int(ctx.seed), start_index=lo,
                                    report_embeddings=rep_all[lo:hi] if rep_all is not None else None)
                batch = []
                for j, img in zip(range(lo, hi), imgs, strict=True):
                    rid = f"{ctx.step_name}-{j:06d}"
                    meta: dict[str, Any] = {"synthetic": True, "requested_labels": conds[j]}
                    if "dicom" in c.formats:
                        dp = write_synthetic_dicom(out_dir / f"{rid}.dcm", img, description=f"latent diffusion sample {j}", labels=conds[j],
                                                   generator="medsynth ldm_sample", model_sha256=sha, series_uid=series_uid, instance_number=j + 1,
                                                   synthetic_id=rid)
                        meta["dicom_path"] = _rel(ctx, dp)
                    path = _rel(ctx, save_png16(out_dir / f"{rid}.png", img))
                    batch.append(Record(id=rid, kind="image", image_path=path, labels=conds[j], meta=meta,
                                        provenance=Provenance(step=ctx.step_name, generator="ldm", model_sha256=sha,
                                                              params={"scheduler": s.scheduler, "steps": s.steps, "guidance_scale": s.guidance_scale,
                                                                      "seed": int(ctx.seed), "index": j})))
                ctx.commit_batch(b, batch)
                bar.advance(len(batch))
        out = ctx.committed()
        out.sort(key=lambda r: r.id)
        ctx.add_figure("images", len(out), f"synthetic images ({s.scheduler}, {s.steps} steps, guidance {s.guidance_scale}); model sha256 {str(sha)[:16]}")
        ctx.add_section("requested_labels", dict(sorted(Counter(lab for r in out for lab in r.labels).items())))
        if c.eval is not None:
            self._evaluate(ctx, c, gen, recs, out)
        _ = np
        ctx.write_output(out)

    def _evaluate(self, ctx: StepContext, c: LDMSampleConfig, gen: Any, train: list[Record], out: list[Record]) -> None:
        import numpy as np

        from ..imaging.metrics import (
            calibrate_thresholds,
            condition_accuracy,
            feature_distance,
            fit_feature_net,
            pairwise_diversity,
        )

        assert c.eval is not None
        size = gen.size
        modality = gen.meta.get("modality")
        train = [r for r in train if r.kind == "image"]
        real = [r for r in ctx.dataset(c.eval.real) if r.kind == "image"]
        if not train or not real:
            raise DataFormatError("eval needs the training records as this step's input and a non-empty eval.real dataset")
        Xtr = record_images(ctx, train, size, modality)
        Xre = record_images(ctx, real, size, modality)
        Xg = record_images(ctx, out, size)
        net = fit_feature_net(Xtr, [[lab for lab in r.labels if lab in gen.labels] for r in train], gen.labels, steps=c.eval.classifier_steps,
                              seed=int(ctx.seed))
        if c.eval.validation:
            val = [r for r in ctx.dataset(c.eval.validation) if r.kind == "image"]
            calibrate_thresholds(net, record_images(ctx, val, size, modality), [r.labels for r in val])
        acc_g = condition_accuracy(net, Xg, [r.labels for r in out])
        acc_r = condition_accuracy(net, Xre, [[lab for lab in r.labels if lab in gen.labels] for r in real])
        how = (f"classifier trained on the {len(train)} real training images ({c.eval.classifier_steps} steps"
               + (f", thresholds calibrated on {c.eval.validation}" if c.eval.validation else ", threshold 0.5") + ")")
        ctx.add_figure("eval.recognised_generated", round(acc_g["recognised"], 4) if acc_g["recognised"] is not None else None,
                       f"share of requested findings the {how} detects in the {len(out)} generated images")
        ctx.add_figure("eval.recognised_real", round(acc_r["recognised"], 4) if acc_r["recognised"] is not None else None,
                       f"the same classifier on the {len(real)} held-out real images ({c.eval.real}; true labels)")
        ctx.add_figure("eval.exact_generated", round(acc_g["exact"], 4), "share of generated images whose predicted finding set equals the requested set")
        ctx.add_figure("eval.exact_real", round(acc_r["exact"], 4), "the same on held-out real images")
        n = min(len(Xg), len(Xre))
        rng = np.random.default_rng(int(ctx.seed))
        gi, ri = rng.choice(len(Xg), n, replace=False), rng.choice(len(Xre), n, replace=False)
        ctx.add_figure("eval.fd_generated_vs_real", round(feature_distance(net, Xg[gi], Xre[ri]), 4),
                       f"Fréchet distance of the in-project classifier's features, {n} generated vs {n} held-out real images")
        if len(Xtr) >= n:
            ti = rng.choice(len(Xtr), n, replace=False)
            ctx.add_figure("eval.fd_train_vs_real", round(feature_distance(net, Xtr[ti], Xre[ri]), 4),
                           f"the same between {n} real training and {n} held-out real images (the floor for a perfect generator)")
        ctx.add_figure("eval.diversity_generated", round(pairwise_diversity(Xg, seed=int(ctx.seed)), 4), "mean 1 − SSIM over random pairs of generated images")
        ctx.add_figure("eval.diversity_real", round(pairwise_diversity(Xre, seed=int(ctx.seed)), 4), "the same over held-out real images")
        groups = {lab: {"generated": (acc_g["per_label"][lab]["recognised"] or 0.0), "real": (acc_r["per_label"][lab]["recognised"] or 0.0)}
                  for lab in gen.labels}
        ctx.add_section("eval_per_label", {"plot": {"kind": "bars", "title": "Requested finding recognised (sensitivity)", "groups": groups},
                                           "caption": f"Per finding: {how}; generated images vs held-out real images."})


class ImputeEvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    real: str = Field(description="dataset of held-out real pairs (the target is hidden from the model)")
    baselines: list[Literal["copy", "mean", "unet"]] = Field(default_factory=lambda: ["copy", "mean", "unet"],
                                                             description="copy the (first) input; mean training target; supervised U-Net regression (MONAI)")
    unet_steps: int | None = Field(None, ge=1, description="U-Net regression steps (default: the diffusion UNet's step count)")
    feature_steps: int = Field(400, ge=10, description="training steps of the feature network for FD (trained on real target images)")


class ModalityImputeConfig(StepConfig, _ModelOptions):
    type: Literal["modality_impute"] = "modality_impute"
    source: str | list[str] = Field(description="available modality(ies) (meta.modalities names)")
    target: str = Field(description="modality to fill in")
    n_samples: int = Field(4, ge=1, le=64, description="samples per case (their spread is the uncertainty)")
    sampler: dict[str, Any] = Field(default_factory=lambda: {"guidance_scale": 1.0})
    apply: str | None = Field(None, description="dataset whose records get the imputed modality (default: the eval dataset)")
    eval: ImputeEvalOptions | None = Field(None, description="held-out real pairs: SSIM/PSNR/MAE/FD vs baselines")
    model: str | None = Field(None, description="an imputer bundle folder to use instead of training one")
    min_pairs: int = Field(16, ge=2)
    mode: Literal["residual", "palette"] = Field("residual", description=(
        "residual: a regression U-Net predicts the conditional mean and the LDM samples the residual around it "
        "(predict-and-refine / CorrDiff); palette: the LDM samples the target latent from the source latents alone"))
    mean_model: dict[str, Any] = Field(default_factory=dict, description="residual mode: settings of the regression mean "
                                       "(steps, batch_size, lr, channels, folds, residual_quantile; see imaging/pipelines.py MeanModelConfig); "
                                       "steps default to the diffusion UNet's")

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..imaging.models import SamplerConfig

        SamplerConfig(**v)
        return v

    @field_validator("mean_model")
    @classmethod
    def _mean_model(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..imaging.pipelines import MeanModelConfig

        MeanModelConfig(**v)
        return v

    def mean_model_config(self) -> Any:
        """The residual mode's :class:`MeanModelConfig` (``None`` in palette mode)."""
        from ..imaging.pipelines import MeanModelConfig

        if self.mode != "residual":
            return None
        return MeanModelConfig(**{"steps": self.ldm_config().unet.steps, **self.mean_model})

    @model_validator(mode="before")
    @classmethod
    def _eval_options(cls, data: Any) -> Any:
        """``eval: name`` is ``eval: {real: name}``; the old ``eval_options:`` is merged into ``eval:`` (deprecated)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        ev = eval_object(data.get("eval"))
        if "eval_options" in data:
            import warnings

            warnings.warn("modality_impute: `eval_options:` is deprecated and will be removed in the next release; put its keys "
                          "under `eval:` (e.g. `eval: {real: held_out, unet_steps: 4}`)", FutureWarning, stacklevel=2)
            opts = data.pop("eval_options")
            if isinstance(ev, dict) and isinstance(opts, dict):
                ev = {**opts, **ev}
        if ev is not None:
            data["eval"] = ev
        return data

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


@register_step
class ModalityImputeStep(_StepFolderKey, Step[ModalityImputeConfig]):
    """Train a conditional LDM on paired records (input) and impute the missing modality, with several samples
    per case, their mean and per-pixel spread; evaluate against baselines on held-out pairs. ``mode: residual``
    (default) samples the residual around a regression mean; ``mode: palette`` samples the target latent directly."""

    Config = ModalityImputeConfig

    def extra_outputs(self) -> list[str]:
        return []

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        probs = []
        if c.target in c.sources:
            probs.append(("target", "the target modality cannot also be a source"))
        if c.model and not (recipe.resolve_path(c.model) / "medsynth_ldm.json").exists():
            probs.append(("model", f"no imputer bundle at {c.model}"))
        if c.apply is None and c.eval is None:
            probs.append(("apply", "set apply: (records to impute) and/or eval: (held-out pairs)"))
        return probs

    def run(self, ctx: StepContext) -> None:
        import numpy as np

        from ..imaging.io import save_png16
        from ..imaging.models import SamplerConfig
        from ..imaging.pipelines import ModalityImputer
        from ..imaging.train import Runtime

        c = self.config
        cfg = c.ldm_config()
        train = [r for r in ctx.input() if r.kind == "image" and all(modality_path(r, m) for m in [*c.sources, c.target])]
        s = SamplerConfig(**c.sampler)
        rt = Runtime(c.device, c.mixed_precision, c.threads)
        model_dir = ctx.step_dir / "model"
        if c.model:
            imp = ModalityImputer.load(ctx.recipe.resolve_path(c.model) if ctx.recipe else c.model)
            if imp.target != c.target or imp.sources != c.sources:
                raise RecipeError(f"the bundle imputes {imp.target} from {imp.sources}, not {c.target} from {c.sources}")
            if imp.mode != c.mode:
                raise RecipeError(f"the bundle at {c.model} is a {imp.mode}-mode imputer; set mode: {imp.mode} (or train a new one)")
        else:
            if len(train) < c.min_pairs:
                raise DataFormatError(f"step '{ctx.step_name}': {len(train)} training record(s) have both {c.sources} and {c.target}; "
                                      f"at least {c.min_pairs} pairs are needed (min_pairs).")
            Xs = {m: record_images(ctx, train, cfg.size, m) for m in c.sources}
            Xt = record_images(ctx, train, cfg.size, c.target)
            mm = c.mean_model_config()
            mean_steps = mm.steps * (1 + mm.effective_folds(len(train))) if mm else 0
            with ctx.progress(cfg.vae.steps + cfg.unet.steps + mean_steps, "modality_impute (train)", unit="steps") as bar:
                imp = ModalityImputer.fit(Xs, Xt, config=cfg, target_name=c.target, seed=int(ctx.seed), runtime=rt,
                                          progress=lambda _k, n: bar.advance(n), max_seconds=c.max_minutes * 60 if c.max_minutes else None,
                                          mean_model=mm)
            sha = imp.save(model_dir)
            ctx.add_model(f"{ctx.step_name}/imputer", sha)
            ctx.add_artifact(model_dir / "medsynth_ldm.json")
            for part in ("vae", "unet"):
                t = imp.meta["training"][part]
                ctx.add_figure(f"{part}.images_per_second", t["images_per_second"], f"training throughput, {t['steps']} steps on {t['device']} (wall clock; {t['cpu_seconds']} CPU-s)")
            if imp.mode == "residual":
                m = imp.meta["mean_model"]
                ctx.add_figure("mean_model.train_residual_mae", m["train_residual_mae"],
                               f"mean |target − regression mean| over the training pairs, {'out-of-fold (' + str(m['training']['folds']) + ' folds)' if m['training']['folds'] else 'in-sample'}: the residual the LDM models")
        if c.eval:
            self._evaluate(ctx, c, imp, train, s, rt)
        target_name = c.apply or (c.eval.real if c.eval else None)  # check() requires one of them
        target_set = list(ctx.dataset(target_name)) if target_name else []
        todo = [r for r in target_set if r.kind == "image" and all(modality_path(r, m) for m in c.sources)]
        skipped = [r for r in target_set if r not in todo]
        for r in skipped:
            ctx.quarantine(r, "missing_source_modality")
        out_dir = ctx.step_dir / "imputed"
        bs = max(1, s.batch_size // c.n_samples)
        nb = (len(todo) + bs - 1) // bs
        with ctx.progress(len(todo), "modality_impute", unit="cases", completed=min(len(todo), ctx.n_committed() * bs)) as bar:
            for b in ctx.pending_batches(nb):
                part = todo[b * bs:(b + 1) * bs]
                src = {m: record_images(ctx, part, imp.size, m) for m in c.sources}
                smp = imp.impute(src, n_samples=c.n_samples, sampler=s, seed=int(ctx.seed), start_index=b * bs)
                batch = []
                for r, sm in zip(part, smp, strict=True):
                    rr = r.model_copy(deep=True)
                    base = out_dir / r.id
                    mean_p = _rel(ctx, save_png16(Path(f"{base}_{c.target}_mean.png"), sm.mean(0)))
                    std = sm.std(0)
                    std_p = _rel(ctx, save_png16(Path(f"{base}_{c.target}_std.png"), np.clip(std * 4, 0, 1)))
                    samples = [_rel(ctx, save_png16(Path(f"{base}_{c.target}_s{k}.png"), sm[k])) for k in range(len(sm))]
                    mods = dict(rr.meta.get("modalities") or {})
                    had = c.target in mods
                    mods[f"{c.target}_imputed"] = mean_p
                    rr.meta["modalities"] = mods
                    rr.meta["imputed"] = {c.target: {"mean": mean_p, "std_x4": std_p, "samples": samples, "model_sha256": imp.sha256,
                                                     "sources": c.sources, "target_was_present": had,
                                                     "mean_pixel_std": round(float(std.mean()), 5)}}
                    rr.provenance = Provenance(step=ctx.step_name, generator="modality_impute", model_sha256=imp.sha256, seed_record_ids=[r.id],
                                               params={"n_samples": c.n_samples, "scheduler": s.scheduler, "steps": s.steps, "mode": imp.mode})
                    batch.append(rr)
                ctx.commit_batch(b, batch)
                bar.advance(len(batch))
        out = ctx.committed()
        ctx.add_figure("imputed", len(out), f"records given an imputed '{c.target}' ({c.n_samples} samples each: mean, ×4 std map, samples in meta.imputed)")
        ctx.write_output(out)

    def _evaluate(self, ctx: StepContext, c: ModalityImputeConfig, imp: Any, train: list[Record], s: Any, rt: Any) -> None:
        import numpy as np

        from ..imaging.baselines import train_regression_unet
        from ..imaging.metrics import feature_distance, fit_feature_net, mae, psnr, ssim

        assert c.eval is not None
        ev = [r for r in ctx.dataset(c.eval.real) if r.kind == "image" and all(modality_path(r, m) for m in [*c.sources, c.target])]
        if not ev:
            raise DataFormatError(f"eval dataset '{c.eval.real}' has no records with both {c.sources} and {c.target}")
        size = imp.size
        Es = {m: record_images(ctx, ev, size, m) for m in c.sources}
        Et = record_images(ctx, ev, size, c.target)
        smp = imp.impute(Es, n_samples=c.n_samples, sampler=s, seed=int(ctx.seed) + 17)
        pred = {"ldm_mean": smp.mean(1), "ldm_sample": smp[:, 0]}
        if imp.mode == "residual":
            pred["ldm_regression_mean"] = imp.predict_mean(Es)
        Xt = record_images(ctx, train, size, c.target) if train else None
        opts = c.eval
        if "copy" in opts.baselines:
            pred["copy_input"] = Es[c.sources[0]]
        if "mean" in opts.baselines and Xt is not None:
            pred["mean_image"] = np.repeat(Xt.mean(0, keepdims=True), len(Et), axis=0)
        if "unet" in opts.baselines and train:
            Xs = {m: record_images(ctx, train, size, m) for m in c.sources}
            steps = opts.unet_steps or c.ldm_config().unet.steps
            reg, rinfo = train_regression_unet(np.stack([Xs[m] for m in c.sources], 1), Xt, steps=steps, seed=int(ctx.seed), runtime=rt)
            pred["unet_regression"] = reg.predict(np.stack([Es[m] for m in c.sources], 1))
            ctx.add_figure("baseline.unet_images_per_second", rinfo["images_per_second"], f"U-Net regression training throughput ({steps} steps)")
        rows: dict[str, dict[str, float]] = {}
        for name, P in pred.items():
            rows[name] = {"ssim": float(np.mean(ssim(P, Et))), "psnr": float(np.mean(psnr(P, Et))), "mae": float(np.mean(mae(P, Et)))}
        fnet = fit_feature_net(Xt if Xt is not None else Et, None, None, steps=opts.feature_steps, seed=int(ctx.seed), rotation=True)
        for name in ("ldm_sample", "unet_regression", "ldm_mean", "ldm_regression_mean", "mean_image", "copy_input"):
            if name in pred:
                rows[name]["fd"] = feature_distance(fnet, pred[name], Et)
        how = (f"{len(ev)} held-out pairs of '{c.eval.real}', {c.target} from {'+'.join(c.sources)}; {imp.mode}-mode imputer; MONAI SSIM/PSNR/MAE at {size}px"
               + ("; ldm_regression_mean: the imputer's own regression mean, which its samples scatter around" if imp.mode == "residual" else ""))
        for name, r in rows.items():
            for k, v in r.items():
                ctx.add_figure(f"eval.{name}.{k}", round(v, 4), how + (" (ldm_mean: mean of the samples; ldm_sample: one sample per case)" if name.startswith("ldm") else "")
                               + ("; FD: Fréchet distance of a feature network trained on real target images (rotation task)" if k == "fd" else ""))
        std = smp.std(1).mean(axis=(1, 2))
        err = np.abs(smp.mean(1) - Et).mean(axis=(1, 2))
        if len(ev) >= 3:
            from scipy.stats import spearmanr

            rho = float(spearmanr(std, err).statistic)
            ctx.add_figure("eval.uncertainty_error_spearman", round(rho, 4), "Spearman correlation between a case's mean sample spread and its mean absolute error")
        ctx.add_section("eval_table", rows)
        ctx.add_section("eval_ssim", {"plot": {"kind": "bars", "title": "Imputation quality on held-out pairs",
                                               "groups": {n: {"SSIM": r["ssim"], "1 − MAE×10": max(0.0, 1 - 10 * r["mae"])} for n, r in rows.items()}},
                                      "caption": how})
