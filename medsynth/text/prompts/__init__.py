"""Prompt strategies of the ``generate`` step, one registered file each (``medsynth.registry.STRATEGIES``).

=============== ===================================================== ================================
name            survey method                                          file
=============== ===================================================== ================================
``prior``       label-prior matching                                  prior.py
``label``       ZeroGen label-conditioned prompting                   label.py
``verbalizer``  verbalizer expansion (seeds / LLM / file)             verbalizer.py
``entity_first`` entity-first generation (Tang et al.)                entity_first.py
``attributes``  AttrPrompt / MSP attribute-controlled prompts         attributes.py
``fewshot``     few-shot from scrubbed private seeds                  fewshot.py
``feedback``    ProGen in-context feedback (influence estimator)      feedback.py
``verify``      label verification / relabelling                      verify.py
=============== ===================================================== ================================

The contract is in :mod:`medsynth.text.prompts.base`; a recipe composes strategies in ``strategies:`` by name or
as ``{type: name, option: value}``.
"""

from __future__ import annotations

from typing import Any

from ...exceptions import RecipeError
from ...registry import STRATEGIES
from . import attributes, entity_first, feedback, fewshot, label, prior, verbalizer, verify  # noqa: F401  (register)
from .base import Job, Plan, PlannedEntity, PlannedRelation, Strategy, StrategyEnv, StrategyOptions, Unit, rng_for

__all__ = ["Strategy", "StrategyOptions", "StrategyEnv", "Plan", "PlannedEntity", "PlannedRelation", "Unit", "Job", "rng_for",
           "build_strategies", "normalize_spec"]


def normalize_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{type: name, **options}`` → (name, options)."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and isinstance(spec.get("type"), str):
        opts = dict(spec)
        return opts.pop("type"), opts
    raise RecipeError(f"a strategy is a name or a mapping with `type:` (got {type(spec).__name__})")


def build_strategies(specs: list[Any]) -> list[Strategy]:
    """Instantiate strategies (validated options), sorted by plan stage."""
    out = []
    for spec in specs:
        name, opts = normalize_spec(spec)
        cls = STRATEGIES.get(name)
        out.append(cls(opts))
    return sorted(out, key=lambda s: s.stage)
