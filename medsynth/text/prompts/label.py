"""``label`` (ZeroGen): label-conditioned prompts.

The open document's header names its target labels in verbalizer words ("Findings list: cardiomegaly, pleural
effusion"); each in-context example shows the same header for its own labels, so the base model sees the
header → text mapping. Without ``prior``, targets are one label drawn uniformly from the label set (ZeroGen's
class-conditional generation). When ``entity_first`` is active it writes the content header instead.
"""

from __future__ import annotations

import random

from pydantic import Field

from ...registry import STRATEGIES
from .base import Job, Plan, Stage, Strategy, StrategyEnv, StrategyOptions

__all__ = ["LabelStrategy"]


class LabelOptions(StrategyOptions):
    header: str = Field("Findings list", description="header key of the label line")


@STRATEGIES.register("label")
class LabelStrategy(Strategy):
    name = "label"
    survey_method = "ZeroGen label-conditioned prompting"
    description = "the open document's header lists its target labels in verbalizer words; examples show theirs"
    stage = Stage.TARGET + 1
    Config = LabelOptions

    def plan(self, job: Job, env: StrategyEnv) -> None:
        if not job.plan.labels and env.label_set:
            job.plan.labels = [job.rng.choice(env.label_set)]
            job.notes["target_labels"] = list(job.plan.labels)

    def describe(self, plan: Plan, env: StrategyEnv, rng: random.Random, target: bool) -> list[tuple[str, str]]:
        if env.content_plan is not None or not plan.labels:
            return []
        o: LabelOptions = self.options  # type: ignore[assignment]
        return [(o.header, ", ".join(env.verbalize(lab, rng, plan.text) for lab in plan.labels))]
