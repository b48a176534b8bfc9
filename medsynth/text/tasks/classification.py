"""``classification``: multi-label document labels (IU: MeSH problem terms cut at the first "/", or "normal").

Emits the labels the annotator finds, and the spans that are their evidence (doc-label mentions such as FINDING
and DEVICE, and negation cues), so a reviewer can see why a record carries its labels."""

from __future__ import annotations

from .base import TASKS, Task

__all__ = ["ClassificationTask"]


@TASKS.register("classification")
class ClassificationTask(Task):
    name = "classification"
    emits = frozenset({"labels", "spans"})

    def keeps(self, label: str) -> bool:
        doc = {e.name for e in self.schema.entities if e.doc_label}
        return label in doc or label == self.schema.negation_cue_label
