"""``ner``: every entity span of the schema (plus document labels when the schema has them).

With ``output: plain`` (default, for base models) spans come from the schema annotator on the generated text.
With ``output: inline`` (instruction-tuned models behind the ``openai`` backend) in-context examples are shown
with ``[mention](LABEL)`` markup, the model marks up its own text, the markup is parsed and stripped
(:func:`medsynth.text.spans.parse_inline`), and the model's spans are merged with the annotator's — every one
checked by :func:`medsynth.text.spans.enforce` (labels of the schema, exact offsets, overlaps by policy)."""

from __future__ import annotations

from .base import TASKS, Task

__all__ = ["NERTask"]


@TASKS.register("ner")
class NERTask(Task):
    name = "ner"
    emits = frozenset({"labels", "spans"})
