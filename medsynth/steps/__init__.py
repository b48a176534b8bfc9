"""The recipe steps: one module per domain, each a thin adapter from the run layer (``recipe.step``: config, plan,
context, records in and out) to that domain's library. Domain packages never import this package or the run layer.
Importing this package registers every step (the STEPS registry imports it lazily).

Step modules must keep heavy imports inside ``run()`` so that listing and validating recipes stays fast.
"""

from __future__ import annotations

import importlib

_STEP_MODULES = [
    "medsynth.steps.data",
    "medsynth.steps.iu_xray",
    "medsynth.steps.scrub",
    "medsynth.steps.text",
    "medsynth.steps.export",
    "medsynth.steps.adapt",
    "medsynth.steps.quality",
    "medsynth.steps.audit",
    "medsynth.steps.train",
    "medsynth.steps.tabular",
    "medsynth.steps.imaging_sources",
    "medsynth.steps.imaging",
]

for _m in _STEP_MODULES:
    try:
        importlib.import_module(_m)
    except ModuleNotFoundError as e:  # a module of this list that is not part of this build
        if e.name is None or not (e.name == _m or _m.startswith(e.name + ".")):
            raise
