"""Imaging source steps (heavy imports stay inside ``run()``): ``phantom`` (procedural chest radiographs with
dual-energy pairs), ``image_folder`` (DICOM / PNG / JPEG folder + labels; demo data when no ``path`` is given) and
``mni152`` (real paired T1 / grey / white-matter slices of the MNI152 template shipped with nilearn).

Image records: ``Record(kind="image", image_path=<path relative to the run directory>, labels=[...])``; paired
modalities in ``meta.modalities`` (name → path). Files live in the writing step's folder; the step folder name is
part of each such step's cache key, so cached copies always land where their paths say.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..data.records import Provenance, Record
from ..exceptions import DataFormatError
from ..recipe.step import Step, StepConfig, StepPlan, register_step

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext
from ._imaging_common import _rel, _split_of, _StepFolderKey

__all__ = ["PhantomStep", "ImageFolderStep", "MNI152Step"]

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
        from ..imaging.dicom import check_label_tags

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
        from ..imaging.dicom import dicom_tag_labels, is_dicom
        from ..imaging.images import ImageReadError, file_sha256
        from ..imaging.io import preprocess, read_image, read_labels_csv, save_png16, scan_folder

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
