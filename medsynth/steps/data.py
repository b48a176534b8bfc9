"""Generic data steps: ``load`` (records from a file) and ``select`` (filter / sample / stratify a dataset)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..data.records import Provenance, Record
from ..deprecation import renamed_keys
from ..exceptions import DataFormatError
from ..recipe.step import Step, StepConfig, StepPlan, register_step

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["LoadStep", "SelectStep"]


class LoadConfig(StepConfig):
    type: Literal["load"] = "load"
    path: str = Field(description="JSONL of records or of {id, text, ...} objects, or a CSV file")
    text_column: str = Field("text", description="CSV/JSONL column holding the text")
    id_column: str = "id"
    label_column: str | None = Field(None, description="column with labels (a list, or a '|'-separated string)")
    kind: Literal["text", "row"] = "text"


@register_step
class LoadStep(Step[LoadConfig]):
    """Load records from a local file (JSONL records, JSONL ``{id, text}`` objects, or CSV)."""

    Config = LoadConfig

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        p = recipe.resolve_path(self.config.path)
        if not p.exists():
            return [("path", f"file not found: {p}. Give an absolute path or one relative to the project root.")]
        return []

    def run(self, ctx: StepContext) -> None:
        import json

        c = self.config
        path = ctx.recipe.resolve_path(c.path) if ctx.recipe else Path(c.path)
        out: list[Record] = []
        if path.suffix.lower() == ".csv":
            import pandas as pd

            df = pd.read_csv(path)
            rows = df.to_dict(orient="records")
        else:
            from ..data.io import read_jsonl_dicts

            rows = [obj for _, obj in read_jsonl_dicts(path)]
        for i, row in enumerate(rows):
            if "kind" in row and "provenance" in row:
                out.append(Record.model_validate(row))
                continue
            rid = str(row.get(c.id_column, f"{path.stem}-{i}"))
            labels = row.get(c.label_column) if c.label_column else []
            if isinstance(labels, str):
                labels = [x for x in labels.split("|") if x]
            if c.kind == "text":
                text = row.get(c.text_column)
                if not isinstance(text, str):
                    raise DataFormatError(f"{path}: row {i + 1} has no string column '{c.text_column}'. Set `text_column:`.")
                meta = {k: v for k, v in row.items() if k not in (c.text_column, c.id_column, c.label_column)}
                out.append(Record(id=rid, kind="text", text=text, labels=list(labels or []), meta=json.loads(json.dumps(meta, default=str)),
                                  provenance=Provenance(step=ctx.step_name, params={"source": path.name})))
            else:
                vals = {k: v for k, v in row.items() if k not in (c.id_column, c.label_column)}
                out.append(Record(id=rid, kind="row", values=json.loads(json.dumps(vals, default=str)), labels=list(labels or []),
                                  provenance=Provenance(step=ctx.step_name, params={"source": path.name})))
        ids = Counter(r.id for r in out)
        dups = [k for k, v in ids.items() if v > 1]
        if dups:
            raise DataFormatError(f"{path}: {len(dups)} duplicate record id(s) (e.g. {dups[0]!r}). Ids must be unique.")
        ctx.add_figure("records_loaded", len(out), "count of records read from the input file")
        ctx.write_output(out)


class SelectConfig(StepConfig):
    type: Literal["select"] = "select"
    where: dict[str, Any] = Field(default_factory=dict, description="keep records whose meta[key] equals value (or is in a list of values)")
    has_labels: list[str] | None = Field(None, description="keep records carrying at least one of these labels")
    n: int | None = Field(None, ge=1, description="keep at most this many records, a seeded sample (`sample:` is its deprecated old name)")
    stratify: bool = Field(True, description="when sampling, keep the label distribution (multi-label: by first label)")
    min_per_label: int = Field(0, ge=0, description="when sampling and stratifying, try to keep at least this many per label")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, "select", {"sample": "n"})


@register_step
class SelectStep(Step[SelectConfig]):
    """Filter a dataset by metadata/labels and optionally take a seeded (stratified) sample."""

    Config = SelectConfig

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = next(iter(input_sizes.values()), None)
        c = self.config
        if c.where or c.has_labels is not None:
            out = c.n  # filtered size unknown before running; at most `n`
        else:
            out = min(n, c.n) if (n is not None and c.n) else (c.n if c.n and n is None else n)
        return StepPlan(records_in=n, records_out=out)

    def run(self, ctx: StepContext) -> None:
        c = self.config
        recs = ctx.input()
        keep = []
        for r in recs:
            ok = True
            for k, v in c.where.items():
                val = r.meta.get(k)
                ok &= (val in v) if isinstance(v, list) else (val == v)
            if c.has_labels is not None:
                ok &= bool(set(r.labels) & set(c.has_labels))
            if ok:
                keep.append(r)
        n_filtered = len(keep)
        if c.n and len(keep) > c.n:
            rng = random.Random(ctx.seed)
            if c.stratify:
                groups: dict[str, list[Record]] = {}
                for r in keep:
                    groups.setdefault(r.labels[0] if r.labels else "", []).append(r)
                for g in groups.values():
                    rng.shuffle(g)
                chosen: list[Record] = []
                # guarantee min_per_label, then fill proportionally by largest remainder
                for g in groups.values():
                    chosen += g[: min(c.min_per_label, len(g))]
                remaining = c.n - len(chosen)
                if remaining < 0:
                    rng.shuffle(chosen)
                    chosen = chosen[: c.n]
                else:
                    total = sum(len(g) - min(c.min_per_label, len(g)) for g in groups.values())
                    quotas = {k: (len(g) - min(c.min_per_label, len(g))) * remaining / max(total, 1) for k, g in groups.items()}
                    base = {k: int(q) for k, q in quotas.items()}
                    left = remaining - sum(base.values())
                    for k in sorted(quotas, key=lambda k: (-(quotas[k] - base[k]), k))[:left]:
                        base[k] += 1
                    for k, g in groups.items():
                        start = min(c.min_per_label, len(g))
                        chosen += g[start : start + base[k]]
                keep = sorted(chosen, key=lambda r: r.id)
            else:
                keep = sorted(rng.sample(keep, c.n), key=lambda r: r.id)
        ctx.add_figure("records_selected", len(keep), f"records of '{ctx.input_names[0]}' matching the filter ({n_filtered}), then sampled with seed")
        ctx.write_output(keep)
