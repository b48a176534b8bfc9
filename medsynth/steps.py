"""Imports every module that registers recipe steps (the STEPS registry imports this lazily).

Step modules must keep heavy imports inside ``run()`` so that listing and validating recipes stays fast.
"""

from __future__ import annotations

import importlib

_STEP_MODULES = [
    "medsynth.data.steps",
    "medsynth.data.sources.iu_xray",
    "medsynth.scrub.steps",
    "medsynth.text.steps",
    "medsynth.text.adapt.steps",
    "medsynth.quality.steps",
    "medsynth.audit.steps",
    "medsynth.train.steps",
    "medsynth.tabular.steps",
    "medsynth.imaging.steps",
]

for _m in _STEP_MODULES:
    try:
        importlib.import_module(_m)
    except ModuleNotFoundError as e:  # a module of this list that is not part of this build
        if e.name is None or not (e.name == _m or _m.startswith(e.name + ".")):
            raise
