"""Reading radiographs (DICOM, PNG/JPEG/TIFF folders), labels (CSV, folder names, DICOM tags), preprocessing
(MONAI transforms), a tensor cache, and writing *synthetic* DICOM.

Rules this module keeps:

* No header value is ever logged or put in an error message: errors name the file (the user's own path), the
  problem and the fix; logs carry counts and hashed ids only.
* DICOM pixel data goes through the standard display pipeline: Modality LUT / rescale → VOI LUT or window
  (LINEAR, LINEAR_EXACT, SIGMOID) → MONOCHROME1 inversion (and Presentation LUT Shape INVERSE), so every image
  ends as "brighter = more attenuation" in ``[0, 1]``.
* Synthetic DICOM files are written from scratch (Secondary Capture, new UIDs, ``ImageType`` DERIVED/SECONDARY,
  ``ConversionType`` SYN, synthetic markings in ``ImageComments``/``DerivationDescription``); nothing is copied
  from any source file.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..exceptions import DataFormatError, MissingDependencyError

#: why an image could not be read, for the ingestion step's quarantine reasons and statistics
ImageFailure = Literal["color_image", "multiframe", "unreadable_file"]


class ImageReadError(DataFormatError):
    """An image that cannot be used, with a typed ``reason`` (the message names the file and the fix)."""

    def __init__(self, message: str, reason: ImageFailure = "unreadable_file"):
        super().__init__(message)
        self.reason: ImageFailure = reason

__all__ = [
    "IMAGE_SUFFIXES", "ImageInfo", "read_image", "read_dicom", "read_raster", "preprocess", "save_png16", "load_png",
    "write_synthetic_dicom", "is_dicom", "scan_folder", "read_labels_csv", "LabelRow", "load_stack", "resolve_image_path",
    "PHI_TAG_HINTS", "dicom_tag_labels", "file_sha256",
]

log = logging.getLogger("medsynth.imaging.io")

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_RASTER = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
#: header keywords that identify people, places or times; refused as label sources
PHI_TAG_HINTS = ("Patient", "Name", "Date", "Time", "UID", "ID", "Address", "Phone", "Institution", "Physician",
                 "Operator", "Accession", "Birth", "Station", "Serial", "Comments", "Description")

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


def _need_pydicom() -> Any:
    try:
        import pydicom
    except ImportError as e:
        raise MissingDependencyError("pydicom", "imaging", "reading DICOM files") from e
    return pydicom


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_dicom(path: str | Path) -> bool:
    """True for a Part 10 file (``DICM`` at byte 128) or a ``.dcm``/``.dicom`` suffix."""
    p = Path(path)
    if p.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(p, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _window(x: np.ndarray, center: float, width: float, func: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing to [0, 1]."""
    if func == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / max(width, 1e-6)))
    if func == "LINEAR_EXACT":
        return np.clip((x - center) / max(width, 1e-6) + 0.5, 0.0, 1.0)
    w = max(width - 1.0, 1e-6)
    return np.clip((x - (center - 0.5)) / w + 0.5, 0.0, 1.0)


def _robust(a: np.ndarray, how: str, lo_q: float = 0.5, hi_q: float = 99.5) -> np.ndarray:
    a = a.astype(np.float64)
    if how == "percentile":
        lo, hi = np.percentile(a, [lo_q, hi_q])
    else:
        lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.float32)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _spacing(ds: Any) -> tuple[float, float] | None:
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        v = ds.get(kw)
        if v is not None:
            try:
                r, c = float(v[0]), float(v[1])
            except (TypeError, ValueError, IndexError):
                continue
            if r > 0 and c > 0:
                return (r, c)
    return None


def read_dicom(path: str | Path, *, normalize: Normalize = "auto", color: ColorPolicy = "error",
               frame: Literal["error", "first", "middle"] = "error") -> tuple[np.ndarray, ImageInfo]:
    """One DICOM image as float32 ``[H, W]`` in ``[0, 1]`` (display-ready) and its :class:`ImageInfo`.

    ``normalize="auto"`` applies the file's VOI LUT or first window; without one it maps the 0.5–99.5 percentile
    range. Colour images raise (``color="error"``), or are converted to luminance (``"convert"``); with
    ``"quarantine"`` a :class:`DataFormatError` is raised too and the caller quarantines the record.
    """
    pydicom = _need_pydicom()
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    try:
        ds = pydicom.dcmread(p, force=False)
    except InvalidDicomError:
        raise DataFormatError(f"{p}: not a DICOM Part 10 file (no 'DICM' preamble). Re-export it from the PACS as DICOM, "
                              "or remove it from the folder.") from None
    except Exception as e:  # noqa: BLE001 - pydicom raises many types on truncated/corrupt files; never echo content
        raise DataFormatError(f"{p}: corrupt or truncated DICOM ({type(e).__name__}). Re-export the file, or remove it "
                              "(with on_bad_file: quarantine the folder loads without it).") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DataFormatError(f"{p}: DICOM without pixel data (a report, structured report or presentation state?). "
                              "Remove it from the image folder.")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper().strip()
    nframes = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        tsn = getattr(ts, "name", "unknown transfer syntax")
        if ts is not None and not getattr(ts, "is_compressed", True):
            raise DataFormatError(f"{p}: truncated or corrupt pixel data ({tsn}; {type(e).__name__}). Re-export the file, or remove it "
                                  "(with on_bad_file: quarantine the folder loads without it).") from None
        raise DataFormatError(f"{p}: cannot decode the pixel data ({tsn}; {type(e).__name__}). For compressed DICOM install "
                              "a decoder (pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg), or re-export the file uncompressed.") from None
    info = ImageInfo(format="dicom", shape=tuple(int(s) for s in arr.shape), bits=int(ds.get("BitsStored", 0) or 0) or None,
                     photometric=photometric, frames=nframes, spacing_mm=_spacing(ds))
    is_color = int(ds.get("SamplesPerPixel", 1) or 1) > 1 or photometric in ("RGB", "PALETTE COLOR") or photometric.startswith("YBR")
    if nframes > 1:
        if frame == "error":
            raise ImageReadError(f"{p}: multi-frame DICOM ({nframes} frames). Radiograph folders hold single images; "
                                 "export single frames, or set frame: first / middle.", reason="multiframe")
        arr = arr[0] if frame == "first" else arr[nframes // 2]
        info.notes.append(f"frame {frame} of {nframes}")
    if is_color:
        info.color = True
        if color != "convert":
            raise ImageReadError(f"{p}: colour DICOM ({photometric}) in a grayscale image set (often a screenshot or a "
                                 "secondary capture with burned-in text). Remove it, or set color: convert to use its luminance.", reason="color_image")
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(arr, ds) if photometric == "PALETTE COLOR" else arr
        rgb = rgb.astype(np.float64)
        mx = float(2 ** int(ds.get("BitsStored", 8) or 8) - 1) if photometric != "PALETTE COLOR" else float(max(rgb.max(), 1))
        y = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / mx
        info.intensity = "luminance"
        info.notes.append("colour converted to luminance")
        return np.clip(y, 0, 1).astype(np.float32), info
    from pydicom.pixels import apply_modality_lut, apply_voi

    xm = apply_modality_lut(arr, ds)
    x = xm.astype(np.float64)
    out: np.ndarray | None = None
    if normalize == "auto":
        if ds.get("VOILUTSequence"):
            item = ds.VOILUTSequence[0]
            v = apply_voi(xm if xm.dtype.kind in "iu" else np.round(xm).astype(np.int64), ds, index=0).astype(np.float64)
            bits = int(item.LUTDescriptor[2]) if "LUTDescriptor" in item else 16
            top = float(2**bits - 1)
            vmax = float(np.max(v))
            if vmax > top:  # some LUTs under-declare their depth
                top = vmax
            out = np.clip(v / max(top, 1.0), 0, 1)
            info.intensity = "voi_lut"
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            wc, ww = ds.WindowCenter, ds.WindowWidth
            c = float(wc[0] if getattr(ds["WindowCenter"], "VM", 1) > 1 else wc)
            w = float(ww[0] if getattr(ds["WindowWidth"], "VM", 1) > 1 else ww)
            if w > 0:
                out = _window(x, c, w, str(ds.get("VOILUTFunction", "LINEAR")).upper().strip())
                info.intensity = "window"
        if out is None:
            out = _robust(x, "percentile")
            info.intensity = "percentile"
    elif normalize == "dtype":
        bits = int(ds.get("BitsStored", 16) or 16)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        out = np.clip((arr.astype(np.float64) - lo) / (hi - lo), 0, 1)
        info.intensity = "dtype"
    else:
        out = _robust(x, normalize)
        info.intensity = normalize
    inv = photometric == "MONOCHROME1"
    if str(ds.get("PresentationLUTShape", "")).upper().strip() == "INVERSE":
        inv = not inv
    if inv:
        out = 1.0 - out
        info.inverted = True
    return out.astype(np.float32), info


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
        out = _robust(a, how)
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
            return _robust(a, "minmax"), ImageInfo(format="npy", shape=tuple(a.shape), intensity="minmax")
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


# ------------------------------------------------------------------------------------------------------------------
# folders and labels


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


def dicom_tag_labels(path: str | Path, tags: list[str]) -> list[str]:
    """Labels from DICOM header elements (by keyword or ``gggg,eeee``), multi-valued elements split.
    Identifying elements are refused by :func:`check_label_tags` before any file is read."""
    pydicom = _need_pydicom()
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    out: list[str] = []
    for t in tags:
        key: Any = t
        if "," in t:
            g, e = t.split(",")
            key = (int(g, 16), int(e, 16))
        try:
            el = ds[key] if isinstance(key, tuple) else ds.data_element(key)
        except KeyError:
            el = None
        if el is None or el.value in (None, ""):
            continue
        vals = el.value if getattr(el, "VM", 1) > 1 else [el.value]
        for v in vals:
            for tok in str(v).replace("\\", "|").split("|"):
                if tok.strip():
                    out.append(tok.strip())
    return sorted(set(out))


def check_label_tags(tags: list[str]) -> list[str]:
    """Problems with label tags: unknown keywords, and identifying elements (names, ids, dates, UIDs…) or person-name VR."""
    probs = []
    try:
        from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
    except ImportError:
        return []
    for t in tags:
        kw = t
        if "," in t:
            try:
                g, e = t.split(",")
                kw = keyword_for_tag((int(g, 16) << 16) | int(e, 16)) or ""
            except ValueError:
                probs.append(f"'{t}' is not a keyword or a gggg,eeee tag")
                continue
            if not kw:
                continue  # private tags: the site knows what they hold
        elif tag_for_keyword(kw) is None:
            probs.append(f"'{t}' is not a DICOM keyword (e.g. BodyPartExamined, ViewPosition)")
            continue
        vr = dictionary_VR(tag_for_keyword(kw)) if tag_for_keyword(kw) is not None else ""
        if vr in ("PN", "DA", "TM", "DT", "UI") or any(h.lower() in kw.lower() for h in PHI_TAG_HINTS):
            probs.append(f"'{t}' can identify a patient or an encounter; medsynth does not turn it into labels")
    return probs


# ------------------------------------------------------------------------------------------------------------------
# tensors


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


# ------------------------------------------------------------------------------------------------------------------
# synthetic DICOM


def write_synthetic_dicom(path: str | Path, img: np.ndarray, *, description: str, labels: list[str] | None = None,
                          generator: str = "medsynth", model_sha256: str | None = None, study_uid: str | None = None,
                          series_uid: str | None = None, instance_number: int = 1, pixel_spacing_mm: tuple[float, float] | None = None,
                          synthetic_id: str | None = None) -> Path:
    """Write a ``[0, 1]`` image as a Secondary Capture DICOM that is unmistakably synthetic.

    Built from an empty dataset: new UIDs (``2.25.<uuid>``), ``ImageType`` DERIVED\\SECONDARY, ``ConversionType``
    SYN (synthetic image), ``BurnedInAnnotation`` NO, ``PatientIdentityRemoved`` YES, ``ImageComments`` and
    ``DerivationDescription`` saying it is synthetic; the patient module holds ``SYNTHETIC^IMAGE`` and a synthetic
    id. No value of any source file is read or copied.
    """
    pydicom = _need_pydicom()
    from datetime import UTC, datetime

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    from .. import __version__

    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError("write_synthetic_dicom expects a 2-D image")
    px = np.round(np.clip(a, 0, 1) * 4095).astype(np.uint16)  # 12 bits stored
    now = datetime.now(UTC)
    sop = generate_uid(prefix=None)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = f"MEDSYNTH_{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study_uid or generate_uid(prefix=None)
    ds.SeriesInstanceUID = series_uid or generate_uid(prefix=None)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ConversionType = "SYN"
    ds.Modality = "OT"
    ds.InstanceCreationDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.StudyDate = ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = int(instance_number)
    ds.PatientName = "SYNTHETIC^IMAGE"
    sid = synthetic_id or sop.rsplit(".", 1)[-1][-12:]
    ds.PatientID = f"SYN-{sid}"[:64]
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic image; no source header values"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.SecondaryCaptureDeviceManufacturer = "medsynth"
    ds.SecondaryCaptureDeviceSoftwareVersions = str(__version__)
    findings = ", ".join(labels) if labels else "no finding requested"
    ds.ImageComments = f"SYNTHETIC IMAGE - not a patient. {description}. Findings: {findings}."[:10240]
    ds.DerivationDescription = (f"Synthetic image generated by medsynth {__version__} ({generator}"
                                + (f", model sha256 {model_sha256[:16]}" if model_sha256 else "") + "); not acquired from a patient")[:1024]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(px.shape[0]), int(px.shape[1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    if pixel_spacing_mm:
        ds.PixelSpacing = [f"{pixel_spacing_mm[0]:.6g}", f"{pixel_spacing_mm[1]:.6g}"]
    ds.PixelData = px.tobytes()
    ds["PixelData"].VR = "OW"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(p, ds, enforce_file_format=True)
    return p
