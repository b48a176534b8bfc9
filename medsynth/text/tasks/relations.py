"""``relations``: entity spans and the relations between them (radiology: located_at, has_severity,
negated_by; i2b2-2010 style: TrIP/TrWP/TrCP/TrAP/TrNAP, TeRP/TeCP, PIP), found by the schema's relation rules
on the generated text (same sentence, nearest argument, cue between), so a planned relation the text does not
express is never emitted."""

from __future__ import annotations

from .base import TASKS, Task

__all__ = ["RelationsTask"]


@TASKS.register("relations")
class RelationsTask(Task):
    name = "relations"
    emits = frozenset({"labels", "spans", "relations"})
