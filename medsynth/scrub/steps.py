"""The ``scrub`` recipe step: de-identify the text of records before they reach a prompt."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..data.records import Record
from ..recipe.step import Step, StepConfig, StepPlan
from ..registry import STEPS

__all__ = ["ScrubStep", "load_phi_strings", "PHI_FILE"]

PHI_FILE = "phi_strings.jsonl"


def load_phi_strings(step_dir: str | Path, with_labels: bool = False) -> list[Any]:
    """PHI strings found by a scrub step (private run-dir data; used by the PHI-replay audit); with
    ``with_labels=True`` the entries are ``{"label", "text"}``."""
    p = Path(step_dir) / PHI_FILE
    if not p.exists():
        return []
    rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows if with_labels else [r["text"] for r in rows]


class ScrubConfig(StepConfig):
    type: Literal["scrub"] = "scrub"
    mode: Literal["mask", "surrogate"] = Field("surrogate", description="mask: [NAME]; surrogate: consistent fake values, dates shifted per patient")
    group_by: str | None = Field(None, description="meta field naming the patient (consistent surrogates and date shift per patient); default: per record")
    min_phi_len: int = Field(3, ge=1, description="PHI strings shorter than this are not kept for the replay audit (too common to be evidence)")


@STEPS.register("scrub")
class ScrubStep(Step):
    """Scrub PHI from text records; keeps ids and labels, records counts per PHI type."""

    type = "scrub"
    Config = ScrubConfig

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = next(iter(input_sizes.values()), None)
        return StepPlan(records_in=n, records_out=n, est_seconds=(n or 0) / 40 + 5)

    def run(self, ctx: Any) -> None:
        from .engine import Scrubber

        c: ScrubConfig = self.config  # type: ignore[assignment]
        recs = ctx.input()
        texts = [r.text or "" for r in recs]
        groups = [str(r.meta.get(c.group_by)) if c.group_by else r.id for r in recs]
        scr = Scrubber(mode=c.mode, seed=ctx.seed)
        with ctx.progress(len(recs), "scrub") as bar:
            results = []
            for i in range(0, len(recs), 64):
                results += scr.scrub_many(texts[i : i + 64], groups[i : i + 64])
                bar.advance(min(64, len(recs) - i))
        out: list[Record] = []
        counts: Counter[str] = Counter()
        phi: set[tuple[str, str]] = set()
        for r, res in zip(recs, results, strict=True):
            counts.update(res.counts())
            for s in res.spans:
                if len(s.text) >= c.min_phi_len:
                    phi.add((s.label, s.text))
            new = r.model_copy(deep=True)
            new.text = res.text
            new.spans = []  # offsets referred to the original text
            new.provenance.params = {**new.provenance.params, "scrubbed": c.mode}
            new.scores = {**new.scores, "phi_found": len(res.spans)}
            out.append(new)
        with open(ctx.step_dir / PHI_FILE, "w", encoding="utf-8") as fh:
            for lab, t in sorted(phi):
                fh.write(json.dumps({"label": lab, "text": t}) + "\n")
        ctx.add_figure("records_scrubbed", len(out), f"records de-identified in '{c.mode}' mode")
        ctx.add_figure("phi_found", dict(counts), "PHI spans detected per type (Presidio + medsynth clinical recognizers); strings kept only in the run dir")
        ctx.add_figure("records_with_phi", sum(1 for r in out if r.scores["phi_found"]), "records with at least one detected PHI span")
        ctx.add_section("phi_counts", dict(counts))
        ctx.write_output(out)
