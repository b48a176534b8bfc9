"""Prompt strategies of the ``generate`` step, registered by name in ``medsynth.registry.STRATEGIES``.

Each entry documents the survey method it implements and where; the ``generate`` step's ``strategies:`` list is
validated against this registry. (The strategy logic itself currently lives in ``medsynth/text/steps.py``;
moving each into its own file behind a common interface is open work.)
"""

from __future__ import annotations

from dataclasses import dataclass

from ...registry import STRATEGIES

__all__ = ["StrategyInfo"]


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    survey_method: str
    description: str


for _s in [
    StrategyInfo("prior", "label-prior matching (correcting the generator's label drift)",
                 "sample target label sets from the seeds' label distribution; steer against the deficit of what was written"),
    StrategyInfo("label", "ZeroGen label-conditioned prompting", "the open report's header lists its target findings in verbalizer words"),
    StrategyInfo("fewshot", "few-shot prompting from private (scrubbed) seeds", "k seed reports as in-context examples, one sharing a target label"),
    StrategyInfo("feedback", "ProGen in-context feedback", "generated reports the quality estimator accepts join the in-context pool round by round"),
    StrategyInfo("verify", "label verification / relabelling", "finding detector with negation relabels outputs and yields verified spans"),
]:
    STRATEGIES.register(_s.name, _s)
