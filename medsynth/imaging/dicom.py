"""DICOM: reading one image through the standard display pipeline, labels from header elements (identifying
elements refused), and writing *synthetic* DICOM from scratch.

Rules this module keeps:

* No header value is ever logged or put in an error message: errors name the file (the user's own path), the
  problem and the fix.
* Pixel data goes through the standard display pipeline: Modality LUT / rescale → VOI LUT or window (LINEAR,
  LINEAR_EXACT, SIGMOID) → MONOCHROME1 inversion (and Presentation LUT Shape INVERSE), so every image ends as
  "brighter = more attenuation" in ``[0, 1]``.
* Synthetic DICOM files are written from scratch (Secondary Capture, new UIDs, ``ImageType`` DERIVED/SECONDARY,
  ``ConversionType`` SYN, synthetic markings in ``ImageComments``/``DerivationDescription``); nothing is copied
  from any source file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..exceptions import DataFormatError, MissingDependencyError
from .images import ColorPolicy, ImageInfo, ImageReadError, Normalize, scale_intensity

__all__ = ["read_dicom", "write_synthetic_dicom", "is_dicom", "dicom_tag_labels", "check_label_tags", "PHI_TAG_HINTS"]

#: header keywords that identify people, places or times; refused as label sources
PHI_TAG_HINTS = ("Patient", "Name", "Date", "Time", "UID", "ID", "Address", "Phone", "Institution", "Physician",
                 "Operator", "Accession", "Birth", "Station", "Serial", "Comments", "Description")

def _need_pydicom() -> Any:
    try:
        import pydicom
    except ImportError as e:
        raise MissingDependencyError("pydicom", "imaging", "reading DICOM files") from e
    return pydicom

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
            out = scale_intensity(x, "percentile")
            info.intensity = "percentile"
    elif normalize == "dtype":
        bits = int(ds.get("BitsStored", 16) or 16)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        out = np.clip((arr.astype(np.float64) - lo) / (hi - lo), 0, 1)
        info.intensity = "dtype"
    else:
        out = scale_intensity(x, normalize)
        info.intensity = normalize
    inv = photometric == "MONOCHROME1"
    if str(ds.get("PresentationLUTShape", "")).upper().strip() == "INVERSE":
        inv = not inv
    if inv:
        out = 1.0 - out
        info.inverted = True
    return out.astype(np.float32), info

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
