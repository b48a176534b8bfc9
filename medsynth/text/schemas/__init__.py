"""Annotation schemas shipped with medsynth, and loading of your own (YAML/JSON with the same fields).

- ``radiology``: FINDING (canonical values = IU chest X-ray document labels), DEVICE, SEVERITY, ANATOMY,
  NEGATION_CUE; relations ``has_severity``, ``located_at``, ``negated_by``.
- ``i2b2_2010``: PROBLEM, TEST, TREATMENT with TrIP/TrWP/TrCP/TrAP/TrNAP, TeRP/TeCP and PIP relations.

``load_schema("radiology")`` or ``load_schema("path/to/schema.yaml")``; see :mod:`medsynth.text.schemas.base`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ...exceptions import RecipeError
from .base import Annotation, DocumentFormat, EntityType, Mention, RelationType, Schema, annotate, doc_labels, find_mentions, sentences

__all__ = ["Schema", "EntityType", "RelationType", "DocumentFormat", "Annotation", "Mention", "annotate", "doc_labels",
           "find_mentions", "sentences", "load_schema", "BUILTIN_SCHEMAS"]

_HERE = Path(__file__).parent
BUILTIN_SCHEMAS = ("radiology", "i2b2_2010")


@lru_cache(maxsize=32)
def _load(name_or_path: str) -> Schema:
    from pydantic import ValidationError

    if name_or_path == "radiology":
        from .radiology import SCHEMA

        return Schema.model_validate(SCHEMA)
    p = _HERE / f"{name_or_path}.yaml" if name_or_path in BUILTIN_SCHEMAS else Path(name_or_path).expanduser()
    if not p.exists():
        raise RecipeError(f"Unknown schema '{name_or_path}': not one of {', '.join(BUILTIN_SCHEMAS)} and no such file. "
                          "Give a built-in name or the path of a YAML/JSON schema file.")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
        else:
            import yaml

            data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001
        raise RecipeError(f"Schema file {p} cannot be parsed ({type(e).__name__}). Fix its YAML/JSON syntax.") from None
    try:
        return Schema.model_validate(data)
    except ValidationError as e:
        probs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:8])
        raise RecipeError(f"Schema file {p} is invalid: {probs}") from None


def load_schema(name_or_path: str | Path) -> Schema:
    """A built-in schema by name, or a schema file (YAML/JSON). Cached per name/path."""
    return _load(str(name_or_path))
