"""The ``export`` step: the input records as JSONL / CoNLL-BIO / BRAT / spaCy DocBin / HF datasets, each read back
with its consumer tool, every span that did not survive reported. Label sets default to those of the ``generate``
steps upstream (:mod:`.text`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ..data.records import invalid_spans
from ..recipe.step import Step, StepConfig, register_step
from .text import GenerateConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["ExportStep", "ExportConfig"]


class ExportConfig(StepConfig):
    type: Literal["export"] = "export"
    formats: list[Literal["jsonl", "conll", "brat", "spacy", "hf"]] = Field(default_factory=lambda: ["jsonl", "conll", "brat"])
    labels: list[str] | None = Field(None, description="the document label set (HF ClassLabel names, doc.cats keys); default: the upstream "
                                                       "generate step's label set (its `labels`, else the labels of its seeds)")
    entity_labels: list[str] | None = Field(None, description="the entity label set; default: the upstream generate step's schema")
    splits: dict[str, float] | None = Field(None, description="HF export splits by a hash of the record id, e.g. {train: 0.9, validation: 0.1}")


def _upstream_label_sets(ctx: StepContext) -> tuple[list[str], list[str]]:
    """(entity labels, document labels) of the generate steps upstream of this export step, from the recipe."""
    loaded = getattr(ctx, "recipe", None)
    if loaded is None:
        return [], []
    wiring = loaded.wiring()
    made_by = {d: i for i, (_, outs) in enumerate(wiring) for d in outs}
    ents: list[str] = []
    docs: list[str] = []
    todo, seen = list(ctx.input_names), set()
    while todo:
        d = todo.pop()
        if d in seen or d not in made_by:
            continue
        seen.add(d)
        i = made_by[d]
        st = loaded.steps[i]
        if isinstance(st.config, GenerateConfig):
            from ..text.schemas import load_schema

            sch = load_schema(st.config.schema_name)
            ents += [e.name for e in sch.entities] + ([sch.negation_cue_label] if sch.negation_cue_label else [])
            if st.config.labels:
                docs += list(st.config.labels)
            else:
                for seed_ds in wiring[i][0]:
                    if ctx.has_dataset(seed_ds):
                        docs += sorted({lab for r in ctx.dataset(seed_ds) for lab in r.labels})
        todo += wiring[i][0]
    return list(dict.fromkeys(ents)), list(dict.fromkeys(docs))


@register_step
class ExportStep(Step[ExportConfig]):
    """Write the input records as JSONL / CoNLL-BIO / BRAT / spaCy DocBin / HF datasets into the step folder, read
    each back with its consumer tool and report every span that did not survive."""

    Config = ExportConfig
    version = "3"

    def run(self, ctx: StepContext) -> None:
        from ..text.export import export_records

        c = self.config
        recs = ctx.input()
        bad = [r for r in recs if invalid_spans(r)]
        for r in bad:
            ctx.quarantine(r, "invalid_span", "export")
        good = [r for r in recs if not invalid_spans(r)]
        up_ents, up_docs = _upstream_label_sets(ctx)
        res = export_records(good, ctx.step_dir / "export", list(c.formats), entity_labels=c.entity_labels or up_ents,
                             doc_labels=c.labels or up_docs, splits=c.splits)
        for p in res.values():
            ctx.add_artifact(p)
        if not good:
            ctx.add_figure("export_empty", True, "no record reached the export (all were quarantined or none was generated): the files are empty"
                                                 + (" and the HF dataset was not written" if "hf" in c.formats else ""))
        ctx.add_figure("exported_records", len(good), f"records written as {', '.join(c.formats)} under {ctx.step_dir.name}/export (records with an invalid span are quarantined, never exported: {len(bad)})")
        ctx.add_figure("exported_relations", sum(len(r.relations) for r in good), "relations written (JSONL, BRAT R lines, HF `relations` column, spaCy user_data, CoNLL side file)")
        ctx.add_figure("export_span_check", {f: f"{k['recovered']}/{k['spans']}" for f, k in res.checks.items()},
                       "spans recovered when each export is read back by its consumer (spaCy DocBin, datasets.load_from_disk, seqeval's BIO decoder, the BRAT reader) and compared with the records")
        flat_only = {f: n for f, k in res.checks.items() for why, n in k["lost"].items() if why.startswith("overlaps")}
        if flat_only:
            ctx.add_figure("export_overlaps_not_in_flat_formats", flat_only, "overlapping spans a flat format (BIO, doc.ents) cannot hold; kept in the JSONL, BRAT, doc.spans, HF spans and the CoNLL side file")
        lost = {f: {why: n for why, n in k["lost"].items() if not why.startswith("overlaps")} for f, k in res.checks.items()}
        lost = {f: v for f, v in lost.items() if v}
        if lost:
            ctx.log.warning("export: %d span(s) did not survive a format: %s", res.spans_lost, lost)
            ctx.add_figure("export_spans_lost", lost, "spans NOT recovered from an export (format: reason: count)")
        if "hf" in res.checks and "splits" in res.checks["hf"]:
            ctx.add_figure("hf_splits", res.checks["hf"]["splits"], "records per split of the HF export (deterministic, by a hash of the record id)")
        ctx.write_output(good)
