"""Reading radiographs (DICOM via :mod:`.dicom`, PNG/JPEG/TIFF folders), labels (CSV, folder names), preprocessing
(MONAI transforms), 16-bit PNG, and a tensor cache.

No header value is ever logged or put in an error message: errors name the file (the user's own path), the problem
and the fix; logs carry counts and hashed ids only. DICOM reading and synthetic DICOM writing are in :mod:`.dicom`;
what readers return and raise is in :mod:`.images`.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..exceptions import DataFormatError, MissingDependencyError
from .dicom import is_dicom, read_dicom
from .images import ColorPolicy, ImageInfo, ImageReadError, Normalize, file_sha256, scale_intensity

__all__ = ["IMAGE_SUFFIXES", "read_image", "read_raster", "preprocess", "save_png16", "load_png", "scan_folder", "read_labels_csv",
           "LabelRow", "load_stack", "resolve_image_path"]

log = logging.getLogger("medsynth.imaging.io")

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}

_RASTER = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}

def read_raster(path: str | Path, *, normalize: Normalize = "auto", color: ColorPolicy = "error") -> tuple[np.ndarray, ImageInfo]:
    """A PNG/JPEG/TIFF/BMP image as float32 ``[H, W]`` in ``[0, 1]``.

    8-bit images map their dtype range; 16/32-bit images (whose used bit depth is unknown) map their 0.5–99.5
    percentile range under ``normalize="auto"``. RGB images whose channels agree (grayscale saved as RGB) are
    grayscale; true colour follows ``color``.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:
        raise MissingDependencyError("pillow", "imaging", "reading PNG/JPEG images") from e
    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            mode = im.mode
            n_frames = int(getattr(im, "n_frames", 1) or 1)
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                mode = im.mode
            a = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataFormatError(f"{p}: unreadable or truncated image ({type(e).__name__}). Re-export it, or remove it from the folder.") from None
    info = ImageInfo(format=p.suffix.lower().lstrip("."), shape=tuple(int(s) for s in a.shape), frames=n_frames)
    if a.ndim == 3:
        ch = a[..., :3].astype(np.int64) if a.shape[-1] >= 3 else a[..., :1].astype(np.int64)
        if a.shape[-1] in (2,):  # LA: gray + alpha
            a = a[..., 0]
        elif ch.shape[-1] == 3 and int(np.abs(ch - ch[..., :1]).max()) <= (3 if info.format in ("jpg", "jpeg") else 0):
            a = a[..., 0]
            info.notes.append("grayscale stored as RGB")
        else:
            info.color = True
            if color != "convert":
                raise ImageReadError(f"{p}: colour image ({mode}) in a grayscale image set. Remove it, or set "
                                     "color: convert to use its luminance.", reason="color_image")
            rgb = a[..., :3].astype(np.float64)
            a = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
            info.notes.append("colour converted to luminance")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    bits = {np.dtype("uint8"): 8, np.dtype("uint16"): 16, np.dtype(">u2"): 16, np.dtype("int32"): 32, np.dtype("int16"): 16}.get(a.dtype)
    info.bits = bits or (8 if info.color else None)
    if normalize == "dtype" or (normalize == "auto" and (bits == 8 or info.color)):
        top = 255.0 if (bits == 8 or info.color) else float(2 ** (bits or 16) - 1)
        out = np.clip(a.astype(np.float64) / top, 0, 1).astype(np.float32)
        info.intensity = "dtype"
    else:
        how = "percentile" if normalize == "auto" else normalize
        out = scale_intensity(a, how)
        info.intensity = how
    return out, info

def read_image(path: str | Path, *, normalize: Normalize = "auto", color: ColorPolicy = "error",
               frame: Literal["error", "first", "middle"] = "error") -> tuple[np.ndarray, ImageInfo]:
    """Read a DICOM or raster image (by content for extension-less DICOM files)."""
    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"{p}: image file not found. Check the folder and the labels CSV's file column.")
    if is_dicom(p):
        return read_dicom(p, normalize=normalize, color=color, frame=frame)
    if p.suffix.lower() in _RASTER or p.suffix.lower() == ".npy":
        if p.suffix.lower() == ".npy":
            a = np.load(p)
            if a.ndim != 2:
                raise DataFormatError(f"{p}: a .npy image must be 2-D (H, W); got {a.ndim} dimensions.")
            return scale_intensity(a, "minmax"), ImageInfo(format="npy", shape=tuple(a.shape), intensity="minmax")
        return read_raster(p, normalize=normalize, color=color)
    raise DataFormatError(f"{p}: unsupported image type '{p.suffix}'. Supported: DICOM, {', '.join(sorted(_RASTER))}.")

def preprocess(img: np.ndarray, size: int, fit: Literal["pad", "crop", "stretch"] = "pad",
               spacing_mm: tuple[float, float] | None = None) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Square ``size × size`` float32 image with MONAI transforms (pad/crop to square, then area-resize), and the
    pixel spacing after resizing (``None`` if unknown)."""
    from monai.transforms import CenterSpatialCrop, Resize, SpatialPad

    h, w = img.shape
    a = img[None].astype(np.float32)
    if fit == "pad":
        L = max(h, w)
        a = SpatialPad((L, L), mode="constant", value=0.0)(a)
        sy = sx = L / size
    elif fit == "crop":
        L = min(h, w)
        a = CenterSpatialCrop((L, L))(a)
        sy = sx = L / size
    else:
        sy, sx = h / size, w / size
    down = min(a.shape[1], a.shape[2]) >= size
    a = Resize((size, size), mode="area" if down else "bilinear", **({} if down else {"align_corners": False}))(a)
    out = np.asarray(a[0], dtype=np.float32)
    sp = (spacing_mm[0] * sy, spacing_mm[1] * sx) if spacing_mm else None
    return np.clip(out, 0.0, 1.0), sp

def save_png16(path: str | Path, img: np.ndarray) -> Path:
    """Save a ``[0, 1]`` float image as a 16-bit grayscale PNG (lossless to 1/65535)."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    a = np.round(np.clip(np.asarray(img, dtype=np.float64), 0, 1) * 65535).astype(np.uint16)
    Image.fromarray(a).save(p, format="PNG", optimize=False)
    return p

def load_png(path: str | Path) -> np.ndarray:
    """Load a PNG written by :func:`save_png16` (or any 8/16-bit grayscale PNG) as float32 ``[0, 1]``."""
    from PIL import Image

    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"{p}: image file not found (a record points at a file that is not in the run directory).")
    with Image.open(p) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., 0]
    top = 255.0 if a.dtype == np.uint8 else 65535.0
    return (a.astype(np.float32) / top).clip(0, 1)

def scan_folder(root: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under ``root`` (sorted; hidden files and the labels CSV skipped; extension-less DICOM detected)."""
    r = Path(root)
    if not r.is_dir():
        raise DataFormatError(f"{r}: not a folder. Set `path:` to the folder holding the images.")
    it = r.rglob("*") if recursive else r.glob("*")
    out = []
    for p in it:
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(r).parts):
            continue
        suf = p.suffix.lower()
        if suf in IMAGE_SUFFIXES or (suf == "" and is_dicom(p)):
            out.append(p)
    return sorted(out)

@dataclass
class LabelRow:
    line: int
    files: dict[str, str]  # modality -> path relative to the folder
    labels: list[str]
    text: str | None = None
    split: str | None = None

def read_labels_csv(path: str | Path, *, file_column: str | None = None, label_column: str | None = "labels",
                    label_columns: list[str] | None = None, label_separator: str = "|", uncertain_as: Literal["negative", "positive"] = "negative",
                    report_column: str | None = None, split_column: str | None = None,
                    modality_columns: dict[str, str] | None = None) -> list[LabelRow]:
    """Parse a labels CSV. Either ``label_column`` holds ``sep``-separated findings (``Nodule|Opacity``; empty or
    ``No Finding`` = none), or ``label_columns`` lists one-hot columns (1/true/yes positive; -1 "uncertain" per
    ``uncertain_as``; 0/blank negative). ``modality_columns`` maps modality names to file columns (paired images)."""
    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"{p}: labels CSV not found. Set `labels_csv:` or put labels.csv in the image folder.")
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = list(rows[0].keys()) if rows else []
    except UnicodeDecodeError:
        raise DataFormatError(f"{p}: not UTF-8 text. Save the CSV as UTF-8.") from None
    except csv.Error as e:
        raise DataFormatError(f"{p}: malformed CSV ({e.__class__.__name__}). Check quoting and delimiters.") from None
    if not rows:
        raise DataFormatError(f"{p}: the labels CSV has no data rows.")
    if modality_columns:
        fcols = dict(modality_columns)
    else:
        fc = file_column or next((c for c in ("file", "path", "filename", "image", "image_path") if c in header), None)
        if fc is None:
            raise DataFormatError(f"{p}: no file column. Columns are: {', '.join(header)}. Set `file_column:` to the column "
                                  "holding the image file names (relative to the image folder).")
        fcols = {"image": fc}
    missing_cols = [c for c in fcols.values() if c not in header]
    if label_columns:
        missing_cols += [c for c in label_columns if c not in header]
    elif label_column and label_column not in header:
        missing_cols.append(label_column)
    for c in (report_column, split_column):
        if c and c not in header:
            missing_cols.append(c)
    if missing_cols:
        raise DataFormatError(f"{p}: column(s) {', '.join(missing_cols)} not in the CSV (columns: {', '.join(header)}). "
                              "Fix the column names in the step config.")
    out: list[LabelRow] = []
    bad_values: list[int] = []
    for i, row in enumerate(rows, start=2):
        files = {m: (row.get(c) or "").strip() for m, c in fcols.items()}
        labels: list[str] = []
        if label_columns:
            for c in label_columns:
                v = (row.get(c) or "").strip().lower()
                if v in ("1", "1.0", "true", "yes", "y", "t"):
                    labels.append(c)
                elif v in ("-1", "-1.0", "uncertain", "u"):
                    if uncertain_as == "positive":
                        labels.append(c)
                elif v not in ("", "0", "0.0", "false", "no", "n", "f", "nan"):
                    bad_values.append(i)
        elif label_column:
            raw = (row.get(label_column) or "").strip()
            labels = [t.strip() for t in raw.split(label_separator) if t.strip() and t.strip().lower() not in ("no finding", "normal", "none")]
        out.append(LabelRow(line=i, files=files, labels=sorted(set(labels)), text=(row.get(report_column) or None) if report_column else None,
                            split=(row.get(split_column) or "").strip() or None if split_column else None))
    if bad_values:
        shown = ", ".join(map(str, bad_values[:10]))
        raise DataFormatError(f"{p}: {len(bad_values)} row(s) with label values that are not 1/0/-1/true/false (lines {shown}). "
                              "Fix the values; one-hot columns hold 1 (present), 0 or blank (absent), -1 (uncertain).")
    return out

def resolve_image_path(p: str | Path, run_dir: str | Path | None = None, base: str | Path | None = None) -> Path:
    """Absolute paths as they are; relative ones against the run directory (records written by medsynth steps),
    then ``base`` (e.g. the dataset file's folder), then the current directory."""
    q = Path(p)
    if q.is_absolute():
        return q
    for root in (run_dir, base):
        if root is not None and (Path(root) / q).exists():
            return Path(root) / q
    return Path(run_dir) / q if run_dir is not None and not q.exists() else q

def load_stack(paths: list[Path], size: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """Images as a float32 ``[N, size, size]`` array in ``[0, 1]`` (resized if needed), through an optional cache
    keyed by the files' sha256 (a re-run or another step reading the same files decodes nothing)."""
    key = None
    if cache_dir is not None and paths:
        h = hashlib.sha256(f"v1:{size}".encode())
        for p in paths:
            h.update(file_sha256(p).encode())
        key = Path(cache_dir) / f"{h.hexdigest()}.npy"
        if key.exists():
            try:
                a = np.load(key)
                if a.shape == (len(paths), size, size):
                    return a.astype(np.float32)
            except (OSError, ValueError):
                pass
    out = np.zeros((len(paths), size, size), dtype=np.float32)
    for i, p in enumerate(paths):
        if Path(p).suffix.lower() == ".png":
            a = load_png(p)
        else:
            a, _ = read_image(p)
        if a.shape != (size, size):
            a, _ = preprocess(a, size, "stretch")
        out[i] = a
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_name(key.name + f".{os.getpid()}.tmp.npy")
        np.save(tmp, out.astype(np.float16))
        os.replace(tmp, key)
    return out
