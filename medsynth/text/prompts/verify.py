"""``verify``: never trust the conditioning — each text is labelled by what it actually says.

The schema's annotator (for radiology: the finding lexicon with NegEx-style negation, agreement with the real
MeSH labels measured on the IU validation split) re-labels every generated text: a report asked to show
cardiomegaly that reads "heart size is normal" is labelled normal. Policies:

- ``relabel`` (default): keep the record with the labels found (multi-label); reject only texts with no label;
- ``require_target``: additionally reject texts that carry none of their target labels (``target_label_missing``);
- ``exact``: reject texts whose labels differ from the target set (``label_mismatch``).

Without ``verify`` the step labels records with their target labels (the naive ZeroGen assumption), which the
benchmark's ablation measures. Spans are always taken from the text with verified offsets, with or without it.
"""

from __future__ import annotations

from typing import Literal

from ...data.records import Record
from ...registry import STRATEGIES
from .base import Job, Stage, Strategy, StrategyEnv, StrategyOptions

__all__ = ["VerifyStrategy"]


class VerifyOptions(StrategyOptions):
    policy: Literal["relabel", "require_target", "exact"] = "relabel"


@STRATEGIES.register("verify")
class VerifyStrategy(Strategy):
    name = "verify"
    survey_method = "label verification / relabelling (correctness filtering)"
    description = "the schema's annotator relabels each output by what it says; policy relabel, require_target or exact"
    stage = Stage.CHECK
    Config = VerifyOptions

    def accept(self, record: Record, job: Job, env: StrategyEnv) -> str | None:
        o: VerifyOptions = self.options  # type: ignore[assignment]
        found = set(record.labels)
        target = set(job.plan.labels)
        if env.label_set and not found and any(e.doc_label for e in env.schema.entities):
            return "no_label"
        if o.policy == "require_target" and target and not (found & target):
            return "target_label_missing"
        if o.policy == "exact" and target and found != target:
            return "label_mismatch"
        return None
